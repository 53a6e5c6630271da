/**
 * Field augmentation (`train --augment field`): what changes between one centre's images and another's,
 * drawn at random per sample on top of the basic rot90/flip/brightness/contrast (data.ts):
 *   - zoom and crop (another scope's field of view and working distance), image bilinear, mask nearest;
 *   - gamma, hue and saturation (another camera head, light source or white balance; hue and
 *     saturation leave greyscale data greyscale);
 *   - specular highlights (the endoscope's light on wet tissue);
 *   - blur, noise and JPEG artefacts (focus, sensor and compressed video paths).
 * `train --augment ultrasound` (the default for greyscale data) is the same idea for ultrasound, where
 * what differs between machines and sites is receive gain, dynamic range (log compression: gamma and
 * contrast), the speckle pattern, the transducer's resolution (blur, a coarser image) and noise, and
 * hue, saturation and specular highlights mean nothing.
 * The photometric operations are those of src/image/adjust.ts, which the release's stress tests use
 * with fixed parameters; the ranges here cover the stress shifts' strengths without reaching their
 * extremes on every sample.
 *
 * Every call draws the same number of values from the run's generator whatever it decides, so the
 * batches after a sample do not depend on which operations fired (bit-exact resume relies on the
 * generator's position being a function of the epoch and step alone).
 */
import { mulberry32, type Rng } from '../data/random.js';
import { addNoise, addSpeckle, downUp, drawSpecular, gaussianBlur, hueRotate, jpegRoundTrip, lut, saturation, type Ellipse } from '../image/adjust.js';
import type { RgbImage } from '../image/types.js';
import { normalizeValue, PREPROCESSING } from '../model/preprocessing.js';

/** What a field-augmented sample went through (for tests and a run's description). */
export interface FieldDraw {
  readonly zoom: { readonly factor: number; readonly ox: number; readonly oy: number } | null;
  readonly gamma: number | null;
  readonly hueDeg: number | null;
  readonly saturation: number | null;
  readonly specular: readonly Ellipse[];
  readonly blurSigma: number | null;
  readonly noiseSigma: number | null;
  readonly noiseSeed: number;
  readonly jpegQuality: number | null;
  /** Ultrasound only (null in the colour profile): receive gain v' = g·v. */
  readonly gain: number | null;
  /** Ultrasound only: contrast about mid-grey, v' = 128 + c (v − 128). */
  readonly contrast: number | null;
  /** Ultrasound only: multiplicative speckle (addSpeckle) of this strength, seeded. */
  readonly speckle: { readonly strength: number; readonly seed: number } | null;
  /** Ultrasound only: area-average to 1/k and back up (a coarser transducer or scan converter). */
  readonly downscale: number | null;
}

const COLOUR_ONLY_NONE = { gain: null, contrast: null, speckle: null, downscale: null } as const;

/** Number of generator values one sample consumes (fixed). */
export const FIELD_DRAWS = 35;

export const FIELD_DESCRIPTION =
  'field: zoom 1-1.35x with a random crop (p 0.5), gamma e^U(-0.4,0.4) (p 0.5), hue ±25° (p 0.5), saturation 0.6-1.4 (p 0.5), ' +
  '1-4 specular highlights (p 0.3), Gaussian blur sigma 0.5-1.3 px (p 0.2), noise sigma 2.5-10 levels (p 0.2), JPEG quality 20-70 (p 0.2)';

