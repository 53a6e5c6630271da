/**
 * What the main thread and the data-parallel workers agree on: one flat float32 layout of every
 * parameter (tfjs layout, the order of `TfLvunet.params`, identical in every replica because each
 * builds the same IR), and the per-replica part of a step. Kept apart from parallel-worker.ts so
 * the tests can run a replica's computation in-process and compare with the threads bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Pair } from '../data/dataset.js';
import { segmentationLoss } from './loss.js';
import type { TfLvunet } from './model.js';

export interface ParamSlot {
  readonly name: string;
  readonly offset: number;
  readonly length: number;
}

export interface FlatLayout {
  /** Every parameter (trainable and running statistics) in the weights buffer. */
  readonly weights: readonly ParamSlot[];
  readonly weightsLength: number;
  /** A replica's result buffer: the trainable parameters' gradients, then its running statistics. */
  readonly grads: readonly ParamSlot[];
  readonly stats: readonly ParamSlot[];
  readonly resultLength: number;
}

export function flatLayout(model: TfLvunet): FlatLayout {
  const weights: ParamSlot[] = [];
  let offset = 0;
  for (const [name, p] of model.params) {
    weights.push({ name, offset, length: p.variable.size });
    offset += p.variable.size;
  }
  const weightsLength = offset;
  const grads: ParamSlot[] = [];
  const stats: ParamSlot[] = [];
  offset = 0;
  for (const [name, p] of model.params) {
    if (!p.variable.trainable) continue;
    grads.push({ name, offset, length: p.variable.size });
    offset += p.variable.size;
  }
  for (const [name, p] of model.params) {
    if (p.variable.trainable) continue;
    stats.push({ name, offset, length: p.variable.size });
    offset += p.variable.size;
  }
  return { weights, weightsLength, grads, stats, resultLength: offset };
}

/** A short fingerprint of the layout, so a worker built from other code is refused at start. */
export function layoutKey(layout: FlatLayout): string {
  return `${layout.weights.length}:${layout.weightsLength}:${layout.grads.length}:${layout.resultLength}:${layout.weights.map((s) => s.name).join(',')}`;
}

function variableOf(model: TfLvunet, name: string): tf.Variable {
  const p = model.params.get(name);
  if (p === undefined) throw new Error(`the model has no parameter ${name}`);
  return p.variable;
}

/** Copies every parameter's value into `dst` (the weights layout). */
export function storeWeights(model: TfLvunet, layout: FlatLayout, dst: Float32Array): void {
  for (const s of layout.weights) dst.set(variableOf(model, s.name).dataSync() as Float32Array, s.offset);
}

/** Overwrites every parameter from `src` (the weights layout). */
export function loadWeightsFlat(model: TfLvunet, layout: FlatLayout, src: Float32Array): void {
  for (const s of layout.weights) {
    const v = variableOf(model, s.name);
    tf.tidy(() => v.assign(tf.tensor(src.subarray(s.offset, s.offset + s.length), v.shape)));
  }
}

export interface ShardResult {
  readonly loss: number;
  /** Indices into `layout.grads` of parameters that received no gradient (left out of the step). */
  readonly missing: number[];
}

/**
 * One replica's share of a step: loss and gradients on its shard, with batch statistics of that
 * shard only (PyTorch DDP without SyncBatchNorm), folded into the replica's running statistics as
 * trainStep does. Gradients and the updated running statistics go to `out` (the result layout).
 */
export function computeShard(model: TfLvunet, layout: FlatLayout, x: tf.Tensor4D, y: tf.Tensor4D, out: Float32Array): ShardResult {
  const vars = layout.grads.map((s) => variableOf(model, s.name));
  let result: { value: tf.Scalar; grads: tf.NamedTensorMap } | undefined;
  try {
    result = tf.variableGrads(() => segmentationLoss(model.forward(x, true), y), vars);
  } catch (e) {
    model.discardBatchStats();
    throw e;
  }
  const missing: number[] = [];
  layout.grads.forEach((s, i) => {
    const g = result.grads[vars[i].name];
    if (g === undefined) {
      missing.push(i);
      out.fill(0, s.offset, s.offset + s.length);
    } else {
      out.set(g.dataSync() as Float32Array, s.offset);
    }
  });
  model.commitBatchStats();
  for (const s of layout.stats) out.set(variableOf(model, s.name).dataSync() as Float32Array, s.offset);
  const loss = result.value.dataSync()[0];
  result.value.dispose();
  for (const g of Object.values(result.grads)) g.dispose();
  return { loss, missing };
}

/** Shard sizes of a batch of `n` over `workers` replicas: contiguous, the first n mod workers one larger. */
export function shardSizes(n: number, workers: number): number[] {
  const base = Math.floor(n / workers);
  const extra = n % workers;
  return Array.from({ length: workers }, (_, k) => base + (k < extra ? 1 : 0));
}

/** Test hook: make worker `worker` (0-based) fail on its `step`-th step (1-based), in one of the ways a real one can. */
export interface WorkerFault {
  readonly worker: number;
  readonly step: number;
  /** 'throw': an exception in the step; 'uncaught': one outside any handler; 'exit': the thread exits. */
  readonly kind: 'throw' | 'uncaught' | 'exit';
}

export interface WorkerInit {
  readonly index: number;
  readonly workers: number;
  readonly size: number;
  readonly layoutKey: string;
  /** The weights layout, written by the main thread; its version is control[0]. */
  readonly weights: SharedArrayBuffer;
  /** This worker's result layout (gradients, running statistics), read by the main thread. */
  readonly result: SharedArrayBuffer;
  /** Int32: [0] the weights version, [1 + index] the last step id this worker has finished. */
  readonly control: SharedArrayBuffer;
  readonly fault?: WorkerFault;
}

export type ToWorker =
  | { readonly type: 'step'; readonly id: number; readonly version: number; readonly lambda: number; readonly x: Float32Array; readonly y: Float32Array; readonly n: number }
  | { readonly type: 'eval'; readonly id: number; readonly version: number; readonly lambda: number; readonly pairs: readonly Pair[]; readonly batch: number };

export type FromWorker =
  | { readonly type: 'ready'; readonly detail: string }
  | { readonly type: 'step-done'; readonly id: number; readonly loss: number; readonly missing: number[] }
  | { readonly type: 'eval-done'; readonly id: number; readonly dice: number[]; readonly batchLoss: number[] }
  | { readonly type: 'failed'; readonly id: number; readonly message: string; readonly stack?: string };
