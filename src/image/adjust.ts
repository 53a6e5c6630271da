/**
 * Photometric changes and degradations of 8-bit RGB images, shared by the stress tests
 * (src/eval/stress.ts: fixed, named shifts of the test split) and the trainer's field augmentation
 * (src/train/augment-field.ts: the same operations with random parameters), so that what a model is
 * trained to withstand and what it is tested against are the same operations.
 */
import jpeg from 'jpeg-js';

import type { Rng } from '../data/random.js';
import type { RgbImage } from './types.js';

export const clamp8 = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** A per-value lookup table applied to every channel. */
export function lut(f: (v: number) => number): (img: RgbImage) => RgbImage {
  const table = new Uint8Array(256);
  for (let v = 0; v < 256; v++) table[v] = clamp8(f(v));
  return (img) => ({ width: img.width, height: img.height, data: img.data.map((v) => table[v]) });
}

/** Standard normal (Box-Muller) from a uniform source. */
export function gauss(rng: Rng): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Rotates hue by `deg` degrees in YIQ (luma kept), the usual cheap hue shift. */
export function hueRotate(deg: number): (img: RgbImage) => RgbImage {
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

export function saturation(factor: number): (img: RgbImage) => RgbImage {
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
export function downUp(factor: number): (img: RgbImage) => RgbImage {
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

export function jpegRoundTrip(quality: number): (img: RgbImage) => RgbImage {
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

/** Adds Gaussian noise of `sigma` grey levels, the same value on the three channels of a pixel. */
export function addNoise(img: RgbImage, sigma: number, rng: Rng): RgbImage {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < img.data.length; i += 3) {
    const n = sigma * gauss(rng);
    for (let c = 0; c < 3; c++) out[i + c] = clamp8(img.data[i + c] + n);
  }
  return { width: img.width, height: img.height, data: out };
}

/**
 * Multiplicative speckle as ultrasound shows it: a smooth (blurred) unit-mean field times the image,
 * so grains are a few pixels wide rather than per pixel.
 */
export function addSpeckle(img: RgbImage, strength: number, rng: Rng): RgbImage {
  const n = img.width * img.height;
  const field = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) field[i * 3] = field[i * 3 + 1] = field[i * 3 + 2] = clamp8(128 + 64 * gauss(rng));
  const smooth = gaussianBlur({ width: img.width, height: img.height, data: field }, 1);
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < n * 3; i++) out[i] = clamp8(img.data[i] * (1 + strength * ((smooth.data[i] - 128) / 32)));
  return { width: img.width, height: img.height, data: out };
}

/** An ellipse in pixels: centre and radii. */
export interface Ellipse {
  readonly cx: number;
  readonly cy: number;
  readonly rx: number;
  readonly ry: number;
}

/** Specular highlights of an endoscope's light: saturated white ellipses with soft edges (to 1.5 radii). */
export function drawSpecular(img: RgbImage, ellipses: readonly Ellipse[]): RgbImage {
  const { width: w, height: h } = img;
  const out = img.data.slice();
  for (const { cx, cy, rx, ry } of ellipses) {
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
}
