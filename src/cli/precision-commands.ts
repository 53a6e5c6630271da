import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { listPairs } from '../data/dataset.js';
import { describeFile, FP32_FILE } from '../model/build.js';
import type { Model } from '../model/ir.js';
import { MANIFEST_FILE, type Manifest, type ManifestFile, type Precision } from '../model/manifest.js';
import { readOnnx } from '../model/onnx/read.js';
import { writeOnnx } from '../model/onnx/write.js';
import type { CalibrationMethod } from '../model/precision/calibrate.js';
import { checkAgainstReference, type CheckPair, type CheckReport } from '../model/precision/check.js';
import { toFp16, type Fp16Mode } from '../model/precision/fp16.js';
import { listImages, loadCalibrationSet, spreadSample } from '../model/precision/images.js';
import { inputDims } from '../model/precision/ort.js';
import { quantizeInt8, type ActivationType } from '../model/precision/quantize.js';
import { RELEASE_INT8 } from '../model/release-gates.js';
import { writeFileAtomic } from '../util/files.js';
import { UsageError } from './errors.js';
import { MODEL_QUANTIZE_USAGE, MODEL_FP16_USAGE, MODEL_CHECK_USAGE } from './usage.js';

export const INT8_FILE = 'lvunet.int8.onnx';
export const FP16_FILE = 'lvunet.fp16.onnx';

function parseCount(flag: string, text: string, usage: string): number {
  const v = Number(text);
  if (!/^\d+$/.test(text.trim()) || v < 1) throw new UsageError(`${flag} ${JSON.stringify(text)} is not a positive integer`, usage);
  return v;
}

