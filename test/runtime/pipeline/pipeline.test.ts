/**
 * The pipeline on its one path, the fused native call, run on the fake binding
 * (test/runtime/native/fixtures/fake-binding.ts: TS preprocessing, onnxruntime-node, TS
 * postprocessing behind the NativeBinding interface) through an injected session: no addon needed.
 * A gate in front of the fake's processor holds results back where a test needs frames in flight
 * (queue modes, stop) without any timer. fused.test.ts and mjpeg.test.ts run the real addon.
 */
import t from 'tap';
import { setImmediate as turn } from 'node:timers/promises';
import { join } from 'node:path';
import jpeg from 'jpeg-js';

import { loadModel, type LoadedModel } from '../../../src/runtime/model-loader.js';
import type { NativeFrameProcessor, NativeSession } from '../../../src/runtime/native/binding.js';
import { normalizeSessionOptions, OrtSession } from '../../../src/runtime/native/runtime.js';
import { FUSED_DEPTH, Pipeline } from '../../../src/runtime/pipeline/index.js';
import { assertResultV1, type ResultSink, type SinkItem } from '../../../src/runtime/sinks/index.js';
import type { DroppedFrame, Frame, FrameSource } from '../../../src/runtime/sources/types.js';
import { fakeBinding } from '../native/fixtures/fake-binding.js';
import { buildTestModel, tempDir } from './fixtures/model.js';
import { same } from '../../helpers/same.js';

const tmp = tempDir('pipeline');
t.teardown(tmp.remove);
const MODEL_A = loadModel(buildTestModel(join(tmp.dir, 'a'), 1, 256));
const MODEL_B = loadModel(buildTestModel(join(tmp.dir, 'b'), 2, 128));

const W = 32;
const H = 24;
const now = (): number => performance.timeOrigin + performance.now();

/** Holds every process() result until opened; counts what was submitted. */
class Gate {
  readonly submitted: string[] = [];
  private readonly held: (() => void)[] = [];
  private opened = false;
  constructor(opened = false) {
    this.opened = opened;
  }
  wait(id: string): Promise<void> {
    this.submitted.push(id);
    if (this.opened) return Promise.resolve();
    return new Promise((resolve) => this.held.push(resolve));
  }
  open(): void {
    this.opened = true;
    for (const release of this.held.splice(0)) release();
  }
}

/** A fake-binding session behind `gate`; `failOn`: the frame whose inference fails, as the addon reports it. */
async function fakeSession(model: LoadedModel, gate = new Gate(true), failOn?: string): Promise<OrtSession & { released: () => number }> {
  const inner = await fakeBinding().loadRuntime('fake-ort').createSession(model.path, normalizeSessionOptions({ intraOpThreads: 1, interOpThreads: 1 }));
  let released = 0;
  const native: NativeSession = {
    describe: () => inner.describe(),
    run: (input, dims) => inner.run(input, dims),
    release: () => inner.release(),
    createFrameProcessor: (...args) => {
      const p = inner.createFrameProcessor(...args);
      const gated: NativeFrameProcessor = {
        process: (frame, w, h, format, threshold, id, rle, mask) => {
          // Synchronous checks throw here, as the addon's do.
          const result = p.process(frame, w, h, format, threshold, id, rle, mask);
          result.catch(() => {});
          return gate.wait(id).then(() => {
            if (id === failOn) throw Object.assign(new Error(`ONNX Runtime failed on ${id}`), { code: 'ERR_ORT', frameId: id, stage: 'inference', modelPath: model.path });
            return result;
          });
        },
        release: () => {
          released++;
          p.release();
        },
      };
      return gated;
    },
  };
  return Object.assign(new OrtSession(native), { released: () => released });
}

