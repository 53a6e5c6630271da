/**
 * The native fused path (preprocess + ONNX Runtime + postprocess in one call off the JS thread)
 * against the plain reference path: onnxruntime-node's JS API on the TS preprocessing, summarised by
 * the TS postprocessing. Camera-like YUYV frames made from Kvasir-SEG images.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';

import { resizeRgbBilinear } from '../../../src/cli/frames-command.js';
import { decodeImage } from '../../../src/image/decode.js';
import { letterboxGeometry, preprocessRgb } from '../../../src/image/preprocess.js';
import type { Fit } from '../../../src/runtime/native/binding.js';
import { toRgb } from '../../../src/runtime/native/pixel-formats.js';
import { OrtSession } from '../../../src/runtime/native/runtime.js';
import { loadModel, type LoadedModel } from '../../../src/runtime/model-loader.js';
import { openSession, Pipeline } from '../../../src/runtime/pipeline/index.js';
import { summarize, summaryJson, type ReferenceSummary, type Summary } from '../../../src/runtime/postprocess/index.js';
import type { ResultSink, SinkItem } from '../../../src/runtime/sinks/index.js';
import type { Frame, FrameSource } from '../../../src/runtime/sources/types.js';
import { native } from '../native/fixtures/native.js';
import { buildTestModel, copyKvasirImages, tempDir } from './fixtures/model.js';
import { requireShared } from '../../helpers/shared-data.js';
import { KVASIR } from '../../helpers/paths.js';
import { same } from '../../helpers/same.js';
import { FUSED_DEPTH } from '../../../src/runtime/pipeline/pipeline.js';

requireShared(KVASIR);

const { skip } = native();
const tmp = tempDir('fused');
t.teardown(tmp.remove);

const W = 320;
const H = 240;

/** BT.601 limited-range RGB -> YUYV (any reasonable conversion will do: these are just inputs). */
function rgbToYuyv(rgb: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 2);
  const y = (i: number): number => Math.round(16 + 0.257 * rgb[i] + 0.504 * rgb[i + 1] + 0.098 * rgb[i + 2]);
  for (let p = 0; p < w * h; p += 2) {
    const a = p * 3, b = a + 3;
    const r = (rgb[a] + rgb[b]) / 2, g = (rgb[a + 1] + rgb[b + 1]) / 2, bl = (rgb[a + 2] + rgb[b + 2]) / 2;
    out[p * 2] = y(a);
    out[p * 2 + 1] = Math.round(128 - 0.148 * r - 0.291 * g + 0.439 * bl);
    out[p * 2 + 2] = y(b);
    out[p * 2 + 3] = Math.round(128 + 0.439 * r - 0.368 * g - 0.071 * bl);
  }
  return out;
}

const images = join(tmp.dir, 'images');
const frames: Uint8Array[] = skip
  ? []
  : copyKvasirImages(images, 4).map((name) => {
      const img = resizeRgbBilinear(decodeImage(readFileSync(join(images, name)), name), W, H);
      return rgbToYuyv(img.data, W, H);
    });

const now = (): number => performance.timeOrigin + performance.now();

/** The recorded frames in order; `bad` seqs get a truncated buffer (the preprocessor must refuse them). */
class YuyvSource implements FrameSource {
  readonly description = 'yuyv-memory';
  private seq = 0;
  constructor(
    private readonly count: number,
    private readonly bad: ReadonlySet<number> = new Set(),
  ) {}
  async open(): Promise<void> {}
  async next(): Promise<Frame | null> {
    const seq = this.seq++;
    if (seq >= this.count) return null;
    const data = frames[seq % frames.length];
    return { seq, id: `mem#${seq}`, format: 'YUYV', width: W, height: H, data: this.bad.has(seq) ? data.subarray(0, 1000) : data, captureTimeMs: now() };
  }
  async close(): Promise<void> {}
}

class MemorySink implements ResultSink {
  readonly description = 'memory';
  readonly needsMask = true;
  readonly items: Required<SinkItem>[] = [];
  async open(): Promise<void> {}
  async write(item: SinkItem): Promise<void> {
    if (!item.mask) throw new Error(`frame ${item.result.frame.id}: a sink that needsMask got none`);
    this.items.push({ result: item.result, mask: item.mask });
  }
  async close(): Promise<void> {}
}

async function reference(modelPath: string, model: LoadedModel, frame: Uint8Array, fit: Fit, threshold: number): Promise<ReferenceSummary> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const x = preprocessRgb({ width: W, height: H, data: toRgb(frame, W, H, 'YUYV') }, { width: model.width, height: model.height }, fit);
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, model.height, model.width]) });
    const logits = out[session.outputNames[0]].data as Float32Array;
    return summarize(logits, model, { width: W, height: H }, {
      threshold,
      contours: true,
      rle: true,
      letterbox: fit === 'letterbox' ? letterboxGeometry(W, H, model.width, model.height) : undefined,
    });
  } finally {
    await session.release();
  }
}

/** A threshold at the median probability of the first frame, so masks are about half the frame. */
async function medianThreshold(model: LoadedModel): Promise<number> {
  const session = await ort.InferenceSession.create(model.path, { intraOpNumThreads: 1 });
  try {
    const x = preprocessRgb({ width: W, height: H, data: toRgb(frames[0], W, H, 'YUYV') }, { width: model.width, height: model.height }, 'stretch');
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, model.height, model.width]) });
    const sorted = Float32Array.from(out[session.outputNames[0]].data as Float32Array).sort();
    return Math.fround(1 / (1 + Math.exp(-sorted[sorted.length >> 1])));
  } finally {
    await session.release();
  }
}