/** Draws the parameters of one sample: always FIELD_DRAWS values. */
export function drawField(rng: Rng, size: number): FieldDraw {
  const u = (lo: number, hi: number): number => lo + (hi - lo) * rng();
  const zoomOn = rng() < 0.5;
  const zoom = { factor: u(1, 1.35), ox: rng(), oy: rng() };
  const gammaOn = rng() < 0.5;
  const gamma = Math.exp(u(-0.4, 0.4));
  const hueOn = rng() < 0.5;
  const hueDeg = u(-25, 25);
  const satOn = rng() < 0.5;
  const sat = u(0.6, 1.4);
  const specOn = rng() < 0.3;
  const count = 1 + Math.floor(rng() * 4);
  const ellipses: Ellipse[] = [];
  for (let i = 0; i < 4; i++) {
    const e = { cx: rng() * size, cy: rng() * size, rx: size * (0.01 + 0.03 * rng()), ry: size * (0.01 + 0.03 * rng()) };
    if (specOn && i < count) ellipses.push(e);
  }
  const blurOn = rng() < 0.2;
  const blurSigma = u(0.5, 1.3);
  const noiseOn = rng() < 0.2;
  const noiseSigma = u(2.5, 10);
  const noiseSeed = Math.floor(rng() * 0x100000000);
  const jpegOn = rng() < 0.2;
  const jpegQuality = Math.round(u(20, 70));
  return {
    zoom: zoomOn ? zoom : null,
    gamma: gammaOn ? gamma : null,
    hueDeg: hueOn ? hueDeg : null,
    saturation: satOn ? sat : null,
    specular: ellipses,
    blurSigma: blurOn ? blurSigma : null,
    noiseSigma: noiseOn ? noiseSigma : null,
    noiseSeed,
    jpegQuality: jpegOn ? jpegQuality : null,
    ...COLOUR_ONLY_NONE,
  };
}

/** Number of generator values one ultrasound sample consumes (fixed). */
export const ULTRASOUND_DRAWS = 22;

export const ULTRASOUND_DESCRIPTION =
  'ultrasound: zoom 1-1.35x with a random crop (p 0.5), gain 0.6-1.25 (p 0.4), gamma e^U(-0.5,0.5) (p 0.5), contrast about mid-grey 0.55-1.2 (p 0.4), ' +
  'speckle strength 0.1-0.4 (p 0.4), Gaussian blur sigma 0.5-1.5 px (p 0.2), downscale 2-4x and back (p 0.15), noise sigma 2.5-10 levels (p 0.3), JPEG quality 20-70 (p 0.2)';

/**
 * Draws the parameters of one ultrasound sample: always ULTRASOUND_DRAWS values. The ranges reach the
 * grey stress shifts (gamma 1.6, contrast 0.6, gain 0.7, speckle 0.3, blur, 4x downscale, noise 10,
 * JPEG 20) without reaching their extremes on every sample, except gamma 0.6: e^-0.5 is 0.607, just
 * short of it (widening the range would change what resumed runs draw; a new profile could).
 */
export function drawUltrasound(rng: Rng): FieldDraw {
  const u = (lo: number, hi: number): number => lo + (hi - lo) * rng();
  const zoomOn = rng() < 0.5;
  const zoom = { factor: u(1, 1.35), ox: rng(), oy: rng() };
  const gainOn = rng() < 0.4;
  const gain = u(0.6, 1.25);
  const gammaOn = rng() < 0.5;
  const gamma = Math.exp(u(-0.5, 0.5));
  const contrastOn = rng() < 0.4;
  const contrast = u(0.55, 1.2);
  const speckleOn = rng() < 0.4;
  const speckle = { strength: u(0.1, 0.4), seed: Math.floor(rng() * 0x100000000) };
  const blurOn = rng() < 0.2;
  const blurSigma = u(0.5, 1.5);
  const downOn = rng() < 0.15;
  const downscale = 2 + Math.floor(rng() * 3);
  const noiseOn = rng() < 0.3;
  const noiseSigma = u(2.5, 10);
  const noiseSeed = Math.floor(rng() * 0x100000000);
  const jpegOn = rng() < 0.2;
  const jpegQuality = Math.round(u(20, 70));
  return {
    zoom: zoomOn ? zoom : null,
    gamma: gammaOn ? gamma : null,
    hueDeg: null,
    saturation: null,
    specular: [],
    blurSigma: blurOn ? blurSigma : null,
    noiseSigma: noiseOn ? noiseSigma : null,
    noiseSeed,
    jpegQuality: jpegOn ? jpegQuality : null,
    gain: gainOn ? gain : null,
    contrast: contrastOn ? contrast : null,
    speckle: speckleOn ? speckle : null,
    downscale: downOn ? downscale : null,
  };
}

