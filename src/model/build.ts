/**
 * The `model build` job: weights (a safetensors file or a seed) → training-mode ONNX, fused
 * deployment ONNX and manifest.json in one directory.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { batchDim, INPUT_NAME, OUTPUT_NAME, parameterSpecs, type BuildOptions } from './architecture.js';
import { buildModels, PRODUCER } from './export.js';
import type { WeightProvider } from './graph-builder.js';
import type { Model } from './ir.js';
import { seededWeights, weightsFromMap } from './init.js';
import { MANIFEST_FILE, MANIFEST_SCHEMA, type Manifest, type ManifestFile } from './manifest.js';
import { writeOnnx } from './onnx/write.js';
import { PREPROCESSING } from './preprocessing.js';
import { readSafetensors } from './safetensors.js';
import { countMacs, countParameters } from './stats.js';
import { checkWeights } from './weights-check.js';
import { sha256, writeFileAtomic } from '../util/files.js';

export const TRAIN_FILE = 'lvunet.train.onnx';
export const FP32_FILE = 'lvunet.fp32.onnx';
export const FP16_FILE = 'lvunet.fp16.onnx';
export const INT8_FILE = 'lvunet.int8.onnx';

/** Metadata keys a weights file may carry its deep-training slope under (ours, the paper code's). */
export const LAMBDA_KEYS = ['lambda', 'act_learn'] as const;

export class BuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildError';
  }
}

export interface LoadedWeights {
  readonly provider: WeightProvider;
  readonly lambda: number;
  readonly source: string;
  readonly sha256: string | null;
}

function parseLambda(text: string, where: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0 || v > 1) {
    throw new BuildError(`${where}: λ must be a number in [0, 1], got ${JSON.stringify(text)}`);
  }
  return v;
}

/**
 * Reads and checks a training-mode weights file. λ comes from its metadata or from `lambda`; a
 * file without it must be told, because guessing 1 would ship a fused model that is not the one
 * that was trained (the paper code's own schedule ends at 0.9948).
 */
export function loadWeightsFile(path: string, lambda?: number): LoadedWeights {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new BuildError(`cannot read weights file ${path}: ${(err as Error).message}`);
  }
  const file = readSafetensors(bytes, path);
  const tensors = checkWeights(file, parameterSpecs(), path);
  const key = LAMBDA_KEYS.find((k) => file.metadata[k] !== undefined);
  const fromFile = key ? parseLambda(file.metadata[key], `${path} metadata '${key}'`) : undefined;
  if (fromFile !== undefined && lambda !== undefined && fromFile !== lambda) {
    throw new BuildError(`${path} says λ = ${fromFile} (metadata '${key}') but --lambda ${lambda} was given; remove one`);
  }
  const resolved = lambda ?? fromFile;
  if (resolved === undefined) {
    throw new BuildError(
      `${path} does not record the deep-training slope λ (metadata 'lambda' or 'act_learn'). ` +
        'Pass --lambda 1 if training finished with λ = 1 (required for the deployment model), ' +
        'or the slope it ended with.',
    );
  }
  return { provider: weightsFromMap(tensors, path), lambda: resolved, source: basename(path), sha256: sha256(bytes) };
}

export function seededModelWeights(seed: number, lambda = 1): LoadedWeights {
  return { provider: seededWeights({ seed, randomBatchNorm: true }), lambda, source: `seed:${seed}`, sha256: null };
}

export function describeFile(file: string, model: Model, bytes: Uint8Array): ManifestFile {
  return {
    file,
    mode: model.metadata.get('mode') === 'training' ? 'training' : 'deployment',
    precision: 'fp32',
    sha256: sha256(bytes),
    bytes: bytes.length,
    opset: model.opset,
    params: countParameters(model.graph),
    macs: countMacs(model.graph),
  };
}

export interface BuildResult {
  readonly dir: string;
  readonly manifest: Manifest;
}

export function buildModelDir(
  weights: LoadedWeights,
  size: { height: number; width: number; dynamicBatch?: boolean },
  outDir: string,
  log: (line: string) => void = () => {},
): BuildResult {
  const options: BuildOptions = { ...size, lambda: weights.lambda };
  const batch = batchDim(options);
  log(`building LV-UNet ${size.width}x${size.height} from ${weights.source} (λ = ${weights.lambda})`);
  const models = buildModels(options, weights.provider, { weights: weights.sha256 ?? weights.source, lambda: weights.lambda });
  const files: ManifestFile[] = [];
  for (const [file, model] of [[TRAIN_FILE, models.training], [FP32_FILE, models.deployment]] as const) {
    const bytes = writeOnnx(model);
    writeFileAtomic(join(outDir, file), bytes);
    const described = describeFile(file, model, bytes);
    files.push(described);
    log(`wrote ${join(outDir, file)} (${described.mode}, ${described.params} params, ${(described.macs / 1e9).toFixed(4)} GMACs, ${(bytes.length / 1e6).toFixed(2)} MB)`);
  }
  const manifest: Manifest = {
    schema: MANIFEST_SCHEMA,
    name: 'lvunet',
    created: new Date().toISOString(),
    producer: `${PRODUCER.name} ${PRODUCER.version}`,
    architecture: models.deployment.metadata.get('architecture')!,
    input: { name: INPUT_NAME, shape: [batch, 3, size.height, size.width], dtype: 'float32', layout: 'NCHW', preprocessing: PREPROCESSING },
    output: {
      name: OUTPUT_NAME,
      shape: [batch, 1, size.height, size.width],
      meaning: 'foreground logit per pixel; mask = sigmoid(logit) > threshold',
      threshold: 0.5,
    },
    lambda: weights.lambda,
    weights: { source: weights.source, sha256: weights.sha256 },
    files,
  };
  writeFileAtomic(join(outDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`wrote ${join(outDir, MANIFEST_FILE)}`);
  return { dir: outDir, manifest };
}
