/**
 * The reference preprocessing. The native C++ runtime must reproduce preprocessRgb bit for bit, so the
 * arithmetic below is deliberately literal: every intermediate is a float64 evaluated in the written
 * order (no reciprocal multiplications, no fused multiply-add), and only the final value is rounded
 * to float32. A C++ port has to be built with -ffp-contract=off and without -ffast-math, or aarch64
 * compilers will fuse the bilinear products into FMAs and the last bit will differ.
 */
import { PREPROCESSING } from '../model/preprocessing.js';
import { assertDims, assertGrayImage, assertRgbImage, type GrayImage, type RgbImage } from './types.js';

export type Fit = 'stretch' | 'letterbox';

export interface Size {
  width: number;
  height: number;
}

/** Where the scaled source lands inside the output in letterbox mode. */
export interface LetterboxGeometry {
  /** min(outW/srcW, outH/srcH). */
  scale: number;
  /** Content rectangle size: max(1, Math.round(src * scale)). */
  newW: number;
  newH: number;
  /** Content rectangle origin: floor((out - new) / 2). */
  ox: number;
  oy: number;
}

export function letterboxGeometry(srcW: number, srcH: number, outW: number, outH: number): LetterboxGeometry {
  assertDims(srcW, srcH, 'letterbox source');
  assertDims(outW, outH, 'letterbox output');
  const scale = Math.min(outW / srcW, outH / srcH);
  // At least one pixel, so extreme aspect ratios still sample the image (the native code does the same).
  const newW = Math.max(1, Math.round(srcW * scale));
  const newH = Math.max(1, Math.round(srcH * scale));
  return { scale, newW, newH, ox: Math.floor((outW - newW) / 2), oy: Math.floor((outH - newH) / 2) };
}

/**
 * Bilinear sample positions for one axis: for k in [0, dstN), s = (k + 0.5) * srcN / dstN - 0.5
 * clamped to [0, srcN-1], i0 = floor(s), i1 = min(i0+1, srcN-1), f = s - i0. Computed once per axis so
 * the per-pixel loop does no division.
 */
interface AxisTable {
  i0: Int32Array;
  i1: Int32Array;
  f: Float64Array;
}

function bilinearAxis(srcN: number, dstN: number): AxisTable {
  const i0 = new Int32Array(dstN);
  const i1 = new Int32Array(dstN);
  const f = new Float64Array(dstN);
  const last = srcN - 1;
  for (let k = 0; k < dstN; k++) {
    let s = ((k + 0.5) * srcN) / dstN - 0.5;
    if (s < 0) s = 0;
    else if (s > last) s = last;
    const a = Math.floor(s);
    i0[k] = a;
    i1[k] = Math.min(a + 1, last);
    f[k] = s - a;
  }
  return { i0, i1, f };
}

/**
 * Resizes an RGB image to `size` and normalises it to a 1x3xHxW float tensor (NCHW, RGB) with
 * (v / scale - mean[c]) / std[c] from PREPROCESSING.
 * - stretch: bilinear over the whole output (aspect ratio not kept).
 * - letterbox: the source is scaled by min(outW/srcW, outH/srcH) into a centred content rectangle;
 *   outside it every channel is exactly 0 (the normalised value, i.e. the dataset mean colour).
 */
export function preprocessRgb(src: RgbImage, size: Size, fit: Fit = 'stretch'): Float32Array {
  assertRgbImage(src, 'preprocessRgb source');
  assertDims(size.width, size.height, 'preprocessRgb output');
  const outW = size.width;
  const outH = size.height;
  const srcW = src.width;
  const srcH = src.height;

  let newW: number, newH: number, ox: number, oy: number;
  if (fit === 'stretch') {
    newW = outW;
    newH = outH;
    ox = 0;
    oy = 0;
  } else if (fit === 'letterbox') {
    ({ newW, newH, ox, oy } = letterboxGeometry(srcW, srcH, outW, outH));
  } else {
    throw new RangeError(`preprocessRgb: unknown fit "${String(fit)}" (expected stretch or letterbox)`);
  }

  const out = new Float32Array(3 * outW * outH);
  if (newW === 0 || newH === 0) return out;

  const tx = bilinearAxis(srcW, newW);
  const ty = bilinearAxis(srcH, newH);
  // Byte offsets of the sampled columns within a source row.
  const cx0 = new Int32Array(newW);
  const cx1 = new Int32Array(newW);
  for (let x = 0; x < newW; x++) {
    cx0[x] = tx.i0[x] * 3;
    cx1[x] = tx.i1[x] * 3;
  }

  const { scale, mean, std } = PREPROCESSING;
  const m0 = mean[0], m1 = mean[1], m2 = mean[2];
  const s0 = std[0], s1 = std[1], s2 = std[2];
  const data = src.data;
  const plane = outW * outH;
  const rowBytes = srcW * 3;

  for (let y = 0; y < newH; y++) {
    const r0 = ty.i0[y] * rowBytes;
    const r1 = ty.i1[y] * rowBytes;
    const fy = ty.f[y];
    const gy = 1 - fy;
    const rowOut = (oy + y) * outW + ox;
    for (let x = 0; x < newW; x++) {
      const fx = tx.f[x];
      const gx = 1 - fx;
      const a = r0 + cx0[x], b = r0 + cx1[x], c = r1 + cx0[x], d = r1 + cx1[x];
      const o = rowOut + x;
      const v0 = gy * (gx * data[a] + fx * data[b]) + fy * (gx * data[c] + fx * data[d]);
      const v1 = gy * (gx * data[a + 1] + fx * data[b + 1]) + fy * (gx * data[c + 1] + fx * data[d + 1]);
      const v2 = gy * (gx * data[a + 2] + fx * data[b + 2]) + fy * (gx * data[c + 2] + fx * data[d + 2]);
      out[o] = (v0 / scale - m0) / s0;
      out[plane + o] = (v1 / scale - m1) / s1;
      out[2 * plane + o] = (v2 / scale - m2) / s2;
    }
  }
  return out;
}

