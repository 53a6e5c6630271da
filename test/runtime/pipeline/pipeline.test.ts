import t from 'tap';

import type { LoadedModel } from '../../../src/runtime/model-loader.js';
import type { RunOutput } from '../../../src/runtime/native/binding.js';
import { nativePreprocessor, Pipeline, type InferenceSession, type Preprocessor } from '../../../src/runtime/pipeline/index.js';
import type { ResultSink, SinkItem } from '../../../src/runtime/sinks/index.js';
import { assertResultV1 } from '../../../src/runtime/sinks/index.js';
import type { DroppedFrame, Frame, FrameSource } from '../../../src/runtime/sources/types.js';
import { PREPROCESSING } from '../../../src/model/preprocessing.js';
import { native } from '../native/fixtures/native.js';

const MODEL: LoadedModel = {
  path: '/models/fake.onnx',
  sha256: 'ab'.repeat(32),
  precision: 'fp32',
  inputName: 'image',
  width: 16,
  height: 16,
  preprocessing: PREPROCESSING,
  threshold: 0.5,
  describedBy: 'manifest',
};

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `count` RGB24 32x24 frames, optionally reporting `bad` seqs as dropped instead of delivering them. */
class FakeSource implements FrameSource {
  readonly description = 'fake';
  private seq = 0;
  constructor(
    private readonly count: number,
    private readonly onDrop: (d: DroppedFrame) => void,
    private readonly bad: ReadonlySet<number> = new Set(),
    private readonly frameBytes?: (seq: number) => number,
  ) {}
  async open(): Promise<void> {}
  async next(): Promise<Frame | null> {
    for (;;) {
      const seq = this.seq++;
      if (seq >= this.count) return null;
      if (this.bad.has(seq)) {
        this.onDrop({ seq, id: `fake#${seq}`, reason: 'corrupt', detail: 'bad bytes' });
        continue;
      }
      const bytes = this.frameBytes?.(seq) ?? 32 * 24 * 3;
      return { seq, id: `fake#${seq}`, format: 'RGB24', width: 32, height: 24, data: new Uint8Array(bytes).fill(seq), captureTimeMs: now() };
    }
  }
  closed = false;
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Logits that are positive on the left half: a mask with one component of half the frame. */
function fakeSession(delayMs: number, events: string[] = [], fail?: number): InferenceSession {
  let n = 0;
  return {
    providers: { requested: [], active: ['FakeExecutionProvider'], fallbacks: [] },
    async run(input: Float32Array): Promise<RunOutput> {
      const k = n++;
      events.push(`infer-start ${k}`);
      await sleep(delayMs);
      if (k === fail) throw Object.assign(new Error('boom'), { code: 'ERR_ORT' });
      events.push(`infer-end ${k}`);
      const data = new Float32Array(16 * 16);
      for (let i = 0; i < data.length; i++) data[i] = i % 16 < 8 ? 4 : -4;
      t.equal(input.length, 3 * 16 * 16);
      return { data, dims: [1, 1, 16, 16] };
    },
  };
}

class MemorySink implements ResultSink {
  readonly description = 'memory';
  readonly items: SinkItem[] = [];
  opened = 0;
  closed = 0;
  constructor(private readonly events: string[] = []) {}
  async open(): Promise<void> {
    this.opened++;
  }
  async write(item: SinkItem): Promise<void> {
    this.events.push(`sink ${item.result.frame.seq}`);
    this.items.push(item);
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

const recordingPreprocess = (events: string[]): Preprocessor => (frame) => {
  events.push(`pre ${frame.seq}`);
  return new Float32Array(3 * 16 * 16);
};

t.test('stages overlap: N+1 is preprocessed and N-1 postprocessed while N is in inference', async (t) => {
  const events: string[] = [];
  const sink = new MemorySink(events);
  const pipeline = new Pipeline({
    createSource: (onDrop) => new FakeSource(5, onDrop),
    session: fakeSession(40, events),
    model: MODEL,
    sinks: [sink],
    mode: 'backpressure',
    preprocess: recordingPreprocess(events),
  });
  const report = await pipeline.run();
  t.equal(report.processed, 5);
  t.equal(report.drops.total, 0);
  const at = (e: string): number => events.indexOf(e);
  for (let n = 1; n < 4; n++) {
    t.ok(at(`pre ${n + 1}`) > at(`infer-start ${n}`) && at(`pre ${n + 1}`) < at(`infer-end ${n}`), `frame ${n + 1} preprocessed during inference ${n}`);
    t.ok(at(`sink ${n - 1}`) > at(`infer-start ${n}`) && at(`sink ${n - 1}`) < at(`infer-end ${n}`), `frame ${n - 1} postprocessed during inference ${n}`);
  }
  const r = sink.items[0].result;
  assertResultV1(r);
  t.equal(r.provider, 'FakeExecutionProvider');
  t.same(r.model, { sha256: MODEL.sha256, precision: 'fp32' });
  t.equal(r.coverage, 0.5);
  t.same(r.components.map((c) => c.bbox), [{ x: 0, y: 0, width: 16, height: 24 }]);
  t.same(sink.items[0].mask?.width, 32);
  t.ok(r.latencyMs.inference >= 30, `inference latency ${r.latencyMs.inference}`);
  t.ok(report.latencyMs.inference.count === 5 && report.latencyMs.total.p50 > 0);
  t.equal(sink.opened, 1);
  t.equal(sink.closed, 1);
});

t.test("'latest' mode keeps the newest frame and counts what it replaces", async (t) => {
  const sink = new MemorySink();
  const logs: string[] = [];
  const pipeline = new Pipeline({
    createSource: (onDrop) => new FakeSource(40, onDrop),
    session: fakeSession(20),
    model: MODEL,
    sinks: [sink],
    mode: 'latest',
    preprocess: recordingPreprocess([]),
    log: (l) => logs.push(l),
  });
  const report = await pipeline.run();
  t.equal(report.captured, 40);
  t.ok(report.drops.total > 20, `${report.drops.total} replaced`);
  t.equal(report.processed + report.drops.total, 40, 'every frame is either processed or counted as dropped');
  t.equal(report.drops.byStage['queue.inference'], report.drops.byReason['queue.inference:replaced']);
  t.equal(sink.items.at(-1)?.result.frame.seq, 39, 'the last frame captured is the last processed');
  t.ok(logs.length < report.drops.total, 'routine replacements are not logged one by one');
});

t.test('source drops and preprocess errors are counted and logged with their reasons', { skip: native().skip }, async (t) => {
  const logs: string[] = [];
  const sink = new MemorySink();
  const pipeline = new Pipeline({
    // Frame 2 is truncated: the native preprocessor refuses it (ERR_FRAME_SIZE).
    createSource: (onDrop) => new FakeSource(6, onDrop, new Set([4]), (seq) => (seq === 2 ? 100 : 32 * 24 * 3)),
    session: fakeSession(1),
    model: MODEL,
    sinks: [sink],
    mode: 'backpressure',
    preprocess: nativePreprocessor,
    log: (l) => logs.push(l),
  });
  const report = await pipeline.run();
  t.same(sink.items.map((i) => i.result.frame.seq), [0, 1, 3, 5]);
  t.same(report.drops, { total: 2, byStage: { source: 1, preprocess: 1 }, byReason: { 'source:corrupt': 1, 'preprocess:ERR_FRAME_SIZE': 1 } });
  t.match(logs.join('\n'), /drop fake#4 at source \(corrupt\): bad bytes/);
  t.match(logs.join('\n'), /drop fake#2 at preprocess \(ERR_FRAME_SIZE\): .*truncated/);
});

t.test('an inference failure stops the pipeline, names the frame and model, and closes everything', async (t) => {
  const sink = new MemorySink();
  let source: FakeSource | undefined;
  const pipeline = new Pipeline({
    createSource: (onDrop) => (source = new FakeSource(10, onDrop)),
    session: fakeSession(1, [], 2),
    model: MODEL,
    sinks: [sink],
    mode: 'backpressure',
    preprocess: recordingPreprocess([]),
  });
  await t.rejects(pipeline.run(), { message: /inference failed on frame fake#2 \(\/models\/fake\.onnx\): boom/, code: 'ERR_ORT' });
  t.equal(sink.closed, 1);
  t.ok(source?.closed);
  t.ok(sink.items.length <= 2);
});

t.test('maxFrames and stop() end the capture; frames in flight are finished', async (t) => {
  const sink = new MemorySink();
  const pipeline = new Pipeline({
    createSource: (onDrop) => new FakeSource(100, onDrop),
    session: fakeSession(1),
    model: MODEL,
    sinks: [sink],
    mode: 'backpressure',
    maxFrames: 7,
    preprocess: recordingPreprocess([]),
  });
  t.equal((await pipeline.run()).processed, 7);

  const sink2 = new MemorySink();
  const p2 = new Pipeline({
    createSource: (onDrop) => new FakeSource(1000, onDrop),
    session: fakeSession(5),
    model: MODEL,
    sinks: [sink2],
    mode: 'backpressure',
    preprocess: recordingPreprocess([]),
  });
  setTimeout(() => p2.stop(), 50);
  const r2 = await p2.run();
  t.ok(r2.processed > 0 && r2.processed < 1000, `${r2.processed} processed before stop`);
  t.equal(r2.processed, r2.captured, 'everything captured was finished');
});

/** A fake session for a `size`x`size` model that counts the runs in flight. */
function countingSession(size: number, delayMs: number, name: string): InferenceSession & { active: number; runs: number } {
  const s = {
    active: 0,
    runs: 0,
    providers: { requested: [], active: [name], fallbacks: [] },
    async run(input: Float32Array): Promise<RunOutput> {
      if (input.length !== 3 * size * size) throw new Error(`${name} got ${input.length} input values, expected ${3 * size * size}`);
      s.active++;
      s.runs++;
      await sleep(delayMs);
      s.active--;
      const data = new Float32Array(size * size);
      for (let i = 0; i < data.length; i++) data[i] = i % size < size / 2 ? 4 : -4;
      return { data, dims: [1, 1, size, size] };
    },
  };
  return s;
}

const sizedPreprocess: Preprocessor = (_frame, model) => new Float32Array(3 * model.width * model.height);

t.test('swapModel: same input size, takes effect between frames, nothing lost', async (t) => {
  const a = countingSession(16, 10, 'A');
  const b = countingSession(16, 10, 'B');
  const modelB: LoadedModel = { ...MODEL, path: '/models/b.onnx', sha256: 'cd'.repeat(32), precision: 'fp16' };
  const sink = new MemorySink();
  let swap: Promise<{ framesLost: number }> | undefined;
  let activeOnOldAtResolve = -1;
  const pipeline: Pipeline = new Pipeline({
    createSource: (onDrop) => new FakeSource(20, onDrop),
    session: a,
    model: MODEL,
    sinks: [sink],
    mode: 'backpressure',
    preprocess: sizedPreprocess,
    onResult: (r) => {
      if (r.frame.seq === 5) {
        swap = pipeline.swapModel(b, modelB);
        void swap.then(() => (activeOnOldAtResolve = a.active));
      }
    },
  });
  const report = await pipeline.run();
  t.same(await swap, { framesLost: 0 });
  t.equal(activeOnOldAtResolve, 0, 'no run on the old session in flight once swapModel resolved');
  t.equal(report.processed, 20);
  t.equal(report.drops.total, 0);
  const shas = sink.items.map((i) => i.result.model.sha256);
  const first = shas.indexOf(modelB.sha256);
  t.ok(first > 5 && first <= 8, `the new model serves from frame ${first} on`);
  t.ok(shas.slice(first).every((s) => s === modelB.sha256), 'every later result carries the new model');
  t.same(sink.items[first].result.model, { sha256: modelB.sha256, precision: 'fp16' });
  t.equal(sink.items[first].result.provider, 'B');
  t.equal(a.runs + b.runs, 20);
});

t.test('swapModel: another input size drops the frame preprocessed for the old model and counts it', async (t) => {
  const a = countingSession(16, 20, 'A');
  const c = countingSession(8, 5, 'C');
  const modelC: LoadedModel = { ...MODEL, path: '/models/c.onnx', sha256: 'ef'.repeat(32), width: 8, height: 8 };
  const sink = new MemorySink();
  const logs: string[] = [];
  let swap: Promise<{ framesLost: number }> | undefined;
  let activeOnOldAtResolve = -1;
  const pipeline: Pipeline = new Pipeline({
    createSource: (onDrop) => new FakeSource(12, onDrop),
    session: a,
    model: MODEL,
    sinks: [sink],
    mode: 'backpressure',
    preprocess: sizedPreprocess,
    log: (l) => logs.push(l),
    onResult: (r) => {
      if (r.frame.seq === 2) {
        swap = pipeline.swapModel(c, modelC);
        void swap.then(() => (activeOnOldAtResolve = a.active));
      }
    },
  });
  const report = await pipeline.run();
  const { framesLost } = (await swap) as { framesLost: number };
  t.equal(framesLost, 1, 'the frame waiting for inference, preprocessed at 16x16, is lost');
  t.equal(activeOnOldAtResolve, 0);
  t.same(report.drops.byStage, { swap: 1 });
  t.equal(report.drops.byReason['swap:model-changed'], 1);
  t.equal(report.processed + report.drops.total, report.captured, 'every frame has a result or a counted drop');
  t.match(logs.join('\n'), /drop fake#4 at swap \(model-changed\): preprocessed for \/models\/fake\.onnx \(16x16\), now serving \/models\/c\.onnx \(8x8\)/);
  const seqs = sink.items.map((i) => i.result.frame.seq);
  t.same(seqs, [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11]);
  const byModel = sink.items.map((i) => i.result.model.sha256);
  t.same(byModel.slice(0, 4), Array(4).fill(MODEL.sha256), 'frames in inference before the swap finish on the old model');
  t.ok(byModel.slice(4).every((s) => s === modelC.sha256), 'later frames are inferred by the new model');
  t.equal(c.runs, 7);
});

t.test('swapModel before or after a run just changes the model', async (t) => {
  const b = countingSession(16, 1, 'B');
  const sink = new MemorySink();
  const pipeline = new Pipeline({
    createSource: (onDrop) => new FakeSource(3, onDrop),
    session: countingSession(16, 1, 'A'),
    model: MODEL,
    sinks: [sink],
    mode: 'backpressure',
    preprocess: sizedPreprocess,
  });
  t.same(await pipeline.swapModel(b, { ...MODEL, sha256: '12'.repeat(32) }), { framesLost: 0 });
  await pipeline.run();
  t.same(sink.items.map((i) => i.result.provider), ['B', 'B', 'B']);
  await t.rejects(pipeline.swapModel(b, { ...MODEL, width: 0 }), RangeError);
});

t.test('onCapture sees every frame taken from the source, pixels included', async (t) => {
  const seen: number[] = [];
  const pipeline = new Pipeline({
    createSource: (onDrop) => new FakeSource(5, onDrop, new Set([1])),
    session: fakeSession(1),
    model: MODEL,
    sinks: [new MemorySink()],
    mode: 'backpressure',
    preprocess: recordingPreprocess([]),
    onCapture: (f) => seen.push(f.data[0] + f.seq * 1000),
  });
  await pipeline.run();
  t.same(seen, [0, 2002, 3003, 4004]);
});
