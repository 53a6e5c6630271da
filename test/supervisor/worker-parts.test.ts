// The worker's parts that need no model or camera: snapshots, frames held for them, the fps
// window (injected clock), and the Worker's answers before it has started (fake process).
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';
import pngjs from 'pngjs';

import type { WorkerMessage } from '../../src/supervisor/ipc.js';
import { FpsWindow, InFlightFrames } from '../../src/supervisor/worker/frames.js';
import { OverlayFiles } from '../../src/supervisor/worker/overlay-files.js';
import { frameToRgb, renderSnapshot, shrink, type SnapshotSource } from '../../src/supervisor/worker/snapshot.js';
import { Worker } from '../../src/supervisor/worker/worker.js';
import type { Frame } from '../../src/runtime/sources/types.js';
import { same } from '../helpers/same.js';

function frame(id: string, width = 4, height = 2, format: Frame['format'] = 'RGB24', fill = 100): Frame {
  const bpp = format === 'RGBA' ? 4 : format === 'GREY' ? 1 : format === 'YUYV' ? 2 : 3;
  return { seq: 0, id, format, width, height, data: new Uint8Array(width * height * bpp).fill(fill), captureTimeMs: 0 };
}

/** Width, height and RGB pixels of a PNG (decoded by pngjs, which returns RGBA). */
function readPng(b64: string): { width: number; height: number; rgb: Uint8Array } {
  const png = pngjs.PNG.sync.read(Buffer.from(b64, 'base64'));
  const rgb = new Uint8Array(png.width * png.height * 3);
  for (let i = 0; i < png.width * png.height; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = png.data[i * 4 + c];
  return { width: png.width, height: png.height, rgb };
}

function source(f: Frame | undefined, maskBits: number[]): SnapshotSource {
  const result = { frame: { id: f?.id ?? 'gone#1' }, coverage: 0.25, components: [] } as unknown as SnapshotSource['result'];
  // A model-size mask of the frame's own size: drawn onto the frame one to one.
  return { result, maskModel: { width: 4, height: 2, data: Uint8Array.from(maskBits) }, letterbox: undefined, frame: f };
}

t.test('snapshot: the frame with the overlay drawn over it (here every mask pixel is on its outline), as a PNG', async (t) => {
  const s = renderSnapshot(source(frame('cam#3'), [1, 0, 0, 0, 0, 0, 0, 1]), {});
  t.match(s, { frame: 'cam#3', coverage: 0.25, mimeType: 'image/png', width: 4, height: 2 });
  t.notOk('scale' in s);
  const png = readPng(s.png as string);
  same(t, [...png.rgb.subarray(0, 6)], [255, 40, 40, 100, 100, 100], 'masked pixel outlined, unmasked one as captured');
  same(t, [...png.rgb.subarray(21, 24)], [255, 40, 40]);
});

t.test('snapshot: scaled down by the smallest factor that fits, and says so', async (t) => {
  const big = frame('cam#4', 64, 64);
  for (let i = 0; i < big.data.length; i++) big.data[i] = (i * 2654435761) >>> 24; // noise: PNG cannot shrink it much
  const last = { ...source(big, []), maskModel: { width: 64, height: 64, data: new Uint8Array(64 * 64) } };
  const full = renderSnapshot(last, {});
  const limit = Math.floor((full.png as string).length / 3);
  const s = renderSnapshot(last, { maxBytes: limit });
  t.ok((s.png as string).length <= limit);
  t.match(s, { sourceWidth: 64, sourceHeight: 64 });
  const k = 1 / (s.scale as number);
  t.ok(Number.isInteger(k) && k >= 2, `scale 1/${k}`);
  t.equal(s.width, Math.floor(64 / k));
  if (k > 2) t.ok((renderSnapshot(last, { maxBytes: limit }).png as string).length <= limit);
});

t.test('snapshot: refusals say why', async (t) => {
  t.throws(() => renderSnapshot(undefined, {}), /no frame processed yet/);
  t.throws(() => renderSnapshot(source(undefined, []), {}), /frame gone#1 is no longer held/);
  t.throws(() => renderSnapshot(source(frame('a'), []), { maxBytes: 0 }), /maxBytes must be a positive number/);
  t.throws(() => renderSnapshot(source(frame('a'), []), { maxBytes: 'x' }), /maxBytes must be a positive number/);
});

t.test('frameToRgb: RGBA drops alpha, GREY is copied to three channels; shrink averages blocks', async (t) => {
  same(t, [...frameToRgb(frame('a', 2, 1, 'RGBA', 9)).data], [9, 9, 9, 9, 9, 9]);
  same(t, [...frameToRgb(frame('g', 2, 1, 'GREY', 7)).data], [7, 7, 7, 7, 7, 7]);
  const s = shrink(Uint8Array.from([0, 0, 0, 10, 20, 30, 20, 40, 60, 30, 60, 90]), 2, 2, 2);
  same(t, s, { rgb: Uint8Array.from([15, 30, 45]), width: 1, height: 1 });
});

t.test('InFlightFrames: a result takes its frame and lets go of older ones; the limit keeps the oldest', async (t) => {
  const frames = new InFlightFrames(4);
  for (let i = 0; i < 6; i++) frames.keep(frame(`f${i}`));
  t.equal(frames.size, 4);
  // f2 and f3 were let go of (replaced in a 'latest' queue); f0, f1 are in inference.
  t.equal(frames.take('f2'), undefined);
  t.equal(frames.take('f1')?.id, 'f1');
  t.equal(frames.size, 2, 'f0 went with it');
  t.equal(frames.take('f5')?.id, 'f5');
  t.equal(frames.size, 0);
});

t.test('FpsWindow: results per second over the last 5 s of an injected clock', async (t) => {
  let now = 0;
  const fps = new FpsWindow(() => now);
  t.equal(fps.current(), 0);
  for (let i = 0; i < 11; i++) {
    now = i * 100;
    fps.record();
  }
  t.equal(fps.current(), 10);
  now = 6_000;
  t.equal(fps.current(), 0, 'results older than 5 s no longer count');
});

function fakeProcess(): { sent: WorkerMessage[]; exits: number[]; worker: Worker } {
  const sent: WorkerMessage[] = [];
  const exits: number[] = [];
  const worker = new Worker({ send: async (m) => void sent.push(m), exit: (c) => void exits.push(c), log: () => undefined, pid: 4242 });
  return { sent, exits, worker };
}

t.test('Worker before start: status, refusals and replies by id', async (t) => {
  const { sent, worker } = fakeProcess();
  await worker.handle({ type: 'command', id: 'c0', name: 'status', args: {} });
  await worker.handle({ type: 'command', id: 'c1', name: 'set-threshold', args: { value: 0.3 } });
  await worker.handle({ type: 'command', id: 'c2', name: 'set-threshold', args: { value: 'high' } });
  await worker.handle({ type: 'command', id: 'c3', name: 'dance', args: {} });
  await worker.handle({ type: 'command', id: 'c4', name: 'prepare-model', args: { token: 'm0', path: '/m.onnx' } });
  await worker.handle({ type: 'command', id: 'c5', name: 'abort-model', args: { token: 'm0' } });
  await worker.handle({ type: 'command', id: 'c6', name: 'snapshot', args: {} });
  t.same(sent, [
    { type: 'reply', id: 'c0', ok: true, result: { pid: 4242, model: null, provider: null, providers: null, plan: [], fps: 0, frames: 0, settings: null } },
    { type: 'reply', id: 'c1', ok: false, error: 'the pipeline is not running yet' },
    { type: 'reply', id: 'c2', ok: false, error: 'set-threshold needs a numeric value' },
    { type: 'reply', id: 'c3', ok: false, error: 'command dance is not handled by the worker' },
    { type: 'reply', id: 'c4', ok: false, error: 'the pipeline is not running yet: try again once the worker is ready' },
    { type: 'reply', id: 'c5', ok: true, result: { released: false } },
    { type: 'reply', id: 'c6', ok: false, error: 'no frame processed yet' },
  ]);
});

t.test('Worker: a malformed message is a fault; stop before start exits 0', async (t) => {
  const { sent, exits, worker } = fakeProcess();
  await worker.handle({ kind: 'start' });
  t.same(sent, [{ type: 'event', event: { type: 'fault', severity: 'warning', message: 'worker got a malformed IPC message' } }]);
  await worker.handle({ type: 'stop' });
  t.same(exits, [0]);
});

t.test('Worker: a model that cannot load is a start-up fault with exit code 2', async (t) => {
  const { sent, exits, worker } = fakeProcess();
  await worker.handle({ type: 'start', config: { attempt: 0, model: '/nonexistent/model.onnx', settings: { minArea: 0, rle: false, contours: false }, session: {}, source: 'synthetic' } });
  t.equal(exits[0], 2);
  t.match(sent[0], { type: 'event', event: { type: 'fault', severity: 'error', message: /nonexistent/, details: { stage: 'start' } } });
  same(t, sent[1], { type: 'stats', stats: { frames: 0 } });
});

t.test('OverlayFiles: one PNG per result in order; a failed write is reported once and ends the writing', async (t) => {
  const dir = t.testdir({});
  const errors: string[] = [];
  const files = new OverlayFiles(join(dir, 'out'), (m) => errors.push(m));
  const last = (id: string): SnapshotSource => ({ ...source(frame(id), [1, 0, 0, 0, 0, 0, 0, 1]), result: { frame: { id }, coverage: 0.25, components: [] } as unknown as SnapshotSource['result'] });
  files.write(last('cam#1'));
  files.write(last('cam#2'));
  files.write({ ...last('gone'), frame: undefined });
  await files.settled();
  t.same(readdirSync(join(dir, 'out')).sort(), ['cam_1.png', 'cam_2.png']);
  t.equal(files.written, 2);
  const png = pngjs.PNG.sync.read(readFileSync(join(dir, 'out', 'cam_1.png')));
  same(t, [png.width, png.height, png.data[0], png.data[1], png.data[2]], [4, 2, 255, 40, 40], 'the overlay drawn over the frame');
  rmSync(join(dir, 'out'), { recursive: true });
  writeFileSync(join(dir, 'out'), 'a file where the folder was');
  files.write(last('cam#3'));
  files.write(last('cam#4'));
  await files.settled();
  t.equal(errors.length, 1, 'reported once');
  t.match(errors[0], /--save-overlays: writing .*cam_3\.png failed, no more overlays are written/);
  t.throws(() => new OverlayFiles(join(dir, 'out', 'sub'), () => {}), /--save-overlays .*out\/sub: cannot create folder/);
});
