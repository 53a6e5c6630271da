/**
 * capture -> (preprocess -> inference -> postprocess, native) -> summary -> sinks.
 *
 * Each frame goes to ONNX Runtime through one native call (FrameProcessor.process) that decodes
 * MJPEG, preprocesses, runs the model and postprocesses on a libuv worker thread; up to FUSED_DEPTH
 * frames are in flight, so that preprocessing of frame N+1 and postprocessing of frame N-1 overlap
 * inference of frame N while the native side still runs the model one frame at a time, in order.
 * The JS thread only reads frames, filters and rounds component statistics and writes results; the
 * frame-size mask stays native unless an output needs it. This is the only path: tests run it on the
 * fake binding (test/runtime/native/fixtures/fake-binding.ts) through an injected session.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

import type { Fit, NativeFrameResult, ProviderReport } from '../native/binding.js';
import type { FrameProcessor } from '../native/runtime.js';
import type { LoadedModel } from '../model-loader.js';
import { letterboxGeometry } from '../../image/preprocess.js';
import { jpegDecodedSize } from '../../model/preprocessing.js';
import { summarizeNative, type Summary } from '../postprocess/index.js';
import type { DroppedFrame, Frame, FrameSource } from '../sources/types.js';
import { RESULT_SCHEMA, type ResultSink, type ResultV1 } from '../sinks/index.js';
import { StageQueue, type QueueMode } from './queue.js';
import { DropCounter, LatencyRing, round3, type DropCounts, type DropStage, type Percentiles } from './stats.js';

/**
 * What the pipeline needs of a model session: OrtSession satisfies it, on the real addon or on any
 * NativeBinding injected through OnnxRuntime.load (tests use the fake binding).
 */
export interface PipelineSession {
  readonly providers: ProviderReport;
  createFrameProcessor(model: LoadedModel, fit: Fit): FrameProcessor;
}

export interface PostprocessOptions {
  rle?: boolean;
  rleFormat?: 'counts' | 'string';
  contours?: boolean;
  minArea?: number;
  maxComponents?: number;
}

/** What a running pipeline applies from its next frame on (hot reload, `set-threshold`). */
export interface RuntimeSettings {
  threshold?: number;
  minArea?: number;
  rle?: boolean;
  contours?: boolean;
}

export interface PipelineOptions {
  /** Called once with the pipeline's drop handler, which the source must report bad frames to. */
  readonly createSource: (onDrop: (drop: DroppedFrame) => void) => FrameSource | Promise<FrameSource>;
  readonly session: PipelineSession;
  readonly model: LoadedModel;
  readonly sinks: readonly ResultSink[];
  /** 'latest' for live sources and paced replay, 'backpressure' for replay as fast as possible. */
  readonly mode: QueueMode;
  /** Stop after taking this many frames from the source. */
  readonly maxFrames?: number;
  readonly fit?: Fit;
  readonly postprocess?: PostprocessOptions;
  readonly log?: (line: string) => void;
  /** Called after the sinks with every result and its summary (masks included). */
  readonly onResult?: (result: ResultV1, summary: Summary) => void;
  /**
   * Whether onResult reads summary.maskFrame. Without it (and without a sink that needsMask, or
   * contours) the frame-size mask stays native: only what is computed from it comes back.
   */
  readonly frameMask?: boolean;
  /**
   * Called with every frame taken from the source, before it is queued (e.g. to keep frames for
   * snapshots). Frames it saw are not given back to a pooling source: the hook may hold them.
   */
  readonly onCapture?: (frame: Frame) => void;
}

export const STAGES = ['capture', 'preprocess', 'queue', 'inference', 'postprocess', 'sink', 'total'] as const;
export type StageName = (typeof STAGES)[number];

export interface PipelineReport {
  source: string;
  mode: QueueMode;
  /** Frames the source delivered. */
  captured: number;
  /** Results written. */
  processed: number;
  drops: DropCounts;
  /** From the first frame request to the last result, ms. */
  wallMs: number;
  /** processed / wall time. */
  fps: number;
  latencyMs: Record<StageName, Percentiles>;
  /** MJPEG decode per frame (the first part of 'preprocess'): 0 for frames that arrive as pixels. */
  decodeMs: Percentiles;
  /** Capture to the result written by every sink: what a consumer of the results waits. */
  captureToResultMs: Percentiles;
}

interface Timestamps {
  capture: number;
  preprocessStart: number;
  preprocessEnd: number;
  inferenceStart: number;
  inferenceEnd: number;
  /** When the JS thread started on the result (after the native postprocessing). */
  postprocessStart: number;
  postprocessEnd: number;
  /** Native postprocessing time (it runs before postprocessStart). */
  nativePostprocessMs: number;
  /** Native MJPEG decode time (0 for raw formats). */
  decodeMs: number;
}

