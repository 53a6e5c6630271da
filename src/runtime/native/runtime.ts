/**
 * TypeScript face of the native runtime: validates options, fills defaults and keeps JS stacks on
 * native errors (the "baton" pattern: C++ receives one complete, flat options object).
 */
import { PREPROCESSING, type Preprocessing } from '../../model/preprocessing.js';
import {
  defaultOnnxRuntimeLibrary,
  loadNativeBinding,
  type Fit,
  type GraphOptimization,
  type NativeBinding,
  type NativeFrameProcessor,
  type NativeFrameResult,
  type NativeSession,
  type NativeSessionOptions,
  type ProviderReport,
  type ProviderRequest,
  type RunOutput,
  type RuntimeInfo,
  type SessionDescription,
  type TensorInfo,
} from './binding.js';
import { isPixelFormat, type PixelFormat } from './pixel-formats.js';

export interface SessionOptions {
  /** 0 (default): ONNX Runtime decides. */
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimization?: GraphOptimization;
  /** In order of preference; CPU is always the implicit last resort. */
  providers?: readonly (string | { name: string; options?: Record<string, string> })[];
  /** Fail instead of falling back when a provider cannot be appended. */
  strict?: boolean;
  /**
   * ONNX Runtime session configuration entries. The pipeline sets
   * `session.intra_op.allow_spinning: '0'`: idle intra-op threads otherwise spin on every core and
   * starve the JS thread that pre- and post-processes the neighbouring frames.
   */
  configEntries?: Record<string, string>;
}

const GRAPH_OPTIMIZATIONS: readonly GraphOptimization[] = ['disabled', 'basic', 'extended', 'all'];

/** Copies the native error's message and properties onto an Error created in JS, keeping its stack. */
function rethrow(jsError: Error, nativeError: unknown): never {
  if (nativeError instanceof Error) {
    jsError.message = nativeError.message;
    for (const [k, v] of Object.entries(nativeError)) (jsError as unknown as Record<string, unknown>)[k] = v;
  } else {
    jsError.message = String(nativeError);
  }
  throw jsError;
}

function threads(value: number | undefined, name: string): number {
  const v = value ?? 0;
  if (!Number.isInteger(v) || v < 0 || v > 1024) throw new RangeError(`${name} must be an integer in 0..1024, got ${value}`);
  return v;
}

export function normalizeSessionOptions(options: SessionOptions = {}): NativeSessionOptions {
  const graphOptimization = options.graphOptimization ?? 'all';
  if (!GRAPH_OPTIMIZATIONS.includes(graphOptimization)) {
    throw new RangeError(`graphOptimization must be one of ${GRAPH_OPTIMIZATIONS.join(', ')}, got ${String(graphOptimization)}`);
  }
  const providers: ProviderRequest[] = (options.providers ?? []).map((p) => {
    const name = typeof p === 'string' ? p : p.name;
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('provider name must be a non-empty string');
    const raw = typeof p === 'string' ? {} : (p.options ?? {});
    const opts: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string') throw new TypeError(`option '${k}' of provider ${name} must be a string`);
      opts[k] = v;
    }
    return { name, options: opts };
  });
  return {
    intraOpThreads: threads(options.intraOpThreads, 'intraOpThreads'),
    interOpThreads: threads(options.interOpThreads, 'interOpThreads'),
    graphOptimization,
    providers,
    strict: options.strict ?? false,
    configEntries: Object.fromEntries(
      Object.entries(options.configEntries ?? {}).map(([k, v]) => {
        if (typeof v !== 'string') throw new TypeError(`session config entry '${k}' must be a string`);
        return [k, v];
      }),
    ),
  };
}

export class OrtSession {
  readonly modelPath: string;
  readonly providers: ProviderReport;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly #native: NativeSession;

  constructor(native: NativeSession) {
    this.#native = native;
    const d: SessionDescription = native.describe();
    this.modelPath = d.modelPath;
    this.providers = d.providers;
    this.inputs = d.inputs;
    this.outputs = d.outputs;
  }

  /** Runs the model off the JS thread; errors carry ONNX Runtime's message, `code` and `modelPath`. */
  async run(input: Float32Array, dims: readonly number[]): Promise<RunOutput> {
    const jsError = new Error('run failed');
    if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new RangeError(`dims must be non-negative integers, got [${dims.join(', ')}]`);
    }
    try {
      return await this.#native.run(input, dims);
    } catch (err) {
      rethrow(jsError, err);
    }
  }

  /**
   * A processor that runs whole frames off the JS thread: preprocessing for `model` (its size and
   * normalisation, `fit`), this session, and postprocessing to masks and component sums. Release it
   * before the session, or it keeps the session alive.
   */
  createFrameProcessor(model: { width: number; height: number; preprocessing: Preprocessing }, fit: Fit): FrameProcessor {
    if (fit !== 'stretch' && fit !== 'letterbox') throw new RangeError(`fit must be 'stretch' or 'letterbox', got ${String(fit)}`);
    const p = model.preprocessing;
    const jsError = new Error('createFrameProcessor failed');
    try {
      return new FrameProcessor(this.#native.createFrameProcessor(model.width, model.height, fit, p.mean, p.std, p.scale), this.modelPath);
    } catch (err) {
      rethrow(jsError, err);
    }
  }

  release(): void {
    this.#native.release();
  }
}