/** Normalised NHWC float → 8-bit RGB (rounded), and back: the field operations work on camera-like pixels. */
function toRgb8(image: Float32Array, size: number): RgbImage {
  const { mean, std, scale } = PREPROCESSING;
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < data.length; i++) {
    const c = i % 3;
    const v = (image[i] * std[c] + mean[c]) * scale;
    data[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
  }
  return { width: size, height: size, data };
}

function fromRgb8(img: RgbImage, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = normalizeValue(img.data[i], (i % 3) as 0 | 1 | 2);
}

/** Zooms into a window of size/factor placed at (ox, oy) of the slack: image bilinear, mask nearest. */
function zoomCrop(image: Float32Array, mask: Float32Array, size: number, z: { factor: number; ox: number; oy: number }): void {
  const win = size / z.factor;
  const x0 = (size - win) * z.ox;
  const y0 = (size - win) * z.oy;
  const srcImage = image.slice();
  const srcMask = mask.slice();
  const last = size - 1;
  for (let y = 0; y < size; y++) {
    const fy = Math.min(last, Math.max(0, y0 + ((y + 0.5) * win) / size - 0.5));
    const ya = Math.floor(fy), yb = Math.min(last, ya + 1), wy = fy - ya;
    const my = Math.min(last, Math.floor(y0 + ((y + 0.5) * win) / size));
    for (let x = 0; x < size; x++) {
      const fx = Math.min(last, Math.max(0, x0 + ((x + 0.5) * win) / size - 0.5));
      const xa = Math.floor(fx), xb = Math.min(last, xa + 1), wx = fx - xa;
      const mx = Math.min(last, Math.floor(x0 + ((x + 0.5) * win) / size));
      const dst = y * size + x;
      mask[dst] = srcMask[my * size + mx];
      for (let c = 0; c < 3; c++) {
        const a = srcImage[(ya * size + xa) * 3 + c] * (1 - wx) + srcImage[(ya * size + xb) * 3 + c] * wx;
        const b = srcImage[(yb * size + xa) * 3 + c] * (1 - wx) + srcImage[(yb * size + xb) * 3 + c] * wx;
        image[dst * 3 + c] = a * (1 - wy) + b * wy;
      }
    }
  }
}

/** Applies one draw to a (normalised NHWC) sample in place. */
export function applyField(image: Float32Array, mask: Float32Array, size: number, d: FieldDraw): void {
  if (d.zoom) zoomCrop(image, mask, size, d.zoom);
  const photometric =
    d.gamma !== null ||
    d.hueDeg !== null ||
    d.saturation !== null ||
    d.specular.length > 0 ||
    d.blurSigma !== null ||
    d.noiseSigma !== null ||
    d.jpegQuality !== null ||
    d.gain !== null ||
    d.contrast !== null ||
    d.speckle !== null ||
    d.downscale !== null;
  if (!photometric) return;
  let img = toRgb8(image, size);
  if (d.gain !== null) {
    const g = d.gain;
    img = lut((v) => g * v)(img);
  }
  if (d.gamma !== null) {
    const g = d.gamma;
    img = lut((v) => 255 * Math.pow(v / 255, g))(img);
  }
  if (d.contrast !== null) {
    const c = d.contrast;
    img = lut((v) => 128 + c * (v - 128))(img);
  }
  // Speckle multiplies the echo before the scanner smooths and resamples it.
  if (d.speckle !== null) img = addSpeckle(img, d.speckle.strength, mulberry32(d.speckle.seed));
  if (d.hueDeg !== null) img = hueRotate(d.hueDeg)(img);
  if (d.saturation !== null) img = saturation(d.saturation)(img);
  if (d.specular.length > 0) img = drawSpecular(img, d.specular);
  if (d.blurSigma !== null) img = gaussianBlur(img, d.blurSigma);
  if (d.downscale !== null) img = downUp(d.downscale)(img);
  if (d.noiseSigma !== null) img = addNoise(img, d.noiseSigma, mulberry32(d.noiseSeed));
  if (d.jpegQuality !== null) img = jpegRoundTrip(d.jpegQuality)(img);
  fromRgb8(img, image);
}
