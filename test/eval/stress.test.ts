import t from 'tap';

import { isGrey } from '../../src/data/modality.js';
import { COLOUR_SHIFTS, GREY_SHIFTS, shiftsFor } from '../../src/eval/stress.js';
import { gaussianBlur } from '../../src/image/adjust.js';
import type { RgbImage } from '../../src/image/types.js';
import { same } from '../helpers/same.js';

/** A deterministic textured colour image (gradients and a checkerboard). */
function colourImage(w = 64, h = 48): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const check = ((x >> 3) + (y >> 3)) & 1 ? 60 : 0;
      data[i] = (x * 4 + check) & 255;
      data[i + 1] = (y * 5 + 30) & 255;
      data[i + 2] = (x * 2 + y * 2 + check) & 255;
    }
  }
  return { width: w, height: h, data };
}

function greyOf(img: RgbImage): RgbImage {
  const data = new Uint8Array(img.data.length);
  for (let i = 0; i < data.length; i += 3) data[i] = data[i + 1] = data[i + 2] = img.data[i + 1];
  return { width: img.width, height: img.height, data };
}

t.test('every shift keeps the size, changes a textured image, and is a pure function of image and stem', async (t) => {
  const img = colourImage();
  for (const s of [...COLOUR_SHIFTS, ...GREY_SHIFTS]) {
    const a = s.apply(img, 'stem-a');
    t.same([a.width, a.height, a.data.length], [img.width, img.height, img.data.length], `${s.name}: same size`);
    t.ok(a.data.some((v, i) => v !== img.data[i]), `${s.name}: changes the image`);
    same(t, s.apply(img, 'stem-a').data, a.data, `${s.name}: same image and stem, same result`);
    t.same(img.data, colourImage().data, `${s.name}: leaves its input alone`);
  }
  const noise = COLOUR_SHIFTS.find((s) => s.name === 'noise-10')!;
  t.ok(noise.apply(img, 'stem-a').data.some((v, i) => v !== noise.apply(img, 'stem-b').data[i]), 'noise is seeded per image');
});

t.test('greyscale data stays greyscale under the grey set', async (t) => {
  const grey = greyOf(colourImage());
  t.ok(isGrey(grey));
  t.notOk(isGrey(colourImage()));
  for (const s of GREY_SHIFTS) {
    // jpeg-js encodes in YCbCr with 4:2:0 chroma; a grey input keeps Cb = Cr = 128, so R = G = B after decoding within rounding.
    if (s.name === 'jpeg-q20') continue;
    t.ok(isGrey(s.apply(grey, 'x')), `${s.name} keeps R = G = B`);
  }
  same(t, shiftsFor('grey'), GREY_SHIFTS);
  same(t, shiftsFor('colour'), COLOUR_SHIFTS);
  t.notOk(GREY_SHIFTS.some((s) => /hue|saturation|specular/.test(s.name)), 'no colour shifts for grey data');
  t.ok(GREY_SHIFTS.some((s) => s.name.startsWith('speckle')), 'speckle for ultrasound');
});

t.test('the shifts do what their descriptions say', async (t) => {
  const flat = { width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(100) };
  const by = (name: string) => COLOUR_SHIFTS.find((s) => s.name === name)!;
  t.equal(by('gamma-0.6').apply(flat, 'x').data[0], Math.round(255 * Math.pow(100 / 255, 0.6)));
  t.equal(by('gamma-1.6').apply(flat, 'x').data[0], Math.round(255 * Math.pow(100 / 255, 1.6)));
  t.equal(by('contrast-0.6').apply(flat, 'x').data[0], Math.round(128 + 0.6 * (100 - 128)));
  t.equal(by('dim-0.7').apply(flat, 'x').data[0], 70);
  same(t, gaussianBlur(flat, 2).data, flat.data, 'blurring a flat image changes nothing');
  same(t, by('downscale-4').apply(flat, 'x').data, flat.data, 'nor does a coarser sensor');
  same(t, by('hue+20').apply(flat, 'x').data, flat.data, 'a grey pixel has no hue to rotate');
  same(t, by('saturation-0.5').apply(flat, 'x').data, flat.data, 'nor saturation to lose');
  const big = { width: 256, height: 256, data: new Uint8Array(256 * 256 * 3).fill(100) };
  const highlights = by('specular-6').apply(big, 'x');
  t.ok(highlights.data.some((v) => v === 255), 'specular highlights saturate');
  t.ok(highlights.data.filter((v) => v === 100).length > big.data.length * 0.8, 'and cover a small part of the frame');
});
