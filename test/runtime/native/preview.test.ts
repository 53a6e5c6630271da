// previewJpeg (native/core/preview.cc): every pixel format sampled to a smaller JPEG off the JS
// thread, checked by decoding it (jpeg-js) against the frame's known colours; refusals name the
// problem. The worker's PreviewMaker (rate, one at a time, nothing without a viewer) on a fake.
import jpeg from 'jpeg-js';
import t from 'tap';

import { drawOverlay, LAYER } from '../../../src/image/overlay.js';
import type { NativeBinding } from '../../../src/runtime/native/binding.js';
import type { PixelFormat } from '../../../src/runtime/native/pixel-formats.js';
import type { PreviewMessage } from '../../../src/supervisor/ipc.js';
import { PreviewMaker, previewSize } from '../../../src/supervisor/worker/preview.js';
import type { SnapshotSource } from '../../../src/supervisor/worker/snapshot.js';
import { native } from './fixtures/native.js';

const real = native();

/** A 64x32 frame: left half one colour, right half another, in the given format. */
function halves(format: PixelFormat): Uint8Array {
  const w = 64, h = 32;
  const left = [200, 40, 40], right = [40, 40, 200];
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rgb.set(x < w / 2 ? left : right, (y * w + x) * 3);
  const luma = (c: number[]): number => Math.round(16 + (65.481 * c[0] + 128.553 * c[1] + 24.966 * c[2]) / 255);
  const cb = (c: number[]): number => Math.round(128 + (-37.797 * c[0] - 74.203 * c[1] + 112 * c[2]) / 255);
  const cr = (c: number[]): number => Math.round(128 + (112 * c[0] - 93.786 * c[1] - 18.214 * c[2]) / 255);
  switch (format) {
    case 'RGB24':
      return rgb;
    case 'RGBA': {
      const out = new Uint8Array(w * h * 4);
      for (let i = 0; i < w * h; i++) out.set([...rgb.subarray(i * 3, i * 3 + 3), 255], i * 4);
      return out;
    }
    case 'GREY': {
      const out = new Uint8Array(w * h);
      for (let i = 0; i < w * h; i++) out[i] = rgb[i * 3];
      return out;
    }
    case 'YUYV': {
      const out = new Uint8Array(w * h * 2);
      for (let i = 0; i < w * h; i += 2) {
        const c = [...rgb.subarray(i * 3, i * 3 + 3)];
        out.set([luma(c), cb(c), luma(c), cr(c)], i * 2);
      }
      return out;
    }
    case 'NV12': {
      const out = new Uint8Array((w * h * 3) / 2);
      for (let i = 0; i < w * h; i++) out[i] = luma([...rgb.subarray(i * 3, i * 3 + 3)]);
      for (let y = 0; y < h / 2; y++) {
        for (let x = 0; x < w; x += 2) {
          const c = [...rgb.subarray((y * 2 * w + x) * 3, (y * 2 * w + x) * 3 + 3)];
          out.set([cb(c), cr(c)], w * h + y * w + x);
        }
      }
      return out;
    }
    default:
      return jpeg.encode({ width: w, height: h, data: Buffer.from(halves('RGBA')) }, 95).data;
  }
}

t.test('previewJpeg: each pixel format, shrunk, keeps its colours where they were', { skip: real.skip }, async (t) => {
  const b = real.binding as NativeBinding;
  for (const format of ['RGB24', 'RGBA', 'GREY', 'YUYV', 'NV12', 'MJPEG'] as const) {
    const bytes = await b.previewJpeg(halves(format), 64, 32, format, 32, 16, 90);
    const img = jpeg.decode(bytes, { useTArray: true });
    t.same([img.width, img.height], [32, 16], `${format}: 32x16`);
    const at = (x: number, y: number): number[] => [...img.data.subarray((y * 32 + x) * 4, (y * 32 + x) * 4 + 3)];
    const [l, r] = [at(4, 8), at(28, 8)];
    if (format === 'GREY') {
      t.ok(Math.abs(l[0] - 200) < 12 && Math.abs(r[0] - 40) < 12, `GREY: ${l} | ${r}`);
    } else {
      t.ok(l[0] > 150 && l[2] < 90 && r[2] > 150 && r[0] < 90, `${format}: left ${l} red, right ${r} blue`);
    }
  }
});