/** `count` RGB24 frames; `bad` seqs are reported as dropped, `short` seqs come with too few bytes. Pools like a real source. */
class MemorySource implements FrameSource {
  readonly description = 'mem';
  reads = 0;
  closed = false;
  readonly recycled: Uint8Array[] = [];
  private seq = 0;
  private finished?: () => void;
  readonly exhausted = new Promise<void>((resolve) => (this.finished = resolve));
  constructor(
    private readonly count: number,
    private readonly onDrop: (d: DroppedFrame) => void,
    private readonly options: { bad?: ReadonlySet<number>; short?: ReadonlySet<number>; jpeg?: ReadonlyMap<number, Uint8Array> } = {},
  ) {}
  async open(): Promise<void> {}
  async next(): Promise<Frame | null> {
    for (;;) {
      const seq = this.seq++;
      if (seq >= this.count) {
        this.finished?.();
        return null;
      }
      this.reads++;
      if (this.options.bad?.has(seq)) {
        this.onDrop({ seq, id: `mem#${seq}`, reason: 'corrupt', detail: 'bad bytes' });
        continue;
      }
      const j = this.options.jpeg?.get(seq);
      if (j) return { seq, id: `mem#${seq}`, format: 'MJPEG', width: W, height: H, data: j, captureTimeMs: now() };
      const data = new Uint8Array(this.options.short?.has(seq) ? 10 : W * H * 3);
      // Left half bright, right half dark, brightness rising with seq: frames differ.
      for (let i = 0; i < W * H; i++) data.fill(i % W < W / 2 ? 200 - seq : 20 + seq, i * 3, i * 3 + 3);
      return { seq, id: `mem#${seq}`, format: 'RGB24', width: W, height: H, data, captureTimeMs: now() };
    }
  }
  recycle(data: Uint8Array): void {
    this.recycled.push(data);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

class MemorySink implements ResultSink {
  readonly description = 'memory';
  readonly items: SinkItem[] = [];
  opened = 0;
  closed = 0;
  constructor(readonly needsMask = false) {}
  async open(): Promise<void> {
    this.opened++;
  }
  async write(item: SinkItem): Promise<void> {
    this.items.push(item);
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

const seqs = (sink: MemorySink): number[] => sink.items.map((i) => i.result.frame.seq);

/** Lets the pipeline run until it waits on something the test holds (no timers). */
async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await turn();
}

t.test('results leave in capture order, valid, timed, with the frame mask only when a sink needs it', async (t) => {
  const session = await fakeSession(MODEL_A);
  const plain = new MemorySink();
  const report = await new Pipeline({ createSource: (d) => new MemorySource(5, d), session, model: MODEL_A, sinks: [plain], mode: 'backpressure' }).run();
  t.equal(report.processed, 5);
  t.same(seqs(plain), [0, 1, 2, 3, 4]);
  for (const { result, mask } of plain.items) {
    assertResultV1(result);
    t.equal(mask, undefined, 'the frame mask stayed native');
    t.equal(result.provider, 'CPUExecutionProvider');
    t.same(result.model, { sha256: MODEL_A.sha256, precision: MODEL_A.precision });
    t.ok(result.latencyMs.inference >= 0 && result.latencyMs.total >= result.latencyMs.inference);
  }
  t.equal(report.latencyMs.total.count, 5);
  t.equal(report.decodeMs.count, 5, 'decode time sampled for every frame (0 for pixels)');
  t.equal(report.decodeMs.max, 0);
  t.equal(plain.opened, 1);
  t.equal(plain.closed, 1);

  const masks = new MemorySink(true);
  await new Pipeline({ createSource: (d) => new MemorySource(3, d), session, model: MODEL_A, sinks: [masks], mode: 'backpressure', postprocess: { rle: true } }).run();
  for (const [k, { result, mask }] of masks.items.entries()) {
    if (!mask) throw new Error('a sink that needsMask got no mask');
    same(t, [mask.width, mask.height], [W, H]);
    const fg = mask.data.reduce((a, v) => a + v, 0);
    t.equal(result.coverage, Math.round((fg / (W * H)) * 1e6) / 1e6, `frame ${k}: coverage is that of the mask handed over`);
    const area = result.components.reduce((a, c) => a + c.area, 0);
    t.ok(area <= fg && (fg === 0) === (area === 0), `frame ${k}: components (${area} px) lie in the mask (${fg} px)`);
    t.equal((result.rle as { counts: number[] }).counts.reduce((a, v) => a + v, 0), W * H, 'RLE covers the frame');
  }
  session.release();
});

t.test('bad frames are dropped with their reasons and named; the rest go on in order', async (t) => {
  const j = new Uint8Array(jpeg.encode({ width: W, height: H, data: new Uint8Array(W * H * 4).fill(128) }, 90).data);
  const jpegs = new Map([
    [4, j],
    [5, j.subarray(0, 40)], // cut inside the header: corrupt
    [6, j.subarray(0, j.length - 30)], // no end marker: truncated
  ]);
  const logs: string[] = [];
  const sink = new MemorySink();
  const session = await fakeSession(MODEL_A);
  const report = await new Pipeline({
    createSource: (d) => new MemorySource(8, d, { bad: new Set([1]), short: new Set([2]), jpeg: jpegs }),
    session,
    model: MODEL_A,
    sinks: [sink],
    mode: 'backpressure',
    log: (l) => logs.push(l),
  }).run();
  session.release();
  t.same(seqs(sink), [0, 3, 4, 7]);
  t.same(report.drops, {
    total: 4,
    byStage: { source: 1, preprocess: 3 },
    byReason: { 'source:corrupt': 1, 'preprocess:ERR_FRAME_SIZE': 1, 'preprocess:ERR_JPEG_CORRUPT': 1, 'preprocess:ERR_JPEG_TRUNCATED': 1 },
  });
  const log = logs.join('\n');
  for (const [id, why] of [['mem#1', 'source'], ['mem#2', 'preprocess \\(ERR_FRAME_SIZE\\)'], ['mem#5', 'preprocess \\(ERR_JPEG_CORRUPT\\)'], ['mem#6', 'preprocess \\(ERR_JPEG_TRUNCATED\\)']]) {
    t.match(log, new RegExp(`drop ${id} at ${why}`));
  }
  t.equal(sink.items[2].result.frame.format, 'MJPEG', 'a good JPEG frame goes through');
});

t.test("'backpressure' holds the source back while inference is busy; nothing is dropped", async (t) => {
  const gate = new Gate();
  const session = await fakeSession(MODEL_A, gate);
  const sink = new MemorySink();
  let source: MemorySource | undefined;
  const run = new Pipeline({
    createSource: (d) => (source = new MemorySource(8, d)),
    session,
    model: MODEL_A,
    sinks: [sink],
    mode: 'backpressure',
  }).run();
  await settle();
  t.equal(gate.submitted.length, 2, 'two frames in flight (FUSED_DEPTH)');
  t.equal(source?.reads, 4, 'then one waiting for a slot and one in the queue: the source is read no further');
  gate.open();
  const report = await run;
  session.release();
  t.same(seqs(sink), [0, 1, 2, 3, 4, 5, 6, 7]);
  t.equal(report.drops.total, 0);
});

t.test("'latest' keeps reading, replaces the queued frame with the newest and counts each replacement", async (t) => {
  const gate = new Gate();
  const session = await fakeSession(MODEL_A, gate);
  const sink = new MemorySink();
  const logs: string[] = [];
  let source: MemorySource | undefined;
  const run = new Pipeline({
    createSource: (d) => (source = new MemorySource(8, d)),
    session,
    model: MODEL_A,
    sinks: [sink],
    mode: 'latest',
    log: (l) => logs.push(l),
  }).run();
  await (source as MemorySource | undefined)?.exhausted;
  await settle();
  t.equal(gate.submitted.length, 2);
  gate.open();
  const report = await run;
  session.release();
  t.same(seqs(sink), [0, 1, 2, 7], 'the two in flight, the one waiting for a slot, then the newest');
  t.same(report.drops, { total: 4, byStage: { 'queue.inference': 4 }, byReason: { 'queue.inference:replaced': 4 } });
  t.match(logs.join('\n'), /drop mem#3 at queue\.inference \(replaced, 1 so far\)/, 'the first replacement is logged');
  const replaced = source?.recycled.length ?? 0;
  t.equal(replaced, 8, 'every frame buffer, replaced or processed, goes back to the source once');
});

t.test('buffers go back to the source after the native job; not when an onCapture hook saw them', async (t) => {
  const session = await fakeSession(MODEL_A);
  let source: MemorySource | undefined;
  const delivered: Uint8Array[] = [];
  await new Pipeline({
    createSource: (d) => (source = new MemorySource(6, d, { short: new Set([3]) })),
    session,
    model: MODEL_A,
    sinks: [new MemorySink()],
    mode: 'backpressure',
    onResult: () => {},
  }).run();
  t.equal(source?.recycled.length, 6, 'each frame once, the refused one included');
  t.equal(new Set(source?.recycled).size, 6);

  const seen: number[] = [];
  await new Pipeline({
    createSource: (d) => (source = new MemorySource(4, d, { bad: new Set([1]) })),
    session,
    model: MODEL_A,
    sinks: [new MemorySink()],
    mode: 'backpressure',
    onCapture: (f) => {
      delivered.push(f.data);
      seen.push(f.seq);
    },
  }).run();
  session.release();
  same(t, seen, [0, 2, 3], 'onCapture sees every frame taken from the source');
  t.equal(source?.recycled.length, 0, 'frames a hook may hold are left to the GC');
});

t.test('an inference failure stops the pipeline, names the frame and model, and closes everything', async (t) => {
  const session = await fakeSession(MODEL_A, new Gate(true), 'mem#2');
  const sink = new MemorySink();
  let source: MemorySource | undefined;
  const pipeline = new Pipeline({ createSource: (d) => (source = new MemorySource(10, d)), session, model: MODEL_A, sinks: [sink], mode: 'backpressure' });
  await t.rejects(pipeline.run(), { message: new RegExp(`inference failed on frame mem#2 \\(${MODEL_A.path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\): ONNX Runtime failed`), code: 'ERR_ORT' });
  session.release();
  // Frame 1's result may still be in the postprocess queue when frame 2 fails: a fatal error stops
  // everything at once. Nothing from the failed frame on is written, and nothing out of order.
  const written = seqs(sink);
  t.ok(written.length >= 1 && written.every((s, i) => s === i && s < 2), `written: ${written.join(', ')}`);
  t.equal(sink.closed, 1);
  t.equal(source?.closed, true);
  await t.rejects(pipeline.run(), /already called/);
});

t.test('maxFrames ends the capture; stop() finishes the frames in flight', async (t) => {
  const session = await fakeSession(MODEL_A);
  const sink = new MemorySink();
  const report = await new Pipeline({ createSource: (d) => new MemorySource(100, d), session, model: MODEL_A, sinks: [sink], mode: 'backpressure', maxFrames: 3 }).run();
  t.equal(report.captured, 3);
  t.same(seqs(sink), [0, 1, 2]);
  t.throws(() => new Pipeline({ createSource: (d) => new MemorySource(1, d), session, model: MODEL_A, sinks: [], mode: 'latest', maxFrames: -1 }), RangeError);

  const gate = new Gate();
  const held = await fakeSession(MODEL_A, gate);
  const sink2 = new MemorySink();
  const pipeline = new Pipeline({ createSource: (d) => new MemorySource(1000, d), session: held, model: MODEL_A, sinks: [sink2], mode: 'backpressure' });
  const run = pipeline.run();
  await settle();
  pipeline.stop();
  gate.open();
  const r2 = await run;
  t.equal(r2.processed, r2.captured, `all ${r2.captured} frames captured before stop() were finished`);
  t.ok(r2.captured >= 2 && r2.captured <= 4, `capture stopped at once (${r2.captured} captured)`);
  session.release();
  held.release();
});

t.test('update() applies from the next frame submitted; bad values change nothing', async (t) => {
  const session = await fakeSession(MODEL_A);
  const sink = new MemorySink();
  const pipeline: Pipeline = new Pipeline({
    createSource: (d) => new MemorySource(8, d),
    session,
    model: MODEL_A,
    sinks: [sink],
    mode: 'backpressure',
    // threshold 1: no pixel is foreground (probability > 1), so coverage tells which frames saw it.
    onResult: (r) => {
      if (r.frame.seq === 1) pipeline.update({ threshold: 1, minArea: 2 });
    },
  });
  t.throws(() => pipeline.update({ threshold: 2, minArea: 5 }), RangeError);
  t.throws(() => pipeline.update({ minArea: 1.5 }), RangeError);
  t.same(pipeline.settings(), { threshold: MODEL_A.threshold, minArea: 0, rle: false, contours: false }, 'a refused patch applies no part of itself');
  await pipeline.run();
  session.release();
  const coverage = sink.items.map((i) => i.result.coverage);
  t.equal(coverage[7], 0, 'frames submitted after the update use the new threshold');
  t.ok(coverage.slice(0, 2).every((c) => c > 0), `frames before it kept the old one (${coverage.join(', ')})`);
  t.same(pipeline.settings(), { threshold: 1, minArea: 2, rle: false, contours: false });

  const contours = new MemorySink();
  const p2 = new Pipeline({ createSource: (d) => new MemorySource(2, d), session: await fakeSession(MODEL_A), model: MODEL_A, sinks: [contours], mode: 'backpressure' });
  p2.update({ threshold: 0, contours: true });
  await p2.run();
  same(t, contours.items[0].result.contours?.length, 1, 'contours switched on: traced on the frame mask fetched for them');
});

t.test('swapModel between frames: the new model (another input size) serves from the next frame; nothing lost', async (t) => {
  const a = await fakeSession(MODEL_A);
  const b = await fakeSession(MODEL_B);
  const sink = new MemorySink();
  let swap: Promise<{ framesLost: number }> | undefined;
  const pipeline: Pipeline = new Pipeline({
    createSource: (d) => new MemorySource(10, d),
    session: a,
    model: MODEL_A,
    sinks: [sink],
    mode: 'backpressure',
    onResult: (r) => {
      if (r.frame.seq === 3) swap = pipeline.swapModel(b, MODEL_B);
    },
  });
  const report = await pipeline.run();
  same(t, await swap, { framesLost: 0 });
  t.equal(a.released(), 1, "the old model's processor was released once idle");
  t.equal(report.processed, 10);
  t.equal(report.drops.total, 0);
  const shas = sink.items.map((i) => i.result.model.sha256);
  const first = shas.indexOf(MODEL_B.sha256);
  // Already submitted when result 3 comes out: one result in the postprocess slot and FUSED_DEPTH
  // frames in flight; the next frame taken goes to the new model.
  t.ok(first > 3 && first <= 3 + 1 + FUSED_DEPTH + 1, `the new model serves from frame ${first} on`);
  t.ok(shas.slice(0, first).every((s) => s === MODEL_A.sha256) && shas.slice(first).every((s) => s === MODEL_B.sha256));
  await t.rejects(pipeline.swapModel(b, { ...MODEL_B, width: 0 }), RangeError);
  same(t, await pipeline.swapModel(b, MODEL_B), { framesLost: 0 }, 'the same model again changes nothing');
  a.release();
  b.release();
});
