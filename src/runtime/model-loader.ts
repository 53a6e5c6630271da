/**
 * `--model DIR|FILE` to one verified ONNX file and everything the pipeline needs to feed it: a model
 * directory is read through its manifest.json (file picked by precision, sha256 checked); a bare .onnx
 * is described by the metadata the toolchain writes into it. Every failure names the file at fault,
 * before ONNX Runtime is ever asked to load anything.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

import { FP32_FILE } from '../model/build.js';
import { MANIFEST_FILE, MANIFEST_SCHEMA, manifest as manifestSchema, type Manifest, type ManifestFile, type Precision } from '../model/manifest.js';
import type { Model } from '../model/ir.js';
import { readOnnx } from '../model/onnx/read.js';
import type { Preprocessing } from '../model/preprocessing.js';
import { sha256 } from '../util/files.js';
import { FileReadError, readRegularFileSync } from '../util/read-file.js';

export const PRECISIONS: readonly Precision[] = ['fp32', 'fp16', 'int8'];
const DEFAULT_THRESHOLD = 0.5;

export class ModelLoadError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'ModelLoadError';
  }
}

export interface LoadedModel {
  /** Absolute path of the ONNX file ONNX Runtime will load. */
  readonly path: string;
  readonly sha256: string;
  readonly precision: Precision;
  readonly inputName: string;
  /** Model input size in pixels (NCHW [1, 3, height, width]). */
  readonly width: number;
  readonly height: number;
  readonly preprocessing: Preprocessing;
  /** Foreground is sigmoid(logit) > threshold. */
  readonly threshold: number;
  /** Where the description came from. */
  readonly describedBy: 'manifest' | 'onnx-metadata';
  readonly manifestPath?: string;
  /** The manifest's model name, where there is a manifest with one. */
  readonly name?: string;
}

export interface ModelLoadOptions {
  /** Which deployment file of a model directory to use (default fp32); a bare file must match it when given. */
  readonly precision?: Precision;
  /** Largest model file read (checked before reading); default DEFAULT_MAX_MODEL_BYTES. */
  readonly maxBytes?: number;
}

/**
 * Model files are read whole into memory (hashed, then given to ONNX Runtime), so their size is
 * checked before a byte is read. LV-UNet models are a few MB; 512 MiB leaves room for far larger
 * ones and matches the largest file a signed bundle may carry. Config: model.max_bytes.
 */
export const DEFAULT_MAX_MODEL_BYTES = 512 * 1024 * 1024;
/** manifest.json is a few KiB; a larger one is not a manifest. */
const MAX_MANIFEST_BYTES = 1024 * 1024;

/** Only a regular file of at most `maxBytes` (src/util/read-file.ts), failures naming the file. */
function readBytes(path: string, what: string, maxBytes: number): Buffer {
  try {
    return readRegularFileSync(path, maxBytes);
  } catch (err) {
    if (!(err instanceof FileReadError)) throw err;
    if (err.code === 'ENOENT') throw new ModelLoadError(path, `${what} not found`);
    throw new ModelLoadError(path, `${what} ${err.reason}${err.code === 'EFBIG' && what === 'model file' ? ' (model.max_bytes)' : ''}`);
  }
}

function spatialSize(shape: readonly (number | string)[], file: string): { width: number; height: number } {
  const h = shape[2];
  const w = shape[3];
  if (shape.length !== 4 || shape[1] !== 3 || typeof h !== 'number' || typeof w !== 'number' || h < 1 || w < 1) {
    throw new ModelLoadError(file, `input shape [${shape.join(', ')}] is not [N, 3, H, W] with a fixed H and W`);
  }
  return { width: w, height: h };
}

function isTriple(v: unknown): v is [number, number, number] {
  return Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
}

/** Checks the numbers the native preprocessor will be given, so a hand-edited file fails here, not as NaN logits. */
function checkPreprocessing(p: unknown, file: string): Preprocessing {
  const o = (p ?? {}) as Partial<Record<keyof Preprocessing, unknown>>;
  if (!isTriple(o.mean) || !isTriple(o.std) || o.std.some((s) => s <= 0) || typeof o.scale !== 'number' || !(o.scale > 0)) {
    throw new ModelLoadError(file, 'preprocessing needs mean and std (3 numbers each, std > 0) and a scale > 0');
  }
  if (o.colorOrder !== 'RGB' || o.layout !== 'NCHW') {
    throw new ModelLoadError(file, `preprocessing must be RGB NCHW, got ${String(o.colorOrder)} ${String(o.layout)}`);
  }
  return { colorOrder: 'RGB', layout: 'NCHW', scale: o.scale, mean: o.mean, std: o.std, resize: 'bilinear' };
}

