import t from 'tap';

import { PREPROCESSING } from '../../../src/model/preprocessing.js';
import type { NativeBinding } from '../../../src/runtime/native/binding.js';
import { frameByteLength, PIXEL_FORMATS, toRgb, yuvToRgb, type PixelFormat } from '../../../src/runtime/native/pixel-formats.js';
import { preprocessFrame } from '../../../src/runtime/native/runtime.js';
import { native } from './fixtures/native.js';
import { referenceResizeNormalize } from './fixtures/resize-reference.js';
import { preprocessRgb } from '../../../src/image/preprocess.js';

const { binding, skip } = native();

function randomBytes(n: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** First index where two arrays differ bitwise (Float32 compared by bits), or -1. */
function firstDifference(a: Float32Array | Uint8Array, b: Float32Array | Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const ua = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const ub = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return Math.floor(i / a.BYTES_PER_ELEMENT);
  return -1;
}

t.test('BT.601 limited-range reference: known values', async (t) => {
  const px = new Uint8Array(3);
  yuvToRgb(16, 128, 128, px, 0);
  t.same([...px], [0, 0, 0], 'video black');
  yuvToRgb(235, 128, 128, px, 0);
  t.same([...px], [255, 255, 255], 'video white');
  yuvToRgb(81, 90, 240, px, 0);
  t.same([...px], [255, 0, 0], 'BT.601 red (81, 90, 240)');
  yuvToRgb(0, 0, 255, px, 0);
  t.equal(px[2], 0, 'below black clamps to 0');
});

t.test('frame byte lengths agree with the TS reference', { skip }, async (t) => {
  const b = binding as NativeBinding;
  for (const format of PIXEL_FORMATS) {
    for (const [w, h] of [[2, 2], [64, 48], [1920, 1080]]) {
      t.equal(b.frameByteLength(format, w, h), frameByteLength(format, w, h), `${format} ${w}x${h}`);
    }
  }
  t.throws(() => b.frameByteLength('YUYV', 3, 2), /YUYV frame width must be even/);
  t.throws(() => b.frameByteLength('NV12', 4, 3), /NV12 frame width and height must be even/);
  t.throws(() => b.frameByteLength('RGB24' as PixelFormat, 0, 2), /non-zero size/);
  t.throws(() => b.frameByteLength('H264' as PixelFormat, 2, 2), { code: 'ERR_INVALID_ARGUMENT', message: /unknown pixel format 'H264'/ });
  t.throws(() => b.frameByteLength('MJPEG', 2, 2), { code: 'ERR_INVALID_ARGUMENT', message: /MJPEG frames have no fixed byte length/ });
});

t.test('each pixel format converts to RGB exactly like the TS reference', { skip }, async (t) => {
  const b = binding as NativeBinding;
  for (const format of PIXEL_FORMATS) {
    for (const [w, h] of [[2, 2], [6, 4], [64, 36]]) {
      // Every possible byte value appears for the larger frames, so YUV clamping is exercised.
      const frame = randomBytes(frameByteLength(format, w, h), w * 31 + h + format.length);
      const nativeRgb = b.toRgb(frame, w, h, format);
      const ref = toRgb(frame, w, h, format);
      t.equal(firstDifference(nativeRgb, ref), -1, `${format} ${w}x${h}`);
    }
  }
  // Exhaustive over (Y, U, V) in steps that include the range ends: YUYV with both pixels.
  const values: number[] = [];
  for (let v = 0; v < 256; v += 5) values.push(v);
  values.push(255);
  const frame = new Uint8Array(values.length ** 3 * 4);
  let o = 0;
  for (const y of values) for (const u of values) for (const v of values) frame.set([y, u, 255 - y, v], (o++) * 4);
  const n = values.length; // rows of n * n macropixels (2 pixels each)
  t.equal(o, n ** 3);
  t.equal(firstDifference(b.toRgb(frame, 2 * n * n, n, 'YUYV'), toRgb(frame, 2 * n * n, n, 'YUYV')), -1, 'YUYV over the YUV cube');
});

t.test('truncated and oversized frames are rejected with a clear error', { skip }, async (t) => {
  const b = binding as NativeBinding;
  for (const format of PIXEL_FORMATS) {
    const n = frameByteLength(format, 8, 4);
    t.throws(() => b.toRgb(new Uint8Array(n - 1), 8, 4, format), {
      code: 'ERR_FRAME_SIZE',
      format,
      expected: String(n),
      actual: String(n - 1),
      message: `truncated ${format} frame: 8x4 ${format} needs ${n} bytes, got ${n - 1}`,
    });
    t.throws(
      () => preprocessFrame(new Uint8Array(n - 1), { format, width: 8, height: 4 }, { width: 4, height: 4 }, 'stretch', PREPROCESSING, b),
      { code: 'ERR_FRAME_SIZE', message: new RegExp(`truncated ${format} frame`) },
    );
    t.throws(() => b.toRgb(new Uint8Array(n + 1), 8, 4, format), { code: 'ERR_FRAME_SIZE', message: /oversized/ });
  }
  t.throws(() => toRgb(new Uint8Array(10), 4, 4, 'GREY'), /truncated GREY frame: 4x4 GREY needs 16 bytes, got 10/);
});

t.test('resize + normalise match the TS reference bit for bit', { skip }, async (t) => {
  const b = binding as NativeBinding;
  const cases: [number, number, number, number][] = [
    [64, 48, 32, 32], // downscale, aspect change
    [640, 480, 256, 256],
    [17, 9, 32, 32], // upscale, odd sizes
    [300, 100, 128, 96],
    [1, 1, 8, 8],
    [5, 300, 64, 64], // extreme aspect
    [32, 32, 32, 32], // identity
  ];
  for (const [w, h, ow, oh] of cases) {
    for (const fit of ['stretch', 'letterbox'] as const) {
      for (const format of PIXEL_FORMATS) {
        const fw = format === 'YUYV' || format === 'NV12' ? w + (w % 2) : w;
        const fh = format === 'NV12' ? h + (h % 2) : h;
        const frame = randomBytes(frameByteLength(format, fw, fh), fw * 7 + fh * 3 + ow);
        const got = preprocessFrame(frame, { format, width: fw, height: fh }, { width: ow, height: oh }, fit, PREPROCESSING, b);
        const rgb = toRgb(frame, fw, fh, format);
        const ref = referenceResizeNormalize(rgb, fw, fh, ow, oh, fit, PREPROCESSING);
        t.equal(firstDifference(got, ref), -1, `${format} ${fw}x${fh} -> ${ow}x${oh} ${fit}`);
        if (format === 'RGB24') {
          // The project's TS reference (src/image/preprocess.ts) must agree too.
          const p = preprocessRgb({ width: fw, height: fh, data: rgb }, { width: ow, height: oh }, fit);
          t.equal(firstDifference(got, p), -1, `src/image/preprocess.ts: ${fw}x${fh} -> ${ow}x${oh} ${fit}`);
        }
      }
    }
  }
});

t.test('letterbox pads with 0 (the normalised mean) and mean/std/scale come from TS', { skip }, async (t) => {
  const b = binding as NativeBinding;
  const frame = new Uint8Array(4 * 2 * 3).fill(200);
  const out = preprocessFrame(frame, { format: 'RGB24', width: 4, height: 2 }, { width: 4, height: 4 }, 'letterbox', PREPROCESSING, b);
  // content rows 1..2, padding rows 0 and 3
  t.equal(out[0], 0);
  t.equal(out[3 * 4], 0);
  t.equal(out[4], Math.fround((200 / 255 - PREPROCESSING.mean[0]) / PREPROCESSING.std[0]));
  const custom = { ...PREPROCESSING, mean: [0, 0, 0] as [number, number, number], std: [1, 2, 4] as [number, number, number], scale: 1 };
  const raw = preprocessFrame(frame, { format: 'RGB24', width: 4, height: 2 }, { width: 4, height: 2 }, 'stretch', custom, b);
  t.same([raw[0], raw[8], raw[16]], [200, 100, 50], 'per-channel std and scale are applied');
  t.throws(() => b.preprocess(frame, 4, 2, 'RGB24', 4, 2, 'stretch', [0, 0, 0], [0, 1, 1], 1), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('preprocessing converts YUV through its lookup tables exactly like the TS reference', { skip }, async (t) => {
  const b = binding as NativeBinding;
  // The YUV cube again, at identity size (every tap is one source pixel) and downscaled, as YUYV and
  // NV12 (chroma of NV12 shared by 2x2 pixels).
  const values: number[] = [];
  for (let v = 0; v < 256; v += 5) values.push(v);
  values.push(255);
  const n = values.length;
  const yuyv = new Uint8Array(n ** 3 * 4);
  let o = 0;
  for (const y of values) for (const u of values) for (const v of values) yuyv.set([y, u, 255 - y, v], (o++) * 4);
  const w = 2 * n * n;
  const nv12 = randomBytes(frameByteLength('NV12', w, 2 * n), 99);
  for (const [format, frame, fw, fh] of [['YUYV', yuyv, w, n], ['NV12', nv12, w, 2 * n]] as const) {
    for (const [ow, oh] of [[fw, fh], [256, 40]]) {
      const got = preprocessFrame(frame, { format, width: fw, height: fh }, { width: ow, height: oh }, 'stretch', PREPROCESSING, b);
      const ref = referenceResizeNormalize(toRgb(frame, fw, fh, format), fw, fh, ow, oh, 'stretch', PREPROCESSING);
      t.equal(firstDifference(got, ref), -1, `${format} ${fw}x${fh} -> ${ow}x${oh}`);
    }
  }
});
