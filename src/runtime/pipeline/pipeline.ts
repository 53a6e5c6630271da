/**
 * capture → preprocess (native, synchronous) → inference (native, on a libuv worker thread) →
 * postprocess (TypeScript) → sinks.
 *
 * Three loops share the JS thread and meet at two StageQueues of one slot each. While frame N is in
 * inference (off the JS thread), the capture loop reads and preprocesses frame N+1 into the inference
 * slot, and the postprocess loop summarises frame N-1. So on a machine with a spare core the frame
 * rate is set by the slowest stage, not by their sum.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

import type { Fit, ProviderReport, RunOutput } from '../native/binding.js';
import { preprocessFrame } from '../native/runtime.js';
import type { LoadedModel } from '../model-loader.js';
import { letterboxGeometry } from '../../image/preprocess.js';
import { summarize, type Summary } from '../postprocess/index.js';
import type { DroppedFrame, Frame, FrameSource } from '../sources/types.js';
import { RESULT_SCHEMA, type ResultSink, type ResultV1 } from '../sinks/index.js';
import { StageQueue, type QueueMode } from './queue.js';
import { DropCounter, LatencyRing, round3, type DropCounts, type DropStage, type Percentiles } from './stats.js';

/** What the pipeline needs of a model session (OrtSession satisfies it; tests may fake it). */
export interface InferenceSession {
  readonly providers: ProviderReport;
  run(input: Float32Array, dims: readonly number[]): Promise<RunOutput>;
}

export type Preprocessor = (frame: Frame, model: LoadedModel, fit: Fit) => Float32Array;

export const nativePreprocessor: Preprocessor = (frame, model, fit) =>
  preprocessFrame(frame.data, frame, { width: model.width, height: model.height }, fit, model.preprocessing);

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
  readonly session: InferenceSession;
  readonly model: LoadedModel;
  readonly sinks: readonly ResultSink[];
  /** 'latest' for live sources and paced replay, 'backpressure' for replay as fast as possible. */
  readonly mode: QueueMode;
  /** Stop after taking this many frames from the source. */
  readonly maxFrames?: number;
  readonly fit?: Fit;
  readonly postprocess?: PostprocessOptions;
  readonly log?: (line: string) => void;
  readonly preprocess?: Preprocessor;
  /** Called after the sinks with every result and its summary (masks included). */
  readonly onResult?: (result: ResultV1, summary: Summary) => void;
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
}

interface Timestamps {
  capture: number;
  preprocessStart: number;
  preprocessEnd: number;
  inferenceStart: number;
  inferenceEnd: number;
  postprocessStart: number;
  postprocessEnd: number;
}

/** A frame in flight; the pixel data is let go once preprocessed, only its description travels on. */
interface Job {
  readonly frame: Omit<Frame, 'data'>;
  input: Float32Array;
  logits?: Float32Array;
  readonly t: Timestamps;
}

/** Wall clock in ms since the epoch, fractional: the clock Frame.captureTimeMs uses. */
const now = (): number => performance.timeOrigin + performance.now();

// Queue replacements are routine in 'latest' mode (a 30 fps camera feeding a 10 fps model drops two
// of three frames), so they are logged on the first and then every LOG_EVERY-th occurrence only.
const LOG_EVERY = 100;

export class Pipeline {
  private readonly drops = new DropCounter();
  private readonly rings = Object.fromEntries(STAGES.map((s) => [s, new LatencyRing()])) as Record<StageName, LatencyRing>;
  private readonly log: (line: string) => void;
  private readonly preprocess: Preprocessor;
  private readonly fit: Fit;
  private readonly provider: string;
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

  constructor(private readonly options: PipelineOptions) {
    this.log = options.log ?? (() => {});
    this.threshold = options.model.threshold;
    this.postprocessOptions = { ...options.postprocess };
    this.preprocess = options.preprocess ?? nativePreprocessor;
    this.fit = options.fit ?? 'stretch';
    this.provider = options.session.providers.active[0] ?? 'unknown';
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

  /** The values the next frame will be summarised with. */
  settings(): Required<RuntimeSettings> {
    const pp = this.postprocessOptions;
    return { threshold: this.threshold, minArea: pp.minArea ?? 0, rle: pp.rle ?? false, contours: pp.contours ?? false };
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
      this.inference = new StageQueue<Job>(1, options.mode, (j) => this.drop('queue.inference', 'replaced', j.frame.id, 'a newer frame took its place', false));
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
      await source.close().catch((err: unknown) => this.log(`closing ${source.description}: ${(err as Error).message}`));
      for (const sink of opened) await sink.close().catch((err: unknown) => this.log(`closing ${sink.description}: ${(err as Error).message}`));
    }
  }