function parseJson(text: string, file: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ModelLoadError(file, `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function fromDirectory(dir: string, options: ModelLoadOptions): LoadedModel {
  const manifestPath = join(dir, MANIFEST_FILE);
  const manifest = parseJson(readBytes(manifestPath, 'manifest', MAX_MANIFEST_BYTES).toString('utf8'), manifestPath, 'manifest') as Manifest;
  if (manifest?.schema !== MANIFEST_SCHEMA) {
    throw new ModelLoadError(manifestPath, `schema is ${JSON.stringify(manifest?.schema)}, expected ${MANIFEST_SCHEMA}`);
  }
  const problems = manifestSchema.errors(manifest);
  if (problems.length > 0) throw new ModelLoadError(manifestPath, `not a valid ${MANIFEST_SCHEMA}: ${problems.slice(0, 5).join('; ')}`);
  const precision = options.precision ?? 'fp32';
  const deployment = (manifest.files ?? []).filter((f) => f.mode === 'deployment');
  // FP32_FILE first: if a manifest ever lists two fp32 deployment files, the toolchain's own name wins.
  const entry: ManifestFile | undefined =
    deployment.find((f) => f.precision === precision && f.file === FP32_FILE) ?? deployment.find((f) => f.precision === precision);
  if (!entry) {
    const have = deployment.map((f) => `${f.file} (${f.precision})`).join(', ') || 'none';
    throw new ModelLoadError(manifestPath, `no deployment file of precision ${precision}; deployment files: ${have}`);
  }
  const path = join(dir, entry.file);
  const bytes = readBytes(path, 'model file', options.maxBytes ?? DEFAULT_MAX_MODEL_BYTES);
  const actual = sha256(bytes);
  if (actual !== entry.sha256) {
    throw new ModelLoadError(path, `sha256 mismatch: manifest says ${entry.sha256}, file is ${actual}; refusing to load a model that is not the one described`);
  }
  return {
    path,
    sha256: actual,
    precision: entry.precision,
    inputName: manifest.input.name,
    ...spatialSize(manifest.input.shape, manifestPath),
    preprocessing: checkPreprocessing(manifest.input.preprocessing, manifestPath),
    threshold: typeof manifest.output?.threshold === 'number' ? manifest.output.threshold : DEFAULT_THRESHOLD,
    describedBy: 'manifest',
    manifestPath,
    ...(typeof (manifest as { name?: unknown }).name === 'string' ? { name: (manifest as { name: string }).name } : {}),
  };
}

function inferPrecision(types: Iterable<string>): Precision {
  const seen = new Set(types);
  if (seen.has('int8') || seen.has('uint8')) return 'int8';
  if (seen.has('float16')) return 'fp16';
  return 'fp32';
}

/** A bare file that sits in a model directory is still checked against the manifest that lists it. */
function checkSiblingManifest(path: string, actual: string): void {
  const manifestPath = join(dirname(path), MANIFEST_FILE);
  if (!existsSync(manifestPath)) return;
  const manifest = parseJson(readBytes(manifestPath, 'manifest', MAX_MANIFEST_BYTES).toString('utf8'), manifestPath, 'manifest') as Partial<Manifest>;
  const entry = manifest.files?.find((f) => f.file === basename(path));
  if (entry && entry.sha256 !== actual) {
    throw new ModelLoadError(path, `sha256 mismatch: ${manifestPath} says ${entry.sha256}, file is ${actual}; refusing to load a model that is not the one described`);
  }
}

function fromOnnxFile(path: string, options: ModelLoadOptions): LoadedModel {
  const bytes = readBytes(path, 'model file', options.maxBytes ?? DEFAULT_MAX_MODEL_BYTES);
  const digest = sha256(bytes);
  checkSiblingManifest(path, digest);
  let model: Model;
  try {
    model = readOnnx(bytes, path);
  } catch (err) {
    throw new ModelLoadError(path, (err as Error).message.replace(`${path}: `, ''));
  }
  const norm = model.metadata.get('normalization');
  if (norm === undefined) {
    throw new ModelLoadError(
      path,
      "has no 'normalization' metadata, so its input normalisation is unknown; use a model directory with manifest.json or a file built by `lvunet-edge model build`",
    );
  }
  const preprocessing = checkPreprocessing(parseJson(norm, path, "metadata 'normalization'"), path);
  const graphInput = model.graph.inputs[0];
  if (!graphInput) throw new ModelLoadError(path, 'graph has no input');
  const metaInput = model.metadata.get('input');
  const shape = metaInput ? ((parseJson(metaInput, path, "metadata 'input'") as { shape?: (number | string)[] }).shape ?? graphInput.shape) : graphInput.shape;
  const precision = inferPrecision([...model.graph.initializers.values()].map((t) => t.dataType));
  if (options.precision && options.precision !== precision) {
    throw new ModelLoadError(path, `is ${precision}, but --precision ${options.precision} was asked for`);
  }
  return {
    path,
    sha256: digest,
    precision,
    inputName: graphInput.name,
    ...spatialSize(shape, path),
    preprocessing,
    threshold: DEFAULT_THRESHOLD,
    describedBy: 'onnx-metadata',
  };
}

/** Resolves `--model` (a model directory or an .onnx file) and verifies it; throws ModelLoadError naming the file. */
export function loadModel(spec: string, options: ModelLoadOptions = {}): LoadedModel {
  if (options.precision !== undefined && !PRECISIONS.includes(options.precision)) {
    throw new RangeError(`precision must be one of ${PRECISIONS.join(', ')}, got ${String(options.precision)}`);
  }
  const path = resolve(spec);
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new ModelLoadError(path, 'model not found (give a model directory with manifest.json or an .onnx file)');
  }
  return isDir ? fromDirectory(path, options) : fromOnnxFile(path, options);
}
