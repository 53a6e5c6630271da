/**
 * Starting weights for a fine-tuning run (`train --init`): a released model directory, its
 * training-mode ONNX, or a λ = 1 safetensors checkpoint. The shipped models carry their training
 * weights only inside lvunet.train.onnx (with the running statistics and the paper's names), so
 * that file is as good a starting point as the run's own lvunet.safetensors.
 *
 * Only λ = 1 weights are accepted: a fine-tuning run trains at λ = 1 throughout (ramping the slope
 * again from 0 would throw away what the weights learnt), so weights from mid-ramp would train a
 * different network than the one they were trained as.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parameterSpecs } from '../model/architecture.js';
import { LAMBDA_KEYS, TRAIN_FILE } from '../model/build.js';
import { readOnnx } from '../model/onnx/read.js';
import type { SafetensorsTensor } from '../model/safetensors.js';
import { checkWeights } from '../model/weights-check.js';
import { sha256 } from '../util/files.js';
import { readWeightsCheckpoint } from './checkpoint.js';

/** Where a fine-tuning run started: recorded in state.json and in a release's manifest. */
export interface InitSource {
  /** Absolute path of the file the weights were read from. */
  readonly file: string;
  /** sha256 of that file. */
  readonly sha256: string;
  /** sha256 of the safetensors the ONNX was built from (its 'weights' metadata), when it says. */
  readonly weightsSha256?: string;
}

export interface InitWeights {
  readonly tensors: Map<string, Float32Array>;
  readonly batchesTracked: number;
  readonly source: InitSource;
}

export class InitWeightsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InitWeightsError';
  }
}

/** A model directory means its training-mode ONNX. */
function resolveInitFile(path: string): string {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new InitWeightsError(`--init ${path}: no such file or directory`);
  if (!statSync(abs).isDirectory()) return abs;
  const onnx = join(abs, TRAIN_FILE);
  if (!existsSync(onnx)) throw new InitWeightsError(`--init ${path} is a directory without ${TRAIN_FILE} (give a model directory, a training-mode ONNX or a safetensors checkpoint)`);
  return onnx;
}

function fromOnnx(file: string, bytes: Uint8Array): InitWeights {
  const model = readOnnx(bytes, file);
  const mode = model.metadata.get('mode');
  if (mode !== 'training') {
    throw new InitWeightsError(`--init ${file}: a ${mode ?? 'unlabelled'} ONNX; fine-tuning needs the training-mode model (${TRAIN_FILE}), whose blocks are not yet fused`);
  }
  const lambda = model.metadata.get('lambda');
  if (lambda === undefined || Number(lambda) !== 1) throw new InitWeightsError(`--init ${file}: λ = ${lambda ?? 'unrecorded'}; only λ = 1 weights can be fine-tuned`);
  // The model's own initializers: the spec names are the state-dict names the builder wrote.
  const tensors = new Map<string, SafetensorsTensor>();
  for (const spec of parameterSpecs()) {
    const t = model.graph.initializers.get(spec.name);
    if (t === undefined) continue; // reported as missing by checkWeights
    if (t.dataType !== 'float32') throw new InitWeightsError(`--init ${file}: ${spec.name} is ${t.dataType}; fine-tuning needs float32 weights (not an FP16 or INT8 file)`);
    const d = t.data as Float32Array;
    tensors.set(spec.name, { dtype: 'F32', shape: [...t.dims], bytes: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) });
  }
  const checked = checkWeights({ tensors }, parameterSpecs(), file);
  const weightsSha256 = model.metadata.get('weights');
  return { tensors: checked, batchesTracked: 0, source: { file, sha256: sha256(bytes), ...(weightsSha256 && /^[0-9a-f]{64}$/.test(weightsSha256) ? { weightsSha256 } : {}) } };
}

function fromSafetensors(file: string, bytes: Uint8Array): InitWeights {
  const ckpt = readWeightsCheckpoint(file);
  const key = LAMBDA_KEYS.find((k) => ckpt.metadata[k] !== undefined);
  const lambda = key === undefined ? undefined : ckpt.metadata[key];
  if (lambda === undefined || Number(lambda) !== 1) throw new InitWeightsError(`--init ${file}: λ = ${lambda ?? 'unrecorded'} in its metadata; only λ = 1 weights can be fine-tuned`);
  return { tensors: ckpt.tensors, batchesTracked: ckpt.batchesTracked, source: { file, sha256: sha256(bytes) } };
}

export function readInitWeights(path: string): InitWeights {
  const file = resolveInitFile(path);
  const bytes = readFileSync(file);
  if (file.endsWith('.onnx')) return fromOnnx(file, bytes);
  if (file.endsWith('.safetensors')) return fromSafetensors(file, bytes);
  throw new InitWeightsError(`--init ${path}: not a .onnx or .safetensors file`);
}
