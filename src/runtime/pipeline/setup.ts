/**
 * Turning command-line choices into a running pipeline's parts: ONNX Runtime and a session for a
 * verified model, and a frame source for a `--source` spec (V4L2 through the capture module, when the
 * addon was built with it).
 */
import { defaultOnnxRuntimeLibrary } from '../native/binding.js';
import { OnnxRuntime, type OrtSession, type SessionOptions } from '../native/runtime.js';
import type { LoadedModel } from '../model-loader.js';
import { createReplaySource, type SourceFactoryOptions, type SourceSpec } from '../sources/index.js';
import type { FrameSource } from '../sources/types.js';
import { nativeOpener, nativeV4l2Class, V4l2FrameSource } from '../sources/v4l2/index.js';

export interface SessionSetupOptions {
  /** Execution providers in order of preference, e.g. ['TensorRT', 'CUDA', 'CPU']. */
  readonly providers?: readonly string[];
  readonly strict?: boolean;
  /** Intra-op threads (0: ONNX Runtime decides). */
  readonly threads?: number;
  /** ONNX Runtime shared library; default $LVUNET_ORT_LIBRARY or onnxruntime-node's. */
  readonly libraryPath?: string;
  /** Let idle intra-op threads spin (default false: they would starve the JS thread's stages). */
  readonly spinning?: boolean;
  /** Extra ONNX Runtime session configuration entries. */
  readonly configEntries?: Record<string, string>;
}

export interface SessionSetup {
  readonly runtime: OnnxRuntime;
  readonly session: OrtSession;
}

const PROVIDER_ALIASES: Record<string, string> = {
  cpu: 'CPU',
  cuda: 'CUDA',
  tensorrt: 'TensorRT',
  trt: 'TensorRT',
  openvino: 'OpenVINO',
  qnn: 'QNN',
  xnnpack: 'XNNPACK',
  webgpu: 'WebGPU',
  coreml: 'CoreML',
  dml: 'DML',
};

/** `--ep tensorrt,cuda,cpu` to provider names ONNX Runtime knows; CPU is the implicit last resort, so it is left out. */
export function parseProviders(text: string): string[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) throw new RangeError(`--ep ${JSON.stringify(text)} names no provider`);
  return names.map((n) => PROVIDER_ALIASES[n.toLowerCase()] ?? n).filter((n) => n !== 'CPU');
}

/** Loads ONNX Runtime and the model; errors name the library or model file at fault. */
export async function openSession(model: LoadedModel, options: SessionSetupOptions = {}): Promise<SessionSetup> {
  const libraryPath = options.libraryPath ?? defaultOnnxRuntimeLibrary();
  let runtime: OnnxRuntime;
  try {
    runtime = OnnxRuntime.load(libraryPath);
  } catch (err) {
    const message = (err as Error).message;
    throw Object.assign(new Error(message.includes(libraryPath) ? message : `ONNX Runtime library ${libraryPath}: ${message}`, { cause: err }), {
      code: (err as { code?: unknown }).code,
    });
  }
  const session = await createModelSession(runtime, model, {
    intraOpThreads: options.threads ?? 0,
    providers: options.providers ?? [],
    strict: options.strict ?? false,
    configEntries: { 'session.intra_op.allow_spinning': options.spinning ? '1' : '0', ...options.configEntries },
  });
  return { runtime, session };
}

/**
 * A session for a verified model: failures name the model file, and a model whose input is not
 * [1, 3, H, W] of its manifest is refused (the pipeline would feed it the wrong tensor).
 */
export async function createModelSession(runtime: OnnxRuntime, model: LoadedModel, options: SessionOptions): Promise<OrtSession> {
  let session: OrtSession;
  try {
    session = await runtime.createSession(model.path, options);
  } catch (err) {
    const message = (err as Error).message;
    throw Object.assign(new Error(message.includes(model.path) ? message : `${model.path}: ${message}`, { cause: err }), {
      code: (err as { code?: unknown }).code,
    });
  }
  const input = session.inputs[0];
  const expected = [1, 3, model.height, model.width];
  if (!input || input.shape.length !== 4 || input.shape.some((d, i) => d !== -1 && d !== expected[i])) {
    session.release();
    throw new Error(`${model.path}: ONNX Runtime reports input [${input?.shape.join(', ') ?? ''}], expected [${expected.join(', ')}]`);
  }
  return session;
}

/** Whether this build can capture from V4L2 (the addon carries the V4L2 device binding), and if not why. */
export function v4l2Availability(): { available: true } | { available: false; reason: string } {
  try {
    nativeV4l2Class();
    return { available: true };
  } catch (err) {
    return { available: false, reason: (err as Error).message };
  }
}

/** Opens any `--source`; V4L2 fails with "V4L2 capture not available: <reason>" when this build cannot capture. */
export function createSource(spec: SourceSpec, options: SourceFactoryOptions): FrameSource {
  if (spec.kind !== 'v4l2') return createReplaySource(spec, options);
  const v4l2 = v4l2Availability();
  if (!v4l2.available) throw new Error(`V4L2 capture not available: ${v4l2.reason}`);
  return new V4l2FrameSource({
    path: spec.path,
    request: {
      width: options.width ?? 640,
      height: options.height ?? 480,
      fps: options.fps,
      formats: options.format ? [options.format] : undefined,
    },
    openDevice: nativeOpener(),
    onDrop: options.onDrop,
  });
}
