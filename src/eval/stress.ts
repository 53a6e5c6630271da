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
import jpeg from 'jpeg-js';

import { mulberry32, type Rng } from '../data/random.js';
import type { RgbImage } from '../image/types.js';

export interface StressShift {
  /** Short stable name (manifest key). */
  readonly name: string;
  /** What it stands for and its parameters, for the manifest and the README. */
  readonly description: string;
  readonly apply: (image: RgbImage, stem: string) => RgbImage;
}

const clamp8 = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** A per-value lookup table applied to every channel. */
function lut(f: (v: number) => number): (img: RgbImage) => RgbImage {
  const table = new Uint8Array(256);
  for (let v = 0; v < 256; v++) table[v] = clamp8(f(v));
  return (img) => ({ width: img.width, height: img.height, data: img.data.map((v) => table[v]) });
}

/** Seed from the stem: the same image gets the same noise in every run and for every model. */
function stemRng(stem: string, salt: number): Rng {
  let h = 0x811c9dc5 ^ salt;
  for (let i = 0; i < stem.length; i++) h = Math.imul(h ^ stem.charCodeAt(i), 0x01000193);
  return mulberry32(h >>> 0);
}

/** Standard normal (Box-Muller) from a uniform source. */
function gauss(rng: Rng): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Rotates hue by `deg` degrees in YIQ (luma kept), the usual cheap hue shift. */
function hueRotate(deg: number): (img: RgbImage) => RgbImage {
  const c = Math.cos((deg * Math.PI) / 180);
  const s = Math.sin((deg * Math.PI) / 180);
  return (img) => {
    const out = new Uint8Array(img.data.length);
    const d = img.data;
    for (let i = 0; i < d.length; i += 3) {
      const r = d[i], g = d[i + 1], b = d[i + 2];
      const y = 0.299 * r + 0.587 * g + 0.114 * b;
      const iq = 0.596 * r - 0.274 * g - 0.322 * b;
      const q = 0.211 * r - 0.523 * g + 0.312 * b;
      const i2 = iq * c - q * s;
      const q2 = iq * s + q * c;
      out[i] = clamp8(y + 0.956 * i2 + 0.621 * q2);
      out[i + 1] = clamp8(y - 0.272 * i2 - 0.647 * q2);
      out[i + 2] = clamp8(y - 1.106 * i2 + 1.703 * q2);
    }
    return { width: img.width, height: img.height, data: out };
  };
}

function saturation(factor: number): (img: RgbImage) => RgbImage {
  return (img) => {
    const out = new Uint8Array(img.data.length);
    const d = img.data;
    for (let i = 0; i < d.length; i += 3) {
      const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      for (let c = 0; c < 3; c++) out[i + c] = clamp8(y + factor * (d[i + c] - y));
    }
    return { width: img.width, height: img.height, data: out };
  };
}

/** Separable Gaussian blur, sigma in pixels, edges clamped. */
export function gaussianBlur(img: RgbImage, sigma: number): RgbImage {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += k[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  const { width: w, height: h } = img;
  const tmp = new Float64Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let j = -radius; j <= radius; j++) {
          const xx = Math.min(w - 1, Math.max(0, x + j));
          acc += k[j + radius] * img.data[(y * w + xx) * 3 + c];
        }
        tmp[(y * w + x) * 3 + c] = acc;
      }
    }
  }
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let j = -radius; j <= radius; j++) {
          const yy = Math.min(h - 1, Math.max(0, y + j));
          acc += k[j + radius] * tmp[(yy * w + x) * 3 + c];
        }
        out[(y * w + x) * 3 + c] = clamp8(acc);
      }
    }
  }
  return { width: w, height: h, data: out };
}

/** Area-average down by an integer factor, then bilinear back to the original size: a coarser sensor. */
function downUp(factor: number): (img: RgbImage) => RgbImage {
  return (img) => {
    const { width: w, height: h } = img;
    const sw = Math.max(1, Math.floor(w / factor));
    const sh = Math.max(1, Math.floor(h / factor));
    const small = new Float64Array(sw * sh * 3);
    for (let y = 0; y < sh; y++) {
      for (let x = 0; x < sw; x++) {
        for (let c = 0; c < 3; c++) {
          let acc = 0;
          let n = 0;
          for (let yy = y * factor; yy < Math.min(h, (y + 1) * factor); yy++) {
            for (let xx = x * factor; xx < Math.min(w, (x + 1) * factor); xx++) {
              acc += img.data[(yy * w + xx) * 3 + c];
              n++;
            }
          }
          small[(y * sw + x) * 3 + c] = acc / n;
        }
      }
    }
    const out = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      const fy = Math.min(sh - 1, Math.max(0, ((y + 0.5) * sh) / h - 0.5));
      const y0 = Math.floor(fy), y1 = Math.min(sh - 1, y0 + 1), wy = fy - y0;
      for (let x = 0; x < w; x++) {
        const fx = Math.min(sw - 1, Math.max(0, ((x + 0.5) * sw) / w - 0.5));
        const x0 = Math.floor(fx), x1 = Math.min(sw - 1, x0 + 1), wx = fx - x0;
        for (let c = 0; c < 3; c++) {
          const a = small[(y0 * sw + x0) * 3 + c] * (1 - wx) + small[(y0 * sw + x1) * 3 + c] * wx;
          const b = small[(y1 * sw + x0) * 3 + c] * (1 - wx) + small[(y1 * sw + x1) * 3 + c] * wx;
          out[(y * w + x) * 3 + c] = clamp8(a * (1 - wy) + b * wy);
        }
      }
    }
    return { width: w, height: h, data: out };
  };
}

