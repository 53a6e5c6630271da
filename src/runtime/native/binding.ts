/**
 * The native addon (native/, built to build/Release/lvunet_edge.node) declared as one TypeScript
 * interface, and its loader. Callers use src/runtime/native/runtime.ts, which validates options and
 * fills defaults before anything reaches C++.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { V4l2Device } from '../sources/v4l2/types.js';
import type { PixelFormat } from './pixel-formats.js';
import { prebuiltCandidate } from './prebuilds.js';

/** `code` of errors raised by native/core (native/core/error.h). */
export type NativeErrorCode =
  | 'ERR_ORT_LIBRARY_NOT_FOUND'
  | 'ERR_ORT_LIBRARY_LOAD'
  | 'ERR_ORT_NOT_ONNXRUNTIME'
  | 'ERR_ORT_API_VERSION'
  | 'ERR_ORT'
  | 'ERR_ORT_PROVIDER'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_FRAME_SIZE'
  | 'ERR_JPEG_CORRUPT'
  | 'ERR_JPEG_TRUNCATED'
  | 'ERR_NATIVE';

export type GraphOptimization = 'disabled' | 'basic' | 'extended' | 'all';
export type Fit = 'stretch' | 'letterbox';

export interface ProviderRequest {
  /** "CPU", "CUDA", "TensorRT" or any name ONNX Runtime's by-name API knows ("QNN", "OpenVINO", "XNNPACK"...). */
  readonly name: string;
  readonly options: Readonly<Record<string, string>>;
}

/** Complete session options as the addon receives them (no defaults are applied in C++). */
export interface NativeSessionOptions {
  readonly intraOpThreads: number;
  readonly interOpThreads: number;
  readonly graphOptimization: GraphOptimization;
  readonly providers: readonly ProviderRequest[];
  readonly strict: boolean;
  /** ONNX Runtime session configuration entries (AddSessionConfigEntry). */
  readonly configEntries: Readonly<Record<string, string>>;
}

export interface ProviderReport {
  requested: string[];
  /** Providers appended, in order, then CPUExecutionProvider (always present as the last resort). */
  active: string[];
  fallbacks: { provider: string; reason: string }[];
}

export interface TensorInfo {
  name: string;
  /** "float32", "uint8", "float16", ... */
  type: string;
  /** -1 for a dynamic dimension. */
  shape: number[];
  /** Symbolic name of each dimension, "" where none. */
  dimNames: string[];
}

export interface SessionDescription {
  modelPath: string;
  providers: ProviderReport;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
}

export interface RunOutput {
  data: Float32Array;
  dims: number[];
}

/**
 * Values per component in NativePostprocessResult.components, in this order: area, sumX, sumY,
 * sumP, minX, minY, maxX, maxY, start (row-major index of the first pixel). Components are in
 * label order (raster order of their first pixel), unfiltered and unrounded.
 */
export const COMPONENT_FIELDS = 9;

export interface NativePostprocessResult {
  /** prob > threshold at model size (padding included when letterboxed). */
  maskModel: Uint8Array;
  /** prob > threshold at frame size, from the bilinearly resized probabilities. */
  maskFrame: Uint8Array;
  /** COMPONENT_FIELDS values per component of maskFrame. */
  components: Float64Array;
  /** Foreground pixels of maskFrame. */
  foreground: number;
}

export interface NativeFrameResult extends Omit<NativePostprocessResult, 'maskFrame'> {
  /** prob > threshold at frame size: only when process() was asked for it (it stays native otherwise). */
  maskFrame?: Uint8Array;
  /**
   * ms since the job was submitted (steady clock): preprocess start, end, inference start, end,
   * postprocess start, end, and the end of the MJPEG decode that opens preprocessing (= preprocess
   * start for raw formats).
   */
  times: Float64Array;
  /** [width, height] of the image preprocessing resized: the frame's, or an MJPEG frame's DCT-scaled decode. */
  decodedSize: Uint32Array;
  /** COCO counts of maskFrame (column-major, background first), when process() was asked for them. */
  rleCounts?: Uint32Array;
}