function oneOf<T extends string>(flag: string, text: string, allowed: readonly T[], usage: string): T {
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`, usage);
  return text as T;
}

interface Source {
  readonly file: string;
  readonly bytes: Uint8Array;
  readonly model: Model;
  readonly manifestDir?: string;
}

function readSource(path: string, usage: string): Source {
  if (!existsSync(path)) throw new UsageError(`--model ${path}: no such file or directory`, usage);
  const dir = statSync(path).isDirectory() ? path : undefined;
  const file = dir ? join(dir, FP32_FILE) : path;
  if (!existsSync(file)) throw new UsageError(`--model ${path}: the directory has no ${FP32_FILE}`, usage);
  const bytes = readFileSync(file);
  const model = readOnnx(bytes, file);
  if (model.metadata.get('mode') === 'training') {
    throw new Error(`${file}: a training-mode model; convert the fused deployment model (${FP32_FILE}) instead`);
  }
  const precision = model.metadata.get('precision');
  if (precision !== undefined && precision !== 'fp32') throw new Error(`${file}: already ${precision}; convert the float32 model`);
  return { file, bytes, model, manifestDir: dir && existsSync(join(dir, MANIFEST_FILE)) ? dir : undefined };
}

function readManifest(path: string): Manifest {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  } catch (err) {
    throw new Error(`${path}: cannot read manifest: ${(err as Error).message}`);
  }
}

/**
 * Adds `entry` to OUT's manifest (replacing one for the same file). OUT without a manifest takes
 * the source directory's, keeping only the files that OUT holds; with neither there is nothing to
 * describe the model's input, so no manifest is written and the caller says so.
 */
function updateManifest(outDir: string, source: Source, entry: ManifestFile): string | undefined {
  const outPath = join(outDir, MANIFEST_FILE);
  let base: Manifest;
  if (existsSync(outPath)) base = readManifest(outPath);
  else if (source.manifestDir) base = readManifest(join(source.manifestDir, MANIFEST_FILE));
  else return undefined;
  const files = base.files.filter((f) => f.file !== entry.file && existsSync(join(outDir, f.file)));
  writeFileAtomic(outPath, `${JSON.stringify({ ...base, files: [...files, entry] }, null, 2)}\n`);
  return outPath;
}

function describe(file: string, model: Model, bytes: Uint8Array, precision: Precision, source: Source, extra: Record<string, unknown>): ManifestFile {
  return { ...describeFile(file, model, bytes), precision, source: { file: basename(source.file), sha256: describeFile(FP32_FILE, source.model, source.bytes).sha256 }, ...extra } as ManifestFile;
}

/** `--keep-float`: absent = the release's layers, `none` = every layer quantised, else a list. */
function parseKeepFloat(value: string | undefined, usage: string): string[] {
  if (value === undefined) return [...RELEASE_INT8.keepFloat];
  if (value.trim() === 'none') return [];
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UsageError('--keep-float needs node names (or none to quantise every layer)', usage);
  return names;
}

/** Why what stayed float did, in the words a reader of the log needs to judge the file. */
function keepFloatReason(keepFloat: readonly string[]): string {
  const release = RELEASE_INT8.keepFloat;
  if (keepFloat.length === release.length && keepFloat.every((n, i) => n === release[i])) {
    return `kept float: ${keepFloat.join(', ')} (the release default: full-resolution layers whose per-channel ranges are widest; quantising them costs about 2 points of mask agreement with fp32)`;
  }
  if (keepFloat.length === 0) return 'kept float: no layer by choice (--keep-float none); the release keeps firstconv and encoder1 float to pass its 0.98 agreement gate';
  return `kept float: ${keepFloat.join(', ')} (--keep-float; the release default is ${release.join(', ')})`;
}

export async function modelQuantize(argv: string[], log: (line: string) => void): Promise<void> {
  const usage = MODEL_QUANTIZE_USAGE;
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      int8: { type: 'boolean', default: false },
      model: { type: 'string' },
      calib: { type: 'string' },
      'calib-count': { type: 'string', default: '64' },
      method: { type: 'string', default: RELEASE_INT8.method },
      percentile: { type: 'string' },
      'per-channel': { type: 'boolean', default: false },
      'reduce-range': { type: 'boolean', default: false },
      'per-tensor': { type: 'boolean', default: false },
      'full-range': { type: 'boolean', default: false },
      activations: { type: 'string', default: 'uint8' },
      'keep-float': { type: 'string' },
      threads: { type: 'string', default: '2' },
      out: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, usage);
  if (!values.int8) throw new UsageError('--int8 is required (the only quantisation offered)', usage);
  if (!values.model) throw new UsageError('--model DIR|FILE is required', usage);
  if (!values.calib) throw new UsageError('--calib DIR is required', usage);
  if (!values.out) throw new UsageError('--out DIR is required', usage);
  const method = oneOf<CalibrationMethod>('--method', values.method, ['minmax', 'percentile', 'entropy'], usage);
  const activationType = oneOf<ActivationType>('--activations', values.activations, ['uint8', 'int8'], usage);
  const count = parseCount('--calib-count', values['calib-count'], usage);
  const threads = parseCount('--threads', values.threads, usage);
  let percentile: number | undefined;
  if (values.percentile !== undefined) {
    if (method !== 'percentile') throw new UsageError(`--percentile applies to --method percentile, not ${method}`, usage);
    percentile = Number(values.percentile);
    if (!(percentile > 0 && percentile <= 100)) throw new UsageError(`--percentile ${values.percentile} is not in (0, 100]`, usage);
  } else if (method === 'percentile') {
    percentile = RELEASE_INT8.percentile;
  }
  const keepFloat = parseKeepFloat(values['keep-float'], usage);
  if (values['per-tensor'] && values['per-channel']) throw new UsageError('give --per-tensor or --per-channel, not both', usage);
  if (values['full-range'] && values['reduce-range']) throw new UsageError('give --full-range or --reduce-range, not both', usage);
  const perChannel = !values['per-tensor'];
  const reduceRange = !values['full-range'];

  const source = readSource(values.model, usage);
  const [, , height, width] = inputDims(source.model, source.file);
  const calib = await loadCalibrationSet(values.calib, count, { width, height }, log);
  log(`quantizing ${source.file}: ${method} ranges from ${calib.inputs.length} images, ${perChannel ? 'per-channel' : 'per-tensor'} ${reduceRange ? '7-bit' : 's8'} weights, ${activationType} activations`);
  const result = await quantizeInt8(source.model, calib.inputs, { method, percentile, perChannel, reduceRange, keepFloat, activationType, threads, log });
  const r = result.report;
  log(`quantized ${r.quantizedNodes.length} nodes (${r.absorbedRelus.length} Relus absorbed), ${r.floatNodes.length} stay float: ${r.floatNodes.join(', ')}`);
  log(keepFloatReason(keepFloat));
  if (r.widenedWeightScales > 0) log(`${r.widenedWeightScales} weight scales widened so that their channel's int32 bias fits (near-zero weights, non-zero bias)`);
  if (r.clampedBiases > 0) log(`warning: ${r.clampedBiases} bias values exceeded int32 at scale s_x·s_w and were clamped`);
  const bytes = writeOnnx(result.model);
  const outFile = join(values.out, INT8_FILE);
  writeFileAtomic(outFile, bytes);
  const entry = describe(INT8_FILE, result.model, bytes, 'int8', source, {
    quantization: {
      format: 'QDQ',
      weights: `${reduceRange ? '7-bit' : 'int8'} symmetric ${perChannel ? 'per-channel (axis 0)' : 'per-tensor'}`,
      activations: `${activationType} asymmetric`,
      bias: 'int32 (scale s_x·s_w)',
      keepFloat,
      floatNodes: r.floatNodes,
    },
    calibration: { dir: calib.dir, count: calib.stems.length, stems: calib.stems, method, ...(percentile !== undefined ? { percentile } : {}) },
  });
  log(`wrote ${outFile} (${(bytes.length / 1e6).toFixed(2)} MB, ${(bytes.length / source.bytes.length).toFixed(3)} × float32)`);
  const manifest = updateManifest(values.out, source, entry);
  log(manifest ? `updated ${manifest}` : `no manifest.json in ${values.out} or beside the source model; none written`);
}