  /** A loop's end closes its output queue; its failure stops every loop and is rethrown by run(). */
  private async guard(loop: Promise<void>, closeOutput: () => void): Promise<void> {
    try {
      await loop;
    } catch (err) {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
      this.stopping = true;
      this.inference?.close();
      this.post?.close();
      this.inference?.drain();
      this.post?.drain();
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
      const preprocessStart = now();
      let input: Float32Array;
      try {
        input = this.preprocess(frame, this.options.model, this.fit);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        this.drop('preprocess', typeof code === 'string' ? code : 'error', frame.id, (err as Error).message);
        continue;
      }
      const preprocessEnd = now();
      const { data: _pixels, ...description } = frame;
      const job: Job = {
        frame: description,
        input,
        t: { capture: frame.captureTimeMs, preprocessStart, preprocessEnd, inferenceStart: 0, inferenceEnd: 0, postprocessStart: 0, postprocessEnd: 0 },
      };
      if (!(await queue.put(job))) break;
    }
  }

  private async inferenceLoop(): Promise<void> {
    const input = this.inference as StageQueue<Job>;
    const output = this.post as StageQueue<Job>;
    const { session, model } = this.options;
    const dims = [1, 3, model.height, model.width];
    for (let job = await input.take(); job !== null; job = await input.take()) {
      job.t.inferenceStart = now();
      let out: RunOutput;
      try {
        out = await session.run(job.input, dims);
      } catch (err) {
        // A failing session fails every frame after this one too: stop rather than log a flood.
        throw Object.assign(new Error(`inference failed on frame ${job.frame.id} (${model.path}): ${(err as Error).message}`, { cause: err }), {
          code: (err as { code?: unknown }).code,
        });
      }
      job.t.inferenceEnd = now();
      if (out.data.length !== model.width * model.height) {
        throw new Error(`${model.path}: output [${out.dims.join(', ')}] is not one ${model.height}x${model.width} logit map`);
      }
      job.logits = out.data;
      job.input = EMPTY;
      if (!(await output.put(job))) break;
    }
  }

  private async postprocessLoop(): Promise<void> {
    const queue = this.post as StageQueue<Job>;
    const { model, sinks } = this.options;
    for (let job = await queue.take(); job !== null; job = await queue.take()) {
      // The result of inference N and the start of inference N+1 arrive in the same turn; let the
      // inference loop submit N+1 before this turn spends milliseconds on the JS thread.
      await yieldToEventLoop();
      const { frame, t } = job;
      t.postprocessStart = now();
      let summary: Summary;
      const pp = this.postprocessOptions;
      try {
        summary = summarize(job.logits as Float32Array, model, frame, {
          threshold: this.threshold,
          rle: pp.rle,
          rleFormat: pp.rleFormat,
          contours: pp.contours,
          minArea: pp.minArea,
          maxComponents: pp.maxComponents,
          letterbox: this.fit === 'letterbox' ? letterboxGeometry(frame.width, frame.height, model.width, model.height) : undefined,
        });
      } catch (err) {
        this.drop('postprocess', 'error', frame.id, (err as Error).message);
        continue;
      }
      t.postprocessEnd = now();
      const result = this.result(job, summary);
      const sinkStart = now();
      for (const sink of sinks) {
        try {
          await sink.write({ result, mask: summary.maskFrame });
        } catch (err) {
          throw new Error(`${sink.description}: writing result of frame ${frame.id} failed: ${(err as Error).message}`, { cause: err });
        }
      }
      this.rings.sink.add(now() - sinkStart);
      this.processed++;
      this.options.onResult?.(result, summary);
    }
  }

  private result(job: Job, summary: Summary): ResultV1 {
    const { frame, t } = job;
    const latencyMs = {
      capture: round3(t.preprocessStart - t.capture),
      preprocess: round3(t.preprocessEnd - t.preprocessStart),
      queue: round3(t.inferenceStart - t.preprocessEnd),
      inference: round3(t.inferenceEnd - t.inferenceStart),
      postprocess: round3(t.postprocessEnd - t.postprocessStart),
      total: round3(t.postprocessEnd - t.capture),
    };
    for (const [stage, ms] of Object.entries(latencyMs)) this.rings[stage as StageName].add(ms);
    const result: ResultV1 = {
      schema: RESULT_SCHEMA,
      frame: { id: frame.id, seq: frame.seq, width: frame.width, height: frame.height, format: frame.format },
      model: { sha256: this.options.model.sha256, precision: this.options.model.precision },
      provider: this.provider,
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
    };
  }
}

const EMPTY = new Float32Array(0);