/** preprocess -> run -> postprocess of one frame on a libuv worker thread (see OrtSession.createFrameProcessor). */
export interface NativeFrameProcessor {
  /**
   * Throws synchronously (ERR_FRAME_SIZE / ERR_INVALID_ARGUMENT, with frameId and stage) for a frame
   * whose byte length does not match its size and format; rejects with frameId, modelPath and stage
   * (preprocess, inference, postprocess) on a failure off the JS thread. The caller must not write
   * `frame` before the promise settles (the worker reads it in place). ONNX Runtime runs the
   * frames of one processor one at a time, in the order process() was called.
   */
  process(
    frame: Uint8Array,
    width: number,
    height: number,
    format: PixelFormat,
    threshold: number,
    frameId: string,
    rle: boolean,
    maskFrame: boolean,
  ): Promise<NativeFrameResult>;
  /** Drops this processor's hold on the session; jobs in flight finish first. */
  release(): void;
}

export interface NativeSession {
  describe(): SessionDescription;
  createFrameProcessor(
    modelWidth: number,
    modelHeight: number,
    fit: Fit,
    mean: readonly [number, number, number],
    std: readonly [number, number, number],
    scale: number,
  ): NativeFrameProcessor;
  /** Runs on a libuv worker thread; resolves with the first output. */
  run(input: Float32Array, dims: readonly number[]): Promise<RunOutput>;
  /** Drops the session (a run in flight finishes first). Later calls throw. */
  release(): void;
}

export interface RuntimeInfo {
  path: string;
  /** ONNX Runtime version string, e.g. "1.30.0". */
  version: string;
  /** C API version in use: the highest both the library and the compiled-in header support. */
  apiVersion: number;
  headerApiVersion: number;
}

export interface NativeRuntime {
  info(): RuntimeInfo;
  availableProviders(): string[];
  /** Loads the model on a libuv worker thread (a TensorRT engine build can take minutes). */
  createSession(modelPath: string, options: NativeSessionOptions): Promise<NativeSession>;
}

/**
 * The version of this interface the loader accepts: equal to kAddonAbiVersion in
 * native/binding/addon.cc, bumped with it whenever an export, a signature or a returned shape changes.
 */
export const NATIVE_ABI_VERSION = 3;