/** Nearest-neighbour resize of a mask (or any grey image): sx = min(floor((x+0.5)*srcW/w), srcW-1). */
export function resizeMaskNearest(mask: GrayImage, width: number, height: number): GrayImage {
  assertGrayImage(mask, 'resizeMaskNearest source');
  assertDims(width, height, 'resizeMaskNearest output');
  const srcW = mask.width;
  const srcH = mask.height;
  const xs = new Int32Array(width);
  for (let x = 0; x < width; x++) xs[x] = Math.min(Math.floor(((x + 0.5) * srcW) / width), srcW - 1);
  const out = new Uint8Array(width * height);
  const src = mask.data;
  for (let y = 0; y < height; y++) {
    const row = Math.min(Math.floor(((y + 0.5) * srcH) / height), srcH - 1) * srcW;
    const o = y * width;
    for (let x = 0; x < width; x++) out[o + x] = src[row + xs[x]];
  }
  return { width, height, data: out };
}

/**
 * Bilinear resize of a single-channel float map, same formula as preprocessRgb's stretch mode; used
 * to bring model-size probabilities back to the native frame size.
 */
export function resizeProbBilinear(
  prob: Float32Array,
  srcW: number,
  srcH: number,
  outW: number,
  outH: number,
): Float32Array {
  assertDims(srcW, srcH, 'resizeProbBilinear source');
  assertDims(outW, outH, 'resizeProbBilinear output');
  if (prob.length !== srcW * srcH) {
    throw new RangeError(`resizeProbBilinear: input has ${prob.length} values, expected ${srcW}x${srcH}`);
  }
  return sampleBilinear(prob, srcW, 0, 0, srcW, srcH, outW, outH);
}

/**
 * Maps a model-size map produced from a letterboxed frame back to the native frame: the content
 * rectangle is cut out and resized bilinearly to srcW x srcH, i.e. exactly
 * resizeProbBilinear(crop(prob, ox, oy, newW, newH), newW, newH, srcW, srcH). The padding is ignored.
 */
export function letterboxInverse(
  prob: Float32Array,
  modelW: number,
  modelH: number,
  srcW: number,
  srcH: number,
): Float32Array {
  const g = letterboxGeometry(srcW, srcH, modelW, modelH);
  if (prob.length !== modelW * modelH) {
    throw new RangeError(`letterboxInverse: input has ${prob.length} values, expected ${modelW}x${modelH}`);
  }
  if (g.newW === 0 || g.newH === 0) {
    throw new RangeError(
      `letterboxInverse: a ${srcW}x${srcH} frame letterboxed into ${modelW}x${modelH} has an empty content area`,
    );
  }
  return sampleBilinear(prob, modelW, g.ox, g.oy, g.newW, g.newH, srcW, srcH);
}

/** Bilinear resize of the w x h window at (ox, oy) of a map whose rows are `stride` values long. */
function sampleBilinear(
  src: Float32Array,
  stride: number,
  ox: number,
  oy: number,
  w: number,
  h: number,
  outW: number,
  outH: number,
): Float32Array {
  const tx = bilinearAxis(w, outW);
  const ty = bilinearAxis(h, outH);
  const out = new Float32Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    const r0 = (oy + ty.i0[y]) * stride + ox;
    const r1 = (oy + ty.i1[y]) * stride + ox;
    const fy = ty.f[y];
    const gy = 1 - fy;
    const o = y * outW;
    for (let x = 0; x < outW; x++) {
      const x0 = tx.i0[x], x1 = tx.i1[x];
      const fx = tx.f[x];
      const gx = 1 - fx;
      out[o + x] = gy * (gx * src[r0 + x0] + fx * src[r0 + x1]) + fy * (gx * src[r1 + x0] + fx * src[r1 + x1]);
    }
  }
  return out;
}
