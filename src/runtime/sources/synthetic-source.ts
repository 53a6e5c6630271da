/**
 * Generated frames, for trying the pipeline with no camera and no data: a textured background with
 * a bright ellipse moving across it, in RGB24 or YUYV.
 */
import { Pacer, type Frame, type FrameSource, type SourceOptions } from './types.js';

export interface SyntheticOptions extends SourceOptions {
  readonly width?: number;
  readonly height?: number;
  readonly format?: 'RGB24' | 'YUYV';
  /** Frames to produce; default unbounded. */
  readonly count?: number;
}

export class SyntheticSource implements FrameSource {
  readonly description = 'synthetic';
  private seq = 0;
  private readonly pacer: Pacer;
  private readonly width: number;
  private readonly height: number;

  constructor(private readonly options: SyntheticOptions = {}) {
    this.width = options.width ?? 640;
    this.height = options.height ?? 480;
    if (this.width % 2 !== 0 || this.width <= 0 || this.height <= 0) throw new RangeError(`synthetic size ${this.width}x${this.height} must be positive with an even width`);
    this.pacer = new Pacer(options.fps);
  }

  async open(): Promise<void> {}

  async next(): Promise<Frame | null> {
    const seq = this.seq;
    if (this.options.count !== undefined && seq >= this.options.count) return null;
    this.seq++;
    const { width: w, height: h } = this;
    const cx = (w / 2) * (1 + 0.6 * Math.sin(seq / 15));
    const cy = (h / 2) * (1 + 0.4 * Math.cos(seq / 20));
    const rx = w / 8;
    const ry = h / 6;
    const rgb = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1;
        const o = (y * w + x) * 3;
        const tex = ((x >> 3) + (y >> 3)) & 1 ? 30 : 0;
        rgb[o] = inside ? 230 : 90 + tex;
        rgb[o + 1] = inside ? 120 : 60 + tex;
        rgb[o + 2] = inside ? 110 : 70 + tex;
      }
    }
    await this.pacer.wait(seq);
    const yuyv = this.options.format === 'YUYV';
    return {
      seq,
      id: `synthetic#${seq}`,
      format: yuyv ? 'YUYV' : 'RGB24',
      width: w,
      height: h,
      data: yuyv ? rgbToYuyv(rgb, w, h) : rgb,
      captureTimeMs: performance.timeOrigin + performance.now(),
    };
  }

  async close(): Promise<void> {}
}

/** BT.601 limited-range RGB → YUV, the inverse of the conversion the native preprocessor applies. */
function rgbToYuv(r: number, g: number, b: number): [number, number, number] {
  const y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
  const u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
  const v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
  return [y, u, v];
}

/** Packs RGB24 into YUYV, averaging the chroma of each horizontal pixel pair (as cameras do). */
export function rgbToYuyv(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height * 2);
  for (let i = 0; i < width * height; i += 2) {
    const [y0, u0, v0] = rgbToYuv(rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]);
    const [y1, u1, v1] = rgbToYuv(rgb[i * 3 + 3], rgb[i * 3 + 4], rgb[i * 3 + 5]);
    out[i * 2] = y0;
    out[i * 2 + 1] = (u0 + u1 + 1) >> 1;
    out[i * 2 + 2] = y1;
    out[i * 2 + 3] = (v0 + v1 + 1) >> 1;
  }
  return out;
}

/**
 * Packed RGB to GREY (8-bit full-range luma, as a greyscale sensor or an ultrasound machine's video
 * output delivers it): Y = (77 R + 150 G + 29 B + 128) >> 8, BT.601 weights in 1/256ths. The weights
 * sum to 256, so a grey pixel (R = G = B = v) gives exactly v, and the pipeline's GREY → RGB
 * (R = G = B = Y) hands the model the very pixels the trainer read from a greyscale image.
 */
export function rgbToGrey(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = (77 * rgb[i * 3] + 150 * rgb[i * 3 + 1] + 29 * rgb[i * 3 + 2] + 128) >> 8;
  return out;
}

/** Packed RGB to NV12 (BT.601 limited range): full-resolution Y, then U/V interleaved, each the rounded mean of a 2x2 block. */
export function rgbToNv12(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const pixels = width * height;
  const out = new Uint8Array(pixels + pixels / 2);
  const u = new Uint16Array((width / 2) * (height / 2));
  const v = new Uint16Array(u.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const [yy, uu, vv] = rgbToYuv(rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]);
      out[i] = yy;
      const c = (y >> 1) * (width / 2) + (x >> 1);
      u[c] += uu;
      v[c] += vv;
    }
  }
  for (let c = 0; c < u.length; c++) {
    out[pixels + 2 * c] = (u[c] + 2) >> 2;
    out[pixels + 2 * c + 1] = (v[c] + 2) >> 2;
  }
  return out;
}