t.test('previewJpeg: refusals say what is wrong; the frame is copied, not held', { skip: real.skip }, async (t) => {
  const b = real.binding as NativeBinding;
  const frame = halves('RGB24');
  await t.rejects(b.previewJpeg(frame, 64, 32, 'RGB24', 128, 16, 80), { code: 'ERR_INVALID_ARGUMENT', message: /preview size 128x16 must be non-zero and at most the frame's 64x32/ });
  await t.rejects(b.previewJpeg(frame, 64, 32, 'RGB24', 32, 16, 0), { message: /quality must be 1\.\.100/ });
  await t.rejects(b.previewJpeg(frame.subarray(0, 100), 64, 32, 'RGB24', 32, 16, 80), { code: 'ERR_FRAME_SIZE' });
  await t.rejects(b.previewJpeg(new Uint8Array([0xff, 0xd8, 1, 2]), 64, 32, 'MJPEG', 32, 16, 80), { code: /ERR_JPEG_/ });
  t.throws(() => void b.previewJpeg(frame, 64, 32, 'BGR' as PixelFormat, 32, 16, 80), /unknown pixel format 'BGR'/);
  const pending = b.previewJpeg(frame, 64, 32, 'RGB24', 32, 16, 80);
  frame.fill(0); // the caller's buffer is free as soon as the call returns
  const img = jpeg.decode(await pending, { useTArray: true });
  t.ok(img.data[(8 * 32 + 4) * 4] > 150, 'encoded from the bytes as they were at the call');
});

t.test('previewSize: at most maxWidth, aspect kept, even sides', async (t) => {
  t.same(previewSize({ width: 1920, height: 1080 }, 640), { width: 640, height: 360 });
  t.same(previewSize({ width: 622, height: 529 }, 640), { width: 622, height: 528 });
  t.same(previewSize({ width: 1279, height: 1017 }, 480), { width: 480, height: 382 });
});

t.test('PreviewMaker: nothing unless asked, one at a time, at most fps a second', async (t) => {
  let now = 0;
  const sent: PreviewMessage[] = [];
  const calls: ((b: Uint8Array) => void)[] = [];
  const fake = { previewJpeg: () => new Promise<Uint8Array>((resolve) => calls.push(resolve)) } as unknown as NativeBinding;
  const logs: string[] = [];
  const maker = new PreviewMaker(async (m) => void sent.push(m), (l) => logs.push(l), () => fake, () => now);
  const last = (id: string): SnapshotSource => ({
    result: { frame: { id }, components: [{ bbox: { x: 0, y: 0, width: 2, height: 2 } }] } as unknown as SnapshotSource['result'],
    maskModel: { width: 4, height: 4, data: new Uint8Array(16).fill(1) },
    letterbox: undefined,
    frame: { id, seq: 0, format: 'RGB24', width: 8, height: 8, data: new Uint8Array(192), captureTimeMs: 0 },
  });
  maker.offer(last('a'));
  t.equal(calls.length, 0, 'no viewer: no picture');
  maker.set({ fps: 2, maxWidth: 640 });
  t.ok(maker.active);
  maker.offer(last('b'));
  maker.offer(last('c'));
  t.equal(calls.length, 1, 'one in the making: the next result is not previewed');
  calls[0](new Uint8Array([1, 2, 3]));
  await new Promise((r) => setTimeout(r, 20));
  t.equal(sent.length, 1);
  t.match(sent[0], { type: 'preview', frame: 'b', width: 8, height: 8, jpeg: Buffer.from([1, 2, 3]).toString('base64') });
  now += 100;
  maker.offer(last('d'));
  t.equal(calls.length, 1, 'too soon at 2 fps');
  now += 500;
  maker.offer(last('e'));
  t.equal(calls.length, 2);
  calls[1](new Uint8Array([9]));
  await new Promise((r) => setTimeout(r, 20));
  t.equal(maker.sent, 2);
  const failing = new PreviewMaker(async () => {}, (l) => logs.push(l), () => ({ previewJpeg: () => Promise.reject(new Error('boom')) }) as unknown as NativeBinding, () => now);
  failing.set({ fps: 30, maxWidth: 64 });
  failing.offer(last('f'));
  await new Promise((r) => setTimeout(r, 20));
  t.match(logs, [/preview of frame f failed: boom/]);
});

t.test('drawOverlay: fill, outline, boxes scaled to the layer, truth outlined', async (t) => {
  const mask = { width: 6, height: 6, data: new Uint8Array(36) };
  for (let y = 1; y <= 4; y++) for (let x = 1; x <= 4; x++) mask.data[y * 6 + x] = 1;
  const truth = { width: 6, height: 6, data: new Uint8Array(36) };
  truth.data[0] = 1;
  const layer = drawOverlay({ mask, truth, boxes: [{ x: 8, y: 0, width: 4, height: 2 }], frame: { width: 12, height: 12 } });
  t.equal(layer.data[2 * 6 + 2], LAYER.fill, 'inside');
  t.equal(layer.data[1 * 6 + 2], LAYER.outline, 'edge');
  t.equal(layer.data[0], LAYER.truth);
  t.equal(layer.data[0 * 6 + 4], LAYER.box, 'box x 8..11 of 12 -> 4..5 of 6');
  t.equal(layer.data[5 * 6 + 0], LAYER.none);
  t.throws(() => drawOverlay({ mask, truth: { width: 2, height: 2, data: new Uint8Array(4) } }), /truth is 2x2, the mask 6x6/);
});
