/**
 * Stress tests: the held-out test split under controlled, deterministic image shifts that stand for
 * what another site's equipment delivers (another endoscope's colour response and light source, an
 * ultrasound machine's gain and speckle, a blurrier or more compressed video path, a lower-resolution
 * sensor). Each shift is a pure function of the image and its stem (noise is seeded from the stem), so
 * a release can be re-checked figure for figure. `model release` scores fp32 against the truth under
 * each shift and every converted precision against fp32 under each shift (src/model/release.ts).
 *
 * Two sets: COLOUR_SHIFTS for colour data (endoscopy), GREY_SHIFTS for greyscale data (ultrasound;
 * hue, saturation and specular highlights mean nothing there). `shiftsFor` picks by the data.
 */
import { mulberry32, type Rng } from '../data/random.js';
import { addNoise, addSpeckle, downUp, drawSpecular, gaussianBlur, hueRotate, jpegRoundTrip, lut, saturation, type Ellipse } from '../image/adjust.js';
import type { RgbImage } from '../image/types.js';
import type { Modality } from '../data/modality.js';

export interface StressShift {
  /** Short stable name (manifest key). */
  readonly name: string;
  /** What it stands for and its parameters, for the manifest and the README. */
  readonly description: string;
  readonly apply: (image: RgbImage, stem: string) => RgbImage;
}

/** Seed from the stem: the same image gets the same noise in every run and for every model. */
function stemRng(stem: string, salt: number): Rng {
  let h = 0x811c9dc5 ^ salt;
  for (let i = 0; i < stem.length; i++) h = Math.imul(h ^ stem.charCodeAt(i), 0x01000193);
  return mulberry32(h >>> 0);
}

/** Six (or `count`) highlights, 1-4 % of the shorter side, placed by the stem's generator. */
function specular(count: number, salt: number): (img: RgbImage, stem: string) => RgbImage {
  return (img, stem) => {
    const rng = stemRng(stem, salt);
    const scale = Math.min(img.width, img.height);
    const ellipses: Ellipse[] = [];
    for (let s = 0; s < count; s++) {
      ellipses.push({ cx: rng() * img.width, cy: rng() * img.height, rx: scale * (0.01 + 0.03 * rng()), ry: scale * (0.01 + 0.03 * rng()) });
    }
    return drawSpecular(img, ellipses);
  };
}

/** Blur sigma relative to the image: about one model-input pixel at 256 for any native size. */
function blurShift(): StressShift {
  return {
    name: 'blur',
    description: 'Gaussian blur, sigma = max(1, max(width, height) / 256) px, about one model-input pixel (out of focus, a softer video path)',
    apply: (img) => gaussianBlur(img, Math.max(1, Math.max(img.width, img.height) / 256)),
  };
}

const shift = (name: string, description: string, f: (img: RgbImage, stem: string) => RgbImage): StressShift => ({ name, description, apply: f });

const COMMON: readonly StressShift[] = [
  shift('gamma-0.6', 'gamma 0.6: v = 255 (v / 255)^0.6 (brighter mid-tones)', lut((v) => 255 * Math.pow(v / 255, 0.6))),
  shift('gamma-1.6', 'gamma 1.6 (darker mid-tones)', lut((v) => 255 * Math.pow(v / 255, 1.6))),
  shift('contrast-0.6', 'contrast 0.6 about mid-grey: v = 128 + 0.6 (v - 128)', lut((v) => 128 + 0.6 * (v - 128))),
  shift('dim-0.7', 'gain 0.7: v = 0.7 v (weaker light or lower receive gain)', lut((v) => 0.7 * v)),
  blurShift(),
  shift('jpeg-q20', 'JPEG round trip at quality 20 (jpeg-js): blocking and ringing of a compressed video path', jpegRoundTrip(20)),
  shift('downscale-4', 'area-average to 1/4 size and bilinear back up (a lower-resolution sensor)', downUp(4)),
  shift('noise-10', 'additive Gaussian noise, sigma 10 grey levels, seeded per image', (img, stem) => addNoise(img, 10, stemRng(stem, 1))),
];

/** Shifts for colour (endoscopy) data. */
export const COLOUR_SHIFTS: readonly StressShift[] = [
  ...COMMON,
  shift('hue+20', 'hue rotated +20 degrees (YIQ), luma kept: another camera head or light source', hueRotate(20)),
  shift('hue-20', 'hue rotated -20 degrees', hueRotate(-20)),
  shift('saturation-0.5', 'saturation halved (blend towards luma)', saturation(0.5)),
  shift('specular-6', 'six saturated white highlights with soft edges, 1-4 % of the shorter side, seeded per image', specular(6, 2)),
];

/** Shifts for greyscale (ultrasound) data. */
export const GREY_SHIFTS: readonly StressShift[] = [
  ...COMMON,
  shift('speckle-0.3', 'multiplicative speckle: a smoothed unit-mean field, +-30 % per sigma, seeded per image', (img, stem) => addSpeckle(img, 0.3, stemRng(stem, 3))),
];

export function shiftsFor(modality: Modality): readonly StressShift[] {
  return modality === 'grey' ? GREY_SHIFTS : COLOUR_SHIFTS;
}
