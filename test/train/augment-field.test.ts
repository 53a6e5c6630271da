import t from 'tap';

import { mulberry32, type Rng } from '../../src/data/random.js';
import { applyField, drawField, drawUltrasound, FIELD_DRAWS, ULTRASOUND_DRAWS, type FieldDraw } from '../../src/train/augment-field.js';
import { augment, type Sample } from '../../src/train/data.js';
import { PREPROCESSING } from '../../src/model/preprocessing.js';
import { same } from '../helpers/same.js';

const SIZE = 32;

/** A normalised NHWC sample from 8-bit pixels (grey when `grey`), with a square mask. */
function sample(grey = false): Sample {
  const { mean, std, scale } = PREPROCESSING;
  const image = new Float32Array(SIZE * SIZE * 3);
  const mask = new Float32Array(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const i = y * SIZE + x;
      const px = grey ? [x * 7, x * 7, x * 7] : [x * 7, y * 7, (x + y) * 3];
      for (let c = 0; c < 3; c++) image[i * 3 + c] = (px[c] / scale - mean[c]) / std[c];
      mask[i] = x > 8 && x < 24 && y > 8 && y < 24 ? 1 : 0;
    }
  }
  return { image, mask };
}

function counting(seed: number): { rng: Rng; count: () => number } {
  const inner = mulberry32(seed);
  let n = 0;
  return {
    rng: () => {
      n++;
      return inner();
    },
    count: () => n,
  };
}

const NONE: FieldDraw = { zoom: null, gamma: null, hueDeg: null, saturation: null, specular: [], blurSigma: null, noiseSigma: null, noiseSeed: 1, jpegQuality: null, gain: null, contrast: null, speckle: null, downscale: null };

t.test('one sample always consumes FIELD_DRAWS values, whatever fires', async (t) => {
  const fired = new Set<string>();
  for (let seed = 1; seed <= 200; seed++) {
    const c = counting(seed);
    const d = drawField(c.rng, SIZE);
    t.equal(c.count(), FIELD_DRAWS);
    for (const [k, v] of Object.entries(d)) if (v !== null && !(Array.isArray(v) && v.length === 0)) fired.add(k);
  }
  same(t, [...fired].sort(), ['blurSigma', 'gamma', 'hueDeg', 'jpegQuality', 'noiseSeed', 'noiseSigma', 'saturation', 'specular', 'zoom'], 'each operation fires for some seed');
});

t.test('the field profile draws after the basic one, so a basic run is unchanged', async (t) => {
  const s = sample();
  const basic = augment(s, SIZE, mulberry32(5));
  same(t, augment(s, SIZE, mulberry32(5), { profile: 'basic' }).image, basic.image, 'profile basic = no profile');
  const c = counting(5);
  augment(s, SIZE, c.rng, { profile: 'field' });
  const c0 = counting(5);
  augment(s, SIZE, c0.rng);
  t.equal(c.count() - c0.count(), FIELD_DRAWS, 'field adds exactly FIELD_DRAWS draws per sample');
  same(t, augment(s, SIZE, mulberry32(9), { profile: 'field' }).image, augment(s, SIZE, mulberry32(9), { profile: 'field' }).image, 'deterministic');
});

t.test('applyField: nothing drawn changes nothing; zoom 1 is the identity; masks stay 0/1; grey stays grey', async (t) => {
  const s = sample();
  const image = s.image.slice();
  const mask = s.mask.slice();
  applyField(image, mask, SIZE, NONE);
  same(t, image, s.image);
  applyField(image, mask, SIZE, { ...NONE, zoom: { factor: 1, ox: 0.5, oy: 0.5 } });
  same(t, image, s.image, 'zoom factor 1');
  same(t, mask, s.mask);

  applyField(image, mask, SIZE, { ...NONE, zoom: { factor: 1.3, ox: 0, oy: 0 } });
  t.ok(mask.every((v) => v === 0 || v === 1), 'the zoomed mask is binary');
  const fg = mask.reduce((a, b) => a + b, 0);
  t.ok(fg > s.mask.reduce((a, b) => a + b, 0), 'zooming in enlarges the object');

  const g = sample(true);
  const gi = g.image.slice();
  applyField(gi, g.mask.slice(), SIZE, { ...NONE, hueDeg: 20, saturation: 1.4, gamma: 0.7, blurSigma: 1, noiseSigma: 5 });
  const { mean, std, scale } = PREPROCESSING;
  let colour = 0;
  for (let i = 0; i < SIZE * SIZE; i++) {
    const px = [0, 1, 2].map((c) => Math.round((gi[i * 3 + c] * std[c] + mean[c]) * scale));
    if (px[0] !== px[1] || px[0] !== px[2]) colour++;
  }
  t.equal(colour, 0, 'hue, saturation, gamma, blur and noise leave a grey sample grey');
  t.ok(gi.some((v, i) => v !== g.image[i]), 'but change it');
});

