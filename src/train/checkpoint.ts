/**
 * Checkpoint files. Weights are a PyTorch state_dict as safetensors (paper names, OIHW, running
 * statistics and I64 num_batches_tracked), so `model build --weights` and torch's strict
 * load_state_dict both take them; λ, epoch and seed go in the metadata. Adam's moments go in a
 * sidecar, keyed `exp_avg.<name>` / `exp_avg_sq.<name>` in PyTorch layout, with the step in the metadata.
 */
import { readFileSync } from 'node:fs';
import { readSafetensors, writeSafetensors, writeSafetensorsRaw, type RawTensor } from '../model/safetensors.js';
import { checkWeights } from '../model/weights-check.js';
import { parameterSpecs } from '../model/architecture.js';
import type { TfLvunet } from './model.js';
import type { Adam } from './optimizer.js';

export function serializeWeights(model: TfLvunet, metadata: Readonly<Record<string, string>>): Buffer {
  const raw = new Map<string, RawTensor>();
  for (const [name, t] of model.exportWeights()) {
    raw.set(name, { dtype: 'F32', shape: t.shape, bytes: littleEndianF32(t.data) });
    if (name.endsWith('.running_var')) {
      const counter = Buffer.alloc(8);
      counter.writeBigInt64LE(BigInt(model.batchesTracked));
      raw.set(name.replace(/running_var$/, 'num_batches_tracked'), { dtype: 'I64', shape: [], bytes: counter });
    }
  }
  return writeSafetensorsRaw(raw, metadata);
}

function littleEndianF32(data: Float32Array): Uint8Array {
  const bytes = new Uint8Array(data.length * 4);
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i], true);
  return bytes;
}

export interface LoadedCheckpoint {
  readonly tensors: Map<string, Float32Array>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly batchesTracked: number;
}

export function readWeightsCheckpoint(path: string): LoadedCheckpoint {
  const file = readSafetensors(readFileSync(path), path);
  const tensors = checkWeights(file, parameterSpecs(), path);
  const counter = file.tensors.get('firstconv.1.num_batches_tracked');
  let batchesTracked = 0;
  if (counter !== undefined && counter.dtype === 'I64' && counter.bytes.length === 8) {
    batchesTracked = Number(Buffer.from(counter.bytes).readBigInt64LE(0));
  }
  return { tensors, metadata: file.metadata, batchesTracked };
}

export function serializeOptimizer(optimizer: Adam, model: TfLvunet): Buffer {
  const tensors = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const [name, state] of optimizer.exportState(model)) {
    tensors.set(`exp_avg.${name}`, state.m);
    tensors.set(`exp_avg_sq.${name}`, state.v);
  }
  return writeSafetensors(tensors, { step: String(optimizer.step) });
}

export function readOptimizerCheckpoint(path: string, optimizer: Adam, model: TfLvunet): void {
  const file = readSafetensors(readFileSync(path), path);
  const step = Number(file.metadata.step);
  if (!Number.isInteger(step) || step < 0) throw new Error(`${path}: metadata 'step' is not a step count`);
  const expected = model.trainableParams().flatMap((p) => [
    { name: `exp_avg.${p.spec.name}`, shape: p.spec.shape },
    { name: `exp_avg_sq.${p.spec.name}`, shape: p.spec.shape },
  ]);
  const tensors = checkWeights(file, expected, path);
  optimizer.importState(model, step, (name) => ({ m: tensors.get(`exp_avg.${name}`)!, v: tensors.get(`exp_avg_sq.${name}`)! }));
}