export function modelFp16(argv: string[], log: (line: string) => void): void {
  const usage = MODEL_FP16_USAGE;
  const { values, positionals } = parseArgs({
    args: argv,
    options: { model: { type: 'string' }, mode: { type: 'string', default: 'weights' }, out: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, usage);
  if (!values.model) throw new UsageError('--model DIR|FILE is required', usage);
  if (!values.out) throw new UsageError('--out DIR is required', usage);
  const mode = oneOf<Fp16Mode>('--mode', values.mode, ['weights', 'full'], usage);
  const source = readSource(values.model, usage);
  const model = toFp16(source.model, mode);
  const bytes = writeOnnx(model);
  const outFile = join(values.out, FP16_FILE);
  writeFileAtomic(outFile, bytes);
  log(`wrote ${outFile} (${(bytes.length / 1e6).toFixed(2)} MB, ${(bytes.length / source.bytes.length).toFixed(3)} × float32, ${mode})`);
  const manifest = updateManifest(values.out, source, describe(FP16_FILE, model, bytes, 'fp16', source, { fp16: { mode, io: 'float32' } }));
  log(manifest ? `updated ${manifest}` : `no manifest.json in ${values.out} or beside the source model; none written`);
}

function checkPairs(dir: string, limit: number | undefined): CheckPair[] {
  const root = resolve(dir);
  const pairs: CheckPair[] = existsSync(join(root, 'masks'))
    ? listPairs(root)
    : listImages(root).map((image) => ({ stem: basename(image).replace(/\.[^.]+$/, ''), image }));
  return limit === undefined ? pairs : spreadSample(pairs, limit);
}

export function formatCheck(r: CheckReport): string {
  const f = (v: number): string => v.toPrecision(4);
  const lines = [
    `images                 ${r.images}`,
    `logit |error|          max ${f(r.logitMaxAbsError)}, mean ${f(r.logitMeanAbsError)}`,
    `mask Dice agreement    mean ${f(r.maskDiceAgreement.mean)}, min ${f(r.maskDiceAgreement.min)} (logit > 0)`,
  ];
  if (r.diceVsTruth) {
    lines.push(`Dice vs ground truth   model ${f(r.diceVsTruth.model.mean)}, reference ${f(r.diceVsTruth.reference.mean)} (${r.diceVsTruth.images} images)`);
  }
  return lines.join('\n');
}

export async function modelCheck(argv: string[], print: (text: string) => void, log: (line: string) => void): Promise<void> {
  const usage = MODEL_CHECK_USAGE;
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      reference: { type: 'string' },
      data: { type: 'string' },
      limit: { type: 'string' },
      threads: { type: 'string', default: '2' },
      json: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, usage);
  for (const flag of ['model', 'reference', 'data'] as const) if (!values[flag]) throw new UsageError(`--${flag} is required`, usage);
  const limit = values.limit === undefined ? undefined : parseCount('--limit', values.limit, usage);
  const threads = parseCount('--threads', values.threads, usage);
  const pairs = checkPairs(values.data!, limit);
  // Parse both here so that a bad file is named by its path rather than as 'model'/'reference'.
  const [model, reference] = [values.model!, values.reference!].map((path) => {
    const bytes = readFileSync(path);
    readOnnx(bytes, path);
    return bytes;
  });
  const report = await checkAgainstReference(model, reference, pairs, { threads, log });
  print(values.json ? JSON.stringify({ model: values.model, reference: values.reference, data: resolve(values.data!), ...report }, null, 2) : formatCheck(report));
}