t.test('fused native path: results equal the reference path, bad frames are dropped, stages are timed', { skip }, async (t) => {
  const model = loadModel(buildTestModel(join(tmp.dir, 'model')));
  const threshold = await medianThreshold(model);
  for (const fit of ['stretch', 'letterbox'] as const) {
    const { session } = await openSession({ ...model, threshold }, { threads: 1 });
    t.ok(session instanceof OrtSession);
    const sink = new MemorySink();
    const logs: string[] = [];
    const summaries: Summary[] = [];
    const pipeline = new Pipeline({
      createSource: () => new YuyvSource(7, new Set([2])),
      session,
      model: { ...model, threshold },
      sinks: [sink],
      mode: 'backpressure',
      fit,
      postprocess: { contours: true, rle: true },
      log: (l) => logs.push(l),
      onResult: (_r, s) => summaries.push(s),
    });
    const report = await pipeline.run();
    session.release();
    same(t, report.drops, { total: 1, byStage: { preprocess: 1 }, byReason: { 'preprocess:ERR_FRAME_SIZE': 1 } }, `${fit}: the truncated frame is dropped`);
    t.match(logs.join('\n'), /drop mem#2 at preprocess \(ERR_FRAME_SIZE\): truncated YUYV frame/);
    same(t, sink.items.map((i) => i.result.frame.seq), [0, 1, 3, 4, 5, 6], `${fit}: results in capture order`);
    for (let k = 0; k < sink.items.length; k++) {
      const { result, mask } = sink.items[k];
      const ref = await reference(model.path, model, frames[result.frame.seq % frames.length], fit, threshold);
      let differ = 0;
      for (let i = 0; i < ref.maskFrame.data.length; i++) if (ref.maskFrame.data[i] !== mask.data[i]) differ++;
      t.equal(differ, 0, `${fit} frame ${result.frame.seq}: frame mask equals the reference pixel for pixel`);
      same(t, Buffer.from(summaries[k].maskModel.data), Buffer.from(ref.maskModel.data), `${fit} frame ${result.frame.seq}: model mask`);
      t.ok(result.coverage > 0.05 && result.coverage < 0.95, `coverage ${result.coverage}`);
      t.equal(
        JSON.stringify({ coverage: result.coverage, components: result.components, droppedComponents: result.droppedComponents, contours: result.contours, rle: result.rle }),
        JSON.stringify(summaryJson(ref)),
        `${fit} frame ${result.frame.seq}: coverage, components, contours and RLE equal the reference`,
      );
      const l = result.latencyMs;
      t.ok(l.preprocess > 0 && l.inference > 0 && l.postprocess > 0 && l.queue >= 0 && l.capture >= 0, `stages timed ${JSON.stringify(l)}`);
      t.ok(l.total >= l.preprocess + l.inference, 'total covers the stages');
      t.equal(result.provider, 'CPUExecutionProvider');
    }
  }
});

t.test('fused native path: swapModel to a model of another input size', { skip }, async (t) => {
  const a = loadModel(buildTestModel(join(tmp.dir, 'model-a'), 1, 256));
  const b = loadModel(buildTestModel(join(tmp.dir, 'model-b'), 2, 128));
  const sa = (await openSession(a, { threads: 1 })).session;
  const sb = (await openSession(b, { threads: 1 })).session;
  const sink = new MemorySink();
  let swap: Promise<{ framesLost: number }> | undefined;
  const pipeline: Pipeline = new Pipeline({
    createSource: () => new YuyvSource(12),
    session: sa,
    model: a,
    sinks: [sink],
    mode: 'backpressure',
    onResult: (r) => {
      if (r.frame.seq === 3) swap = pipeline.swapModel(sb, b);
    },
  });
  const report = await pipeline.run();
  const { framesLost } = (await swap) as { framesLost: number };
  // The old session can go as soon as the swap resolved; runs in flight on it were finished.
  sa.release();
  sb.release();
  t.equal(framesLost, 0, 'raw frames wait for inference, so nothing preprocessed for the old model is lost');
  t.equal(report.processed, 12);
  t.equal(report.drops.total, 0);
  const shas = sink.items.map((i) => i.result.model.sha256);
  const first = shas.indexOf(b.sha256);
  // Frames already committed to the old session when result 3 is delivered: at most FUSED_DEPTH in
  // flight, one done and waiting in the postprocess queue, one in the summary/sink stage. The raw
  // frame waiting in the inference queue already goes to the new one. (3 + 3 held until a loaded
  // machine showed frame 7: the bound is the pipeline's depth, not a guess.)
  t.ok(first > 3 && first <= 3 + FUSED_DEPTH + 2, `the new model serves from frame ${first} on`);
  t.ok(shas.slice(0, first).every((s) => s === a.sha256) && shas.slice(first).every((s) => s === b.sha256));
  const last = sink.items[sink.items.length - 1];
  const ref = await reference(b.path, b, frames[last.result.frame.seq % frames.length], 'stretch', b.threshold);
  same(t, Buffer.from(last.mask.data), Buffer.from(ref.maskFrame.data), 'the new model\'s masks equal its reference');
});