function jpegRoundTrip(quality: number): (img: RgbImage) => RgbImage {
  return (img) => {
    const n = img.width * img.height;
    const rgba = new Uint8Array(n * 4);
    for (let i = 0; i < n; i++) {
      rgba[i * 4] = img.data[i * 3];
      rgba[i * 4 + 1] = img.data[i * 3 + 1];
      rgba[i * 4 + 2] = img.data[i * 3 + 2];
      rgba[i * 4 + 3] = 255;
    }
    const encoded = jpeg.encode({ width: img.width, height: img.height, data: rgba }, quality).data;
    const decoded = jpeg.decode(encoded, { useTArray: true, formatAsRGBA: false });
    return { width: decoded.width, height: decoded.height, data: decoded.data };
  };
}

/** Additive Gaussian noise (sensor noise), the same value on all channels of a grey pixel. */
function additiveNoise(sigma: number, salt: number): (img: RgbImage, stem: string) => RgbImage {
  return (img, stem) => {
    const rng = stemRng(stem, salt);
    const out = new Uint8Array(img.data.length);
    for (let i = 0; i < img.data.length; i += 3) {
      const n = sigma * gauss(rng);
      for (let c = 0; c < 3; c++) out[i + c] = clamp8(img.data[i + c] + n);
    }
    return { width: img.width, height: img.height, data: out };
  };
}

/**
 * Multiplicative speckle as ultrasound shows it: a smooth (blurred) unit-mean field times the image,
 * so grains are a few pixels wide rather than per pixel.
 */
function speckle(strength: number, salt: number): (img: RgbImage, stem: string) => RgbImage {
  return (img, stem) => {
    const rng = stemRng(stem, salt);
    const n = img.width * img.height;
    const field = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) field[i * 3] = field[i * 3 + 1] = field[i * 3 + 2] = clamp8(128 + 64 * gauss(rng));
    const smooth = gaussianBlur({ width: img.width, height: img.height, data: field }, 1);
    const out = new Uint8Array(img.data.length);
    for (let i = 0; i < n * 3; i++) out[i] = clamp8(img.data[i] * (1 + strength * ((smooth.data[i] - 128) / 32)));
    return { width: img.width, height: img.height, data: out };
  };
}

/** Specular highlights of an endoscope's light: a few saturated white ellipses with soft edges. */
function specular(count: number, salt: number): (img: RgbImage, stem: string) => RgbImage {
  return (img, stem) => {
    const rng = stemRng(stem, salt);
    const { width: w, height: h } = img;
    const out = img.data.slice();
    const scale = Math.min(w, h);
    for (let s = 0; s < count; s++) {
      const cx = rng() * w, cy = rng() * h;
      const rx = scale * (0.01 + 0.03 * rng()), ry = scale * (0.01 + 0.03 * rng());
      for (let y = Math.max(0, Math.floor(cy - ry * 1.5)); y < Math.min(h, Math.ceil(cy + ry * 1.5)); y++) {
        for (let x = Math.max(0, Math.floor(cx - rx * 1.5)); x < Math.min(w, Math.ceil(cx + rx * 1.5)); x++) {
          const d = Math.hypot((x - cx) / rx, (y - cy) / ry);
          const a = d <= 1 ? 1 : d >= 1.5 ? 0 : (1.5 - d) / 0.5;
          if (a === 0) continue;
          for (let c = 0; c < 3; c++) {
            const i = (y * w + x) * 3 + c;
            out[i] = clamp8(out[i] * (1 - a) + 255 * a);
          }
        }
      }
    }
    return { width: w, height: h, data: out };
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
  shift('noise-10', 'additive Gaussian noise, sigma 10 grey levels, seeded per image', additiveNoise(10, 1)),
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
  shift('speckle-0.3', 'multiplicative speckle: a smoothed unit-mean field, +-30 % per sigma, seeded per image', speckle(0.3, 3)),
];

/** True when every pixel has R = G = B (a greyscale image, however it was stored). */
export function isGrey(img: RgbImage): boolean {
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
  return true;
}

export type Modality = 'colour' | 'grey';

export function shiftsFor(modality: Modality): readonly StressShift[] {
  return modality === 'grey' ? GREY_SHIFTS : COLOUR_SHIFTS;
}