/** A frame as FrameProcessor.process takes it (Frame from the sources satisfies it). */
export interface FrameInput extends FrameDescription {
  readonly id: string;
  readonly data: Uint8Array;
}

export class FrameProcessor {
  readonly #native: NativeFrameProcessor;
  constructor(
    native: NativeFrameProcessor,
    readonly modelPath: string,
  ) {
    this.#native = native;
  }

  /**
   * Preprocess, inference and postprocess of `frame` off the JS thread. A frame whose byte length
   * does not fit its size and format throws synchronously (code ERR_FRAME_SIZE, stage 'preprocess').
   * Errors carry `code`, `frameId`, `modelPath` and `stage`. `rle`: also compute the COCO counts of
   * the frame-size mask natively (result.rleCounts). `maskFrame` (default true): hand the frame-size
   * mask back; false keeps it native, for callers that need only what is computed from it.
   */
  process(frame: FrameInput, threshold: number, options: { rle?: boolean; maskFrame?: boolean } = {}): Promise<NativeFrameResult> {
    const jsError = new Error('process failed');
    let pending: Promise<NativeFrameResult>;
    try {
      pending = this.#native.process(frame.data, frame.width, frame.height, frame.format, threshold, frame.id, options.rle === true, options.maskFrame !== false);
    } catch (err) {
      rethrow(jsError, err);
    }
    return pending.catch((err: unknown) => rethrow(jsError, err));
  }

  release(): void {
    this.#native.release();
  }
}

export class OnnxRuntime {
  readonly info: RuntimeInfo;
  readonly #native: ReturnType<NativeBinding['loadRuntime']>;

  private constructor(binding: NativeBinding, libraryPath: string) {
    this.#native = binding.loadRuntime(libraryPath);
    this.info = this.#native.info();
  }

  /** Loads ONNX Runtime from `libraryPath` (default: defaultOnnxRuntimeLibrary()). */
  static load(libraryPath: string = defaultOnnxRuntimeLibrary(), binding: NativeBinding = loadNativeBinding()): OnnxRuntime {
    return new OnnxRuntime(binding, libraryPath);
  }

  availableProviders(): string[] {
    return this.#native.availableProviders();
  }

  /** Loads the model off the JS thread; errors carry `code`, `modelPath` and ONNX Runtime's message. */
  async createSession(modelPath: string, options: SessionOptions = {}): Promise<OrtSession> {
    const jsError = new Error('createSession failed');
    const normalized = normalizeSessionOptions(options);
    try {
      return new OrtSession(await this.#native.createSession(modelPath, normalized));
    } catch (err) {
      rethrow(jsError, err);
    }
  }
}

export interface FrameDescription {
  format: PixelFormat;
  width: number;
  height: number;
}

/**
 * Native frame preprocessing: pixel format -> RGB -> bilinear resize ('stretch' or 'letterbox') ->
 * (v / scale - mean) / std, NCHW float32. Mean, std and scale come from `preprocessing`
 * (default: the model's PREPROCESSING), never from C++.
 */
export function preprocessFrame(
  frame: Uint8Array,
  desc: FrameDescription,
  size: { width: number; height: number },
  fit: Fit,
  preprocessing: Preprocessing = PREPROCESSING,
  binding: NativeBinding = loadNativeBinding(),
): Float32Array {
  if (!isPixelFormat(desc.format)) throw new RangeError(`unknown pixel format ${String(desc.format)}`);
  if (fit !== 'stretch' && fit !== 'letterbox') throw new RangeError(`fit must be 'stretch' or 'letterbox', got ${String(fit)}`);
  return binding.preprocess(
    frame,
    desc.width,
    desc.height,
    desc.format,
    size.width,
    size.height,
    fit,
    preprocessing.mean,
    preprocessing.std,
    preprocessing.scale,
  );
}

/**
 * The decode step of the preprocessing definition (JPEG_DECODE in src/model/preprocessing.ts) for
 * an MJPEG frame, as the reference path runs it: the same native libjpeg-turbo decode the pipeline's
 * job runs, at the DCT scale chosen for a model input of `size`. Errors carry `code`
 * (ERR_JPEG_CORRUPT, ERR_JPEG_TRUNCATED, ERR_FRAME_SIZE) and `frameId`.
 */
export function decodeJpegFrame(
  frame: { id: string; data: Uint8Array; width: number; height: number },
  size: { width: number; height: number },
  binding: NativeBinding = loadNativeBinding(),
): { width: number; height: number; data: Uint8Array } {
  try {
    return binding.decodeJpeg(frame.data, frame.width, frame.height, size.width, size.height);
  } catch (err) {
    throw Object.assign(new Error(`frame ${frame.id}: ${(err as Error).message}`, { cause: err }), { code: (err as { code?: unknown }).code, frameId: frame.id });
  }
}

/** COCO counts (column-major, background first) of a 0/1 mask, computed natively. */
export function cocoRleCounts(mask: { width: number; height: number; data: Uint8Array }, binding: NativeBinding = loadNativeBinding()): Uint32Array {
  return binding.cocoRle(mask.data, mask.width, mask.height);
}