/** A frame in flight; the pixel data is let go once handed to the native call, only its description travels on. */
interface Job {
  readonly frame: Omit<Frame, 'data'>;
  /** Pixels, until handed to the native call. */
  data?: Uint8Array;
  native?: NativeFrameResult;
  /** The model and provider that produced this frame's output. */
  model?: LoadedModel;
  provider?: string;
  readonly t: Timestamps;
}

/** The session and model new frames go to (swapModel replaces it between frames). */
interface Serving {
  readonly session: PipelineSession;
  readonly model: LoadedModel;
  readonly provider: string;
  processor?: FrameProcessor;
}

/** Frames handed to native fused calls at once: one in inference, one being pre- or post-processed. */
export const FUSED_DEPTH = 2;

/** Wall clock in ms since the epoch, fractional: the clock Frame.captureTimeMs uses. */
const now = (): number => performance.timeOrigin + performance.now();

// Queue replacements are routine in 'latest' mode (a 30 fps camera feeding a 10 fps model drops two
// of three frames), so they are logged on the first and then every LOG_EVERY-th occurrence only.
const LOG_EVERY = 100;

export class Pipeline {
  private readonly drops = new DropCounter();
  private readonly rings = Object.fromEntries(STAGES.map((s) => [s, new LatencyRing()])) as Record<StageName, LatencyRing>;
  private readonly decodeRing = new LatencyRing();
  private readonly resultRing = new LatencyRing();
  private readonly log: (line: string) => void;
  private readonly fit: Fit;
  private serving: Serving;
  /** Processors of replaced models, released once their session is idle. */
  private readonly retired = new Set<FrameProcessor>();
  private source?: FrameSource;
  private stopping = false;
  private captured = 0;
  private processed = 0;
  private failure?: Error;
  private inference?: StageQueue<Job>;
  private post?: StageQueue<Job>;
  private started = false;
  private threshold: number;
  private postprocessOptions: PostprocessOptions;
  /** Runs in flight per session, and who waits for a session to become idle. */
  private readonly busy = new Map<PipelineSession, number>();
  private readonly idleWaiters = new Map<PipelineSession, (() => void)[]>();
  private fusedInFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];
  /** Hands fused results to the postprocess queue in submission order; never rejects. */
  private fusedChain: Promise<void> = Promise.resolve();

  constructor(private readonly options: PipelineOptions) {
    this.log = options.log ?? (() => {});
    this.threshold = options.model.threshold;
    this.postprocessOptions = { ...options.postprocess };
    this.fit = options.fit ?? 'stretch';
    this.serving = { session: options.session, model: options.model, provider: providerOf(options.session) };
    if (options.maxFrames !== undefined && !(Number.isInteger(options.maxFrames) && options.maxFrames >= 0)) {
      throw new RangeError(`maxFrames must be a non-negative integer, got ${options.maxFrames}`);
    }
  }

  /**
   * Changes postprocessing between frames; a frame already being summarised keeps the old values.
   * Throws on an out-of-range value without applying any of the patch.
   */
  update(settings: RuntimeSettings): void {
    const { threshold, minArea } = settings;
    if (threshold !== undefined && !(threshold >= 0 && threshold <= 1)) throw new RangeError(`threshold must be in [0, 1], got ${threshold}`);
    if (minArea !== undefined && !(Number.isInteger(minArea) && minArea >= 0)) throw new RangeError(`minArea must be a non-negative integer, got ${minArea}`);
    if (threshold !== undefined) this.threshold = threshold;
    const pp = { ...this.postprocessOptions };
    if (minArea !== undefined) pp.minArea = minArea;
    if (settings.rle !== undefined) pp.rle = settings.rle;
    if (settings.contours !== undefined) pp.contours = settings.contours;
    this.postprocessOptions = pp;
  }

  /** Frames captured and dropped so far, for live figures (the report has them at the end). */
  live(): { captured: number; drops: DropCounts } {
    return { captured: this.captured, drops: this.drops.counts() };
  }

  /** The values the next frame will be summarised with. */
  settings(): Required<RuntimeSettings> {
    const pp = this.postprocessOptions;
    return { threshold: this.threshold, minArea: pp.minArea ?? 0, rle: pp.rle ?? false, contours: pp.contours ?? false };
  }

  /**
   * Serves `model` with `session` from the next frame handed to native code on. Frames wait in the
   * queue as pixels, so none is lost to the switch (framesLost is 0; the field stays for callers that
   * report it); frames already in flight finish on the old session and report the old model.
   * Resolves once no run on the old session is in flight any more, so the caller may release it
   * then. The threshold is left as it is (update() changes it).
   */
  async swapModel(session: PipelineSession, model: LoadedModel): Promise<{ framesLost: number }> {
    if (!(Number.isInteger(model.width) && model.width > 0 && Number.isInteger(model.height) && model.height > 0)) {
      throw new RangeError(`swapModel: model size must be positive integers, got ${model.width}x${model.height}`);
    }
    const old = this.serving;
    if (old.session === session && old.model === model) return { framesLost: 0 };
    this.serving = { session, model, provider: providerOf(session) };
    if (old.processor) this.retired.add(old.processor);
    await this.idle(old.session);
    if (old.processor) {
      this.retired.delete(old.processor);
      old.processor.release();
    }
    return { framesLost: 0 };
  }

  /** Asks the capture loop to stop; frames already in flight are finished and written. */
  stop(): void {
    this.stopping = true;
  }

  private drop(stage: DropStage, reason: string, id: string, detail: string, always = true): void {
    const n = this.drops.add(stage, reason);
    if (always || n === 1 || n % LOG_EVERY === 0) {
      this.log(`drop ${id} at ${stage} (${reason}${always ? '' : `, ${n} so far`}): ${detail}`);
    }
  }

  private begin(session: PipelineSession): void {
    this.busy.set(session, (this.busy.get(session) ?? 0) + 1);
  }

  private end(session: PipelineSession): void {
    const n = (this.busy.get(session) ?? 1) - 1;
    if (n > 0) {
      this.busy.set(session, n);
      return;
    }
    this.busy.delete(session);
    for (const wake of this.idleWaiters.get(session)?.splice(0) ?? []) wake();
  }

  private idle(session: PipelineSession): Promise<void> {
    if (!this.busy.has(session)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.idleWaiters.get(session) ?? [];
      list.push(resolve);
      this.idleWaiters.set(session, list);
    });
  }

  /**
   * Runs until the source is exhausted, maxFrames is reached or stop() is called; rejects on a fatal
   * error. A Pipeline runs once: its counters describe that run.
   */
  async run(): Promise<PipelineReport> {
    if (this.started) throw new Error('Pipeline.run() was already called: make a new Pipeline for another run');
    this.started = true;
    const { options } = this;
    const source = await options.createSource((d) => this.drop('source', d.reason, d.id, d.detail));
    this.source = source;
    const opened: ResultSink[] = [];
    try {
      for (const sink of options.sinks) {
        await sink.open();
        opened.push(sink);
      }
      await source.open();
      const started = now();
      this.inference = new StageQueue<Job>(1, options.mode, (j) => {
        this.drop('queue.inference', 'replaced', j.frame.id, 'a newer frame took its place', false);
        if (j.data) this.recycle(j.data);
      });
      this.post = new StageQueue<Job>(1, options.mode, (j) => this.drop('queue.postprocess', 'replaced', j.frame.id, 'a newer result took its place', false));
      const loops = [
        this.guard(this.captureLoop(), () => this.inference?.close()),
        this.guard(this.inferenceLoop(), () => this.post?.close()),
        this.guard(this.postprocessLoop(), () => {}),
      ];
      await Promise.all(loops);
      if (this.failure) throw this.failure;
      const wallMs = now() - started;
      return this.report(wallMs);
    } finally {
      this.serving.processor?.release();
      for (const p of this.retired) p.release();
      await source.close().catch((err: unknown) => this.log(`closing ${source.description}: ${(err as Error).message}`));
      for (const sink of opened) await sink.close().catch((err: unknown) => this.log(`closing ${sink.description}: ${(err as Error).message}`));
    }
  }

  /** Stops every loop; run() rethrows the first failure. */
  private fail(err: unknown): void {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
    this.stopping = true;
    this.inference?.close();
    this.post?.close();
    this.inference?.drain();
    this.post?.drain();
  }

  /** A loop's end closes its output queue; its failure stops every loop and is rethrown by run(). */
  private async guard(loop: Promise<void>, closeOutput: () => void): Promise<void> {
    try {
      await loop;
    } catch (err) {
      this.fail(err);
    } finally {
      closeOutput();
    }
  }

  private async captureLoop(): Promise<void> {
    const source = this.source as FrameSource;
    const queue = this.inference as StageQueue<Job>;
    const max = this.options.maxFrames ?? Infinity;
    while (!this.stopping && this.captured < max) {
      await queue.waitForRoom();
      if (this.stopping) break;
      const frame = await source.next();
      if (frame === null || this.stopping) break;
      this.captured++;
      this.options.onCapture?.(frame);
      const { data, ...description } = frame;
      const t: Timestamps = {
        capture: frame.captureTimeMs,
        preprocessStart: 0,
        preprocessEnd: 0,
        inferenceStart: 0,
        inferenceEnd: 0,
        postprocessStart: 0,
        postprocessEnd: 0,
        nativePostprocessMs: 0,
        decodeMs: 0,
      };
      if (!(await queue.put({ frame: description, data, t }))) {
        this.recycle(data);
        break;
      }
    }
  }

  /** Hands each frame to the native call, at most FUSED_DEPTH at once, in capture order. */
  private async inferenceLoop(): Promise<void> {
    const input = this.inference as StageQueue<Job>;
    const output = this.post as StageQueue<Job>;
    for (let job = await input.take(); job !== null; job = await input.take()) {
      while (this.fusedInFlight >= FUSED_DEPTH) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
      if (this.failure) {
        if (job.data) this.recycle(job.data);
        break;
      }
      // Read after the wait: a swap in between must not send this frame to the old session.
      this.submitFused(job, this.serving, output);
    }
    await this.fusedChain;
  }

  /**
   * Whether the frame-size mask must come back to JS: a sink writes it, contours trace it, or the
   * onResult consumer reads it. RLE does not need it (the native job counts the runs).
   */
  private needsFrameMask(pp: PostprocessOptions): boolean {
    return this.options.frameMask === true || pp.contours === true || this.options.sinks.some((s) => s.needsMask === true);
  }

  /**
   * Gives a frame's pixels back to a pooling source once nothing reads them any more. Not when an
   * onCapture hook saw the frame: it may hold the frame (snapshots), so the buffer is left to the GC.
   */
  private recycle(data: Uint8Array): void {
    if (this.options.onCapture === undefined) this.source?.recycle?.(data);
  }

  /** Hands `job` to the native fused call; its result joins the postprocess queue in order. */
  private submitFused(job: Job, serving: Serving, output: StageQueue<Job>): void {
    const { session, model } = serving;
    const frame = { ...job.frame, data: job.data as Uint8Array };
    let pending: Promise<NativeFrameResult>;
    let submitted: number;
    const pp = this.postprocessOptions;
    try {
      serving.processor ??= session.createFrameProcessor(model, this.fit);
      submitted = now();
      pending = serving.processor.process(frame, this.threshold, { rle: pp.rle === true, maskFrame: this.needsFrameMask(pp) });
    } catch (err) {
      this.recycle(frame.data);
      const code = (err as { code?: unknown }).code;
      if ((err as { stage?: unknown }).stage !== 'preprocess') {
        this.fail(inferenceError(job, model, err));
        return;
      }
      this.drop('preprocess', typeof code === 'string' ? code : 'error', job.frame.id, (err as Error).message);
      return;
    }
    job.data = undefined;
    this.begin(session);
    this.fusedInFlight++;
    const settled = pending.finally(() => {
      this.end(session);
      this.recycle(frame.data);
    });
    // Unobserved until the chain reaches it; the chain handles the rejection.
    settled.catch(() => {});
    // The slot is given back once the result is in the postprocess queue, so that a slow consumer
    // holds the producer back instead of finished results piling up here.
    const forward = async (): Promise<void> => {
      let r: NativeFrameResult;
      try {
        r = await settled;
      } catch (err) {
        const stage = (err as { stage?: unknown }).stage;
        if (stage === 'preprocess' || stage === 'postprocess') {
          const code = (err as { code?: unknown }).code;
          this.drop(stage, typeof code === 'string' ? code : 'error', job.frame.id, (err as Error).message);
        } else {
          this.fail(inferenceError(job, model, err));
        }
        return;
      }
      const [preStart, preEnd, infStart, infEnd, postStart, postEnd, decodeEnd] = r.times;
      const t = job.t;
      t.preprocessStart = submitted + preStart;
      t.preprocessEnd = submitted + preEnd;
      t.inferenceStart = submitted + infStart;
      t.inferenceEnd = submitted + infEnd;
      t.nativePostprocessMs = postEnd - postStart;
      t.decodeMs = decodeEnd - preStart;
      job.native = r;
      job.model = model;
      job.provider = serving.provider;
      await output.put(job);
    };
    this.fusedChain = this.fusedChain.then(forward).finally(() => {
      this.fusedInFlight--;
      this.slotWaiters.shift()?.();
    });
  }

  private async postprocessLoop(): Promise<void> {
    const queue = this.post as StageQueue<Job>;
    const { sinks } = this.options;
    for (let job = await queue.take(); job !== null; job = await queue.take()) {
      // The result of inference N and the start of inference N+1 arrive in the same turn; let the
      // inference loop submit N+1 before this turn spends time on the JS thread.
      await yieldToEventLoop();
      const { frame, t } = job;
      const model = job.model as LoadedModel;
      t.postprocessStart = now();
      let summary: Summary;
      const pp = this.postprocessOptions;
      const options = {
        threshold: this.threshold,
        rle: pp.rle,
        rleFormat: pp.rleFormat,
        contours: pp.contours,
        minArea: pp.minArea,
        maxComponents: pp.maxComponents,
      };
      try {
        summary = summarizeNative(job.native as NativeFrameResult, model, frame, options);
      } catch (err) {
        this.drop('postprocess', 'error', frame.id, (err as Error).message);
        continue;
      }
      job.native = undefined;
      t.postprocessEnd = now();
      const result = this.result(job, summary);
      const sinkStart = now();
      for (const sink of sinks) {
        try {
          await sink.write(summary.maskFrame ? { result, mask: summary.maskFrame } : { result });
        } catch (err) {
          throw new Error(`${sink.description}: writing result of frame ${frame.id} failed: ${(err as Error).message}`, { cause: err });
        }
      }
      const written = now();
      this.rings.sink.add(written - sinkStart);
      this.resultRing.add(round3(written - t.capture));
      this.decodeRing.add(round3(t.decodeMs));
      this.processed++;
      this.options.onResult?.(result, summary);
    }
  }

  private result(job: Job, summary: Summary): ResultV1 {
    const { frame, t } = job;
    const model = job.model as LoadedModel;
    const latencyMs = {
      capture: round3(t.preprocessStart - t.capture),
      preprocess: round3(t.preprocessEnd - t.preprocessStart),
      queue: round3(t.inferenceStart - t.preprocessEnd),
      inference: round3(t.inferenceEnd - t.inferenceStart),
      postprocess: round3(t.nativePostprocessMs + t.postprocessEnd - t.postprocessStart),
      total: round3(t.postprocessEnd - t.capture),
    };
    for (const [stage, ms] of Object.entries(latencyMs)) this.rings[stage as StageName].add(ms);
    const result: ResultV1 = {
      schema: RESULT_SCHEMA,
      frame: { id: frame.id, seq: frame.seq, width: frame.width, height: frame.height, format: frame.format },
      model: { sha256: model.sha256, precision: model.precision },
      provider: job.provider ?? 'unknown',
      captureTime: new Date(t.capture).toISOString(),
      completionTime: new Date(t.postprocessEnd).toISOString(),
      latencyMs,
      coverage: summary.coverage,
      components: summary.components,
      droppedComponents: summary.droppedComponents,
    };
    if (frame.stem !== undefined) result.frame.stem = frame.stem;
    if (summary.contours) result.contours = summary.contours;
    if (summary.rle) result.rle = summary.rle;
    return result;
  }

  private report(wallMs: number): PipelineReport {
    return {
      source: this.source?.description ?? '',
      mode: this.options.mode,
      captured: this.captured,
      processed: this.processed,
      drops: this.drops.counts(),
      wallMs: round3(wallMs),
      fps: wallMs > 0 ? round3((this.processed * 1000) / wallMs) : 0,
      latencyMs: Object.fromEntries(STAGES.map((s) => [s, this.rings[s].percentiles()])) as Record<StageName, Percentiles>,
      decodeMs: this.decodeRing.percentiles(),
      captureToResultMs: this.resultRing.percentiles(),
    };
  }
}

/**
 * Where the frame sits in the model input when letterboxed: the geometry of the image preprocessing
 * resized, which for an MJPEG frame is its DCT-scaled decode (JPEG_DECODE), not the frame itself.
 */
export function letterboxOf(frame: Omit<Frame, 'data'>, model: { readonly width: number; readonly height: number }): ReturnType<typeof letterboxGeometry> {
  const src = frame.format === 'MJPEG' ? jpegDecodedSize(frame.width, frame.height, model.width, model.height) : frame;
  return letterboxGeometry(src.width, src.height, model.width, model.height);
}

function providerOf(session: PipelineSession): string {
  return session.providers.active[0] ?? 'unknown';
}

function inferenceError(job: Job, model: LoadedModel, err: unknown): Error {
  return Object.assign(new Error(`inference failed on frame ${job.frame.id} (${model.path}): ${(err as Error).message}`, { cause: err }), {
    code: (err as { code?: unknown }).code,
  });
}