export interface NativeBinding {
  /** The addon's interface version (kAddonAbiVersion); the loader refuses any other than NATIVE_ABI_VERSION. */
  readonly abiVersion: number;
  /** A V4L2 capture device (native/binding/v4l2_binding.cc), opened from its path; see src/runtime/sources/v4l2/native-device.ts. */
  readonly V4l2Device: new (path: string) => V4l2Device;
  /** dlopen()s ONNX Runtime from `libraryPath` (cached per path for the life of the process). */
  loadRuntime(libraryPath: string): NativeRuntime;
  frameByteLength(format: PixelFormat, width: number, height: number): number;
  toRgb(frame: Uint8Array, width: number, height: number, format: PixelFormat): Uint8Array;
  preprocess(
    frame: Uint8Array,
    width: number,
    height: number,
    format: PixelFormat,
    outWidth: number,
    outHeight: number,
    fit: Fit,
    mean: readonly [number, number, number],
    std: readonly [number, number, number],
    scale: number,
  ): Float32Array;
  /**
   * The decode step of the preprocessing definition (JPEG_DECODE): a JPEG whose header says
   * width x height, decoded by libjpeg-turbo at the smallest DCT scale still at least
   * minWidth x minHeight, as RGB24. Throws ERR_JPEG_CORRUPT / ERR_JPEG_TRUNCATED / ERR_FRAME_SIZE.
   */
  decodeJpeg(frame: Uint8Array, width: number, height: number, minWidth: number, minHeight: number): { width: number; height: number; data: Uint8Array };
  /** A baseline JPEG of an RGB24 image (libjpeg-turbo), quality 1..100, chroma subsampling 444, 422 or 420. */
  encodeJpeg(rgb: Uint8Array, width: number, height: number, quality: number, subsampling: 444 | 422 | 420): Uint8Array;
  /**
   * A live-view picture (native/core/preview.h): the frame sampled (nearest neighbour) to
   * outWidth x outHeight, at most its own size, and encoded as a 4:2:0 JPEG, on a libuv thread (the
   * frame is copied first, so its buffer is free again when this returns).
   */
  previewJpeg(frame: Uint8Array, width: number, height: number, format: PixelFormat, outWidth: number, outHeight: number, quality: number): Promise<Uint8Array>;
  /** COCO counts of a 0/1 mask (column-major, background run first). */
  cocoRle(mask: Uint8Array, width: number, height: number): Uint32Array;
  /**
   * Synchronous native postprocessing of one logit map (the pipeline runs the same code off the JS
   * thread through NativeFrameProcessor). `window`: the letterbox content rect [newW, newH, ox, oy],
   * null when stretched.
   */
  postprocess(
    logits: Float32Array,
    modelWidth: number,
    modelHeight: number,
    frameWidth: number,
    frameHeight: number,
    window: readonly [number, number, number, number] | null,
    threshold: number,
  ): NativePostprocessResult;
  /** fdlibm's exp (V8's Math.exp) per value, as the native sigmoid uses it. */
  exp(values: Float64Array): Float64Array;
  /** The native sigmoid per value (equal to sigmoidInto in src/runtime/postprocess/probability.ts). */
  sigmoid(logits: Float32Array): Float32Array;
  /** One sd_notify(3) datagram to the systemd socket (`@name` = abstract namespace). */
  sdNotify(socketPath: string, state: string): void;
}

/** Root of this package (the folder holding its package.json), from src/ or dist/src/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'lvunet-edge') return dir;
      } catch {
        // not ours: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the lvunet-edge package root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/**
 * Where the loader looks, in order: $LVUNET_EDGE_NATIVE, the prebuilt for this platform and CPU
 * (prebuilds/<platform>-<arch>/, only when this machine's glibc and N-API can run it), then the
 * cmake-js / node-gyp outputs.
 */
export function nativeCandidates(root = packageRoot()): string[] {
  const env = process.env.LVUNET_EDGE_NATIVE;
  const prebuilt = prebuiltCandidate(root);
  return [
    ...(env ? [env] : []),
    ...(prebuilt.status === 'found' ? [prebuilt.path] : []),
    join(root, 'build', 'Release', 'lvunet_edge.node'),
    join(root, 'build', 'Debug', 'lvunet_edge.node'),
  ];
}

function likelyCause(errors: readonly { path: string; error: Error }[], root = packageRoot()): string {
  const text = errors.map((e) => e.error.message).join('\n');
  // The addon decodes MJPEG with libjpeg-turbo and links it dynamically (native/core/jpeg_decode.cc).
  if (/libturbojpeg\.so[.\d]*: cannot open shared object file/.test(text)) {
    return (
      "The addon needs libjpeg-turbo's TurboJPEG library at run time, which is not installed: " +
      '`apt-get install libturbojpeg0` on Debian/Ubuntu (`dnf install turbojpeg` on Fedora).'
    );
  }
  if (errors.every((e) => /Cannot find module|ENOENT|cannot open shared object file: No such file/.test(e.error.message))) {
    // Why no prebuilt was tried: none for this platform (listing those shipped) or one this machine cannot run.
    const prebuilt = prebuiltCandidate(root);
    if (prebuilt.status !== 'found') return `The native addon has not been built, and ${prebuilt.message}.`;
    return (
      'The native addon has not been built. Run `npm run build:native` ' +
      '(needs cmake >= 3.15, a C++17 compiler and libjpeg-turbo: `apt-get install cmake g++ libturbojpeg0-dev` on Debian/Ubuntu).'
    );
  }
  if (errors.some((e) => e.error instanceof NativeAbiError)) {
    return "The addon was built from another version of lvunet-edge's native sources. Rebuild it: `npm run build:native` (or point LVUNET_EDGE_NATIVE at a matching build).";
  }
  if (/NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(text)) {
    return 'The addon was built for another Node.js version. Rebuild it: `npm run build:native`.';
  }
  if (/wrong ELF class|invalid ELF header|Exec format error|not a mach-o/i.test(text)) {
    return 'The addon was built for another CPU architecture or OS. Rebuild it on this machine: `npm run build:native`.';
  }
  if (/undefined symbol|GLIBC|GLIBCXX/.test(text)) {
    return 'The addon does not match this system\'s C/C++ runtime. Rebuild it on this machine: `npm run build:native`.';
  }
  return 'Rebuild the addon with `npm run build:native`; set LVUNET_EDGE_NATIVE to load one from elsewhere.';
}