/** Pixels of a normalised sample whose 8-bit channels differ (0 for a grey sample). */
function colourPixels(image: Float32Array): number {
  const { mean, std, scale } = PREPROCESSING;
  let colour = 0;
  for (let i = 0; i < SIZE * SIZE; i++) {
    const px = [0, 1, 2].map((c) => Math.round((image[i * 3 + c] * std[c] + mean[c]) * scale));
    if (px[0] !== px[1] || px[0] !== px[2]) colour++;
  }
  return colour;
}

t.test('the ultrasound profile: a fixed number of draws, its own operations only, grey stays grey', async (t) => {
  const fired = new Set<string>();
  for (let seed = 1; seed <= 300; seed++) {
    const c = counting(seed);
    const d = drawUltrasound(c.rng);
    t.equal(c.count(), ULTRASOUND_DRAWS);
    t.equal(d.hueDeg, null);
    t.equal(d.saturation, null);
    t.equal(d.specular.length, 0, 'no specular highlights on ultrasound');
    for (const [k, v] of Object.entries(d)) if (v !== null && !(Array.isArray(v) && v.length === 0)) fired.add(k);
  }
  same(t, [...fired].sort(), ['blurSigma', 'contrast', 'downscale', 'gain', 'gamma', 'jpegQuality', 'noiseSeed', 'noiseSigma', 'speckle', 'zoom'], 'each operation fires for some seed');

  const c = counting(5);
  augment(sample(true), SIZE, c.rng, { profile: 'ultrasound' });
  const c0 = counting(5);
  augment(sample(true), SIZE, c0.rng);
  t.equal(c.count() - c0.count(), ULTRASOUND_DRAWS, 'ultrasound adds exactly ULTRASOUND_DRAWS draws per sample');

  const g = sample(true);
  for (const [name, d] of [
    ['gain', { ...NONE, gain: 0.7 }],
    ['contrast', { ...NONE, contrast: 0.6 }],
    ['speckle', { ...NONE, speckle: { strength: 0.3, seed: 3 } }],
    ['downscale', { ...NONE, downscale: 4 }],
    ['all', { ...NONE, gain: 1.2, gamma: 0.7, contrast: 0.8, speckle: { strength: 0.4, seed: 9 }, blurSigma: 1, downscale: 2, noiseSigma: 6, jpegQuality: 30 }],
  ] as const) {
    const gi = g.image.slice();
    const gm = g.mask.slice();
    applyField(gi, gm, SIZE, d);
    t.equal(colourPixels(gi), 0, `${name} leaves a grey sample grey`);
    t.ok(gi.some((v, i) => v !== g.image[i]), `${name} changes it`);
    same(t, gm, g.mask, `${name} leaves the mask alone`);
  }
  // gain 0.7 on a pixel of 7·x: exactly round(0.7·7x) after the 8-bit round trip
  const gi = g.image.slice();
  applyField(gi, g.mask.slice(), SIZE, { ...NONE, gain: 0.7 });
  const { mean, std, scale } = PREPROCESSING;
  const px = Math.round((gi[10 * 3] * std[0] + mean[0]) * scale);
  t.equal(px, Math.round(0.7 * 70), 'gain multiplies the pixel value');
});