/** Thrown (and listed among the attempts) for an addon built from other native sources than this package's. */
export class NativeAbiError extends Error {
  readonly code = 'ERR_NATIVE_ABI';
  constructor(
    readonly path: string,
    readonly found: number | undefined,
  ) {
    super(
      `${path} implements native interface version ${found ?? '(none: built before versioning)'}, this lvunet-edge needs version ${NATIVE_ABI_VERSION}`,
    );
    this.name = 'NativeAbiError';
  }
}

function checkAbiVersion(binding: unknown, path: string): void {
  const found = (binding as { abiVersion?: unknown } | null)?.abiVersion;
  if (found !== NATIVE_ABI_VERSION) throw new NativeAbiError(path, typeof found === 'number' ? found : undefined);
}

let cached: NativeBinding | undefined;

/** Loads the addon once; on failure throws an Error listing every location tried and the likely fix. */
export function loadNativeBinding(candidates?: readonly string[]): NativeBinding {
  if (cached && !candidates) return cached;
  const require = createRequire(import.meta.url);
  const errors: { path: string; error: Error }[] = [];
  for (const path of candidates ?? nativeCandidates()) {
    try {
      const binding = require(path) as NativeBinding;
      checkAbiVersion(binding, path);
      if (!candidates) cached = binding;
      return binding;
    } catch (err) {
      errors.push({ path, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }
  const tried = errors.map((e) => `  ${e.path}: ${e.error.message.split('\n')[0]}`).join('\n');
  const error = new Error(`cannot load the lvunet-edge native addon.\nTried:\n${tried}\n${likelyCause(errors)}`, {
    cause: errors[errors.length - 1]?.error,
  });
  throw Object.assign(error, { code: 'ERR_NATIVE_ADDON_LOAD', attempts: errors });
}

/** Library file names ONNX Runtime ships under, per platform. */
function ortLibraryName(dir: string): string | undefined {
  if (process.platform === 'win32') return 'onnxruntime.dll';
  if (process.platform === 'darwin') {
    try {
      return readdirSync(dir).find((f) => /^libonnxruntime\.[\d.]+dylib$/.test(f));
    } catch {
      return undefined;
    }
  }
  return 'libonnxruntime.so.1';
}

/**
 * The ONNX Runtime library to load: $LVUNET_ORT_LIBRARY if set, else the one shipped in
 * onnxruntime-node for this platform and CPU (bin/napi-v6/<platform>/<arch>/).
 */
export function defaultOnnxRuntimeLibrary(): string {
  const env = process.env.LVUNET_ORT_LIBRARY;
  if (env) return env;
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve('onnxruntime-node'));
  while (!existsSync(join(dir, 'package.json')) || !/"name":\s*"onnxruntime-node"/.test(readFileSync(join(dir, 'package.json'), 'utf8'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot locate the onnxruntime-node package');
    dir = parent;
  }
  const libDir = join(dir, 'bin', 'napi-v6', process.platform, process.arch);
  return join(libDir, ortLibraryName(libDir) ?? 'libonnxruntime.so.1');
}
