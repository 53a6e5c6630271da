/**
 * Data-parallel training over worker_threads (`train --workers N`, N ≥ 2). The wasm backend runs
 * one thread per tfjs instance under Node (see wasm-kernels/backend.ts), so the only way to use
 * more cores is more instances: each worker holds a replica and computes the loss and gradients
 * of its contiguous shard of the batch; the main thread averages the gradients weighted by shard
 * size, applies the same JS Adam step (optimizer.ts) once to its own copy of the model, and
 * publishes the new weights.
 *
 * BatchNorm: each replica normalises with its shard's statistics, as PyTorch DDP does without
 * SyncBatchNorm, so N workers do not compute exactly what one does on the whole batch. Running
 * statistics: each replica folds its shard's statistics in (unbiased over its own shard), and the
 * main thread averages the replicas' updated running mean and variance, weighted by shard size,
 * so every replica, the main copy and the checkpoints stay identical.
 *
 * Transport: the weights go through one SharedArrayBuffer (written by the main thread, versioned
 * with an atomic counter), each replica's gradients and running statistics through its own; shard
 * images are transferred, not copied. Checkpoints and the optimizer state come from the main copy,
 * so they have the same format as a one-thread run and a run can resume with any worker count.
 */
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { Pair } from '../data/dataset.js';
import type { TfLvunet } from './model.js';
import type { Adam } from './optimizer.js';
import { flatLayout, layoutKey, shardSizes, storeWeights, type FlatLayout, type FromWorker, type ToWorker, type WorkerFault, type WorkerInit } from './parallel-shard.js';
import { sumLosses, type Evaluation } from './trainer.js';

export interface DataParallelOptions {
  readonly workers: number;
  /** Training image side; the replicas are built for it. */
  readonly size: number;
  /** Tests only: make one worker fail. */
  readonly fault?: WorkerFault;
}

/** Images of one shard, NHWC, in buffers that are transferred to (and detached from) the caller. */
export interface Shard {
  readonly x: Float32Array;
  readonly y: Float32Array;
  readonly n: number;
}

interface Pending {
  readonly id: number;
  readonly resolve: (msg: FromWorker) => void;
  readonly reject: (err: Error) => void;
}

interface Replica {
  readonly index: number;
  readonly worker: Worker;
  /** Kept: worker.threadId reads -1 once the thread has gone, which is when errors need it. */
  readonly threadId: number;
  readonly result: Float32Array;
  pending?: Pending;
  /** Set once the worker has failed or exited: later requests fail at once instead of waiting. */
  dead?: Error;
}

/**
 * The worker's entry next to this module: parallel-worker.js when compiled; under a TypeScript
 * loader (the tests) this module is .ts, and the worker inherits the loader through execArgv.
 */
function workerUrl(): URL {
  const ts = import.meta.url.endsWith('.ts');
  return new URL(ts ? './parallel-worker.ts' : './parallel-worker.js', import.meta.url);
}

export class DataParallelTrainer {
  readonly workers: number;
  private started = '';
  private readonly model: TfLvunet;
  private readonly layout: FlatLayout;
  private readonly weights: Float32Array;
  private readonly control: Int32Array;
  private readonly replicas: Replica[];
  private readonly averaged: Float32Array;
  private version = 1;
  private nextId = 1;
  /** What the replicas are doing, for errors that arrive as events rather than answers. */
  private activity = 'start-up';
  private closed = false;

  private constructor(model: TfLvunet, layout: FlatLayout, weights: Float32Array, control: Int32Array, replicas: Replica[]) {
    this.model = model;
    this.layout = layout;
    this.weights = weights;
    this.control = control;
    this.replicas = replicas;
    this.workers = replicas.length;
    this.averaged = new Float32Array(layout.resultLength);
  }

  /** Starts `o.workers` replicas holding `model`'s current weights (after a resume, the checkpoint's). */
  static async start(model: TfLvunet, o: DataParallelOptions): Promise<DataParallelTrainer> {
    if (!Number.isInteger(o.workers) || o.workers < 2) throw new RangeError(`data-parallel training needs at least 2 workers, got ${o.workers}`);
    const layout = flatLayout(model);
    const weightsSab = new SharedArrayBuffer(layout.weightsLength * 4);
    const controlSab = new SharedArrayBuffer((1 + o.workers) * 4);
    const weights = new Float32Array(weightsSab);
    const control = new Int32Array(controlSab);
    storeWeights(model, layout, weights);
    Atomics.store(control, 0, 1);
    const replicas: Replica[] = [];
    for (let index = 0; index < o.workers; index++) {
      const resultSab = new SharedArrayBuffer(layout.resultLength * 4);
      const init: WorkerInit = { index, workers: o.workers, size: o.size, layoutKey: layoutKey(layout), weights: weightsSab, result: resultSab, control: controlSab, fault: o.fault };
      const worker = new Worker(workerUrl(), { workerData: init });
      replicas.push({ index, worker, threadId: worker.threadId, result: new Float32Array(resultSab) });
    }
    const pool = new DataParallelTrainer(model, layout, weights, control, replicas);
    const details = await pool.startUp();
    pool.started = `${o.workers} data-parallel workers, each ${details[0].replace(/, thread \d+$/, '')}`;
    return pool;
  }

  /** The workers' backend, for the log. */
  get detail(): string {
    return this.started;
  }

  private startUp(): Promise<string[]> {
    return Promise.all(
      this.replicas.map((r) => {
        const ready = new Promise<FromWorker>((resolve, reject) => (r.pending = { id: 0, resolve, reject }));
        r.worker.on('message', (msg: FromWorker) => this.onMessage(r, msg));
        r.worker.on('error', (err: Error) => this.fail(r, `threw ${err.message}`, err));
        r.worker.on('exit', (code: number) => {
          if (!this.closed) this.fail(r, `exited with code ${code}`);
        });
        return ready.then((msg) => (msg.type === 'ready' ? msg.detail : ''));
      }),
    ).catch(async (e: unknown) => {
      await this.close();
      throw e;
    });
  }

  private label(r: Replica): string {
    return `training worker ${r.index + 1} of ${this.workers} (thread ${r.threadId})`;
  }

  private fail(r: Replica, what: string, cause?: Error): void {
    r.dead ??= new Error(`${this.label(r)} ${what} during ${this.activity}`, cause === undefined ? undefined : { cause });
    const p = r.pending;
    r.pending = undefined;
    p?.reject(r.dead);
  }

  private onMessage(r: Replica, msg: FromWorker): void {
    const p = r.pending;
    if (msg.type === 'failed') {
      const err = new Error(msg.message);
      if (msg.stack !== undefined) err.stack = msg.stack;
      this.fail(r, `failed: ${msg.message}`, err);
      return;
    }
    const id = msg.type === 'ready' ? 0 : msg.id;
    if (p === undefined || p.id !== id) {
      this.fail(r, `answered message ${id}, not the one awaited (${p?.id ?? 'none'})`);
      return;
    }
    r.pending = undefined;
    p.resolve(msg);
  }

  private request(r: Replica, msg: ToWorker, transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    if (r.dead !== undefined) return Promise.reject(r.dead);
    if (r.pending !== undefined) return Promise.reject(new Error(`${this.label(r)} is still busy with message ${r.pending.id}`));
    const answer = new Promise<FromWorker>((resolve, reject) => (r.pending = { id: msg.id, resolve, reject }));
    r.worker.postMessage(msg, transfer);
    return answer;
  }

  /**
   * One optimisation step on `shards` (shard k to worker k; empty shards sit the step out), named
   * `label` (e.g. "epoch 3 step 12") in any error. Returns the batch loss: the shard losses
   * weighted by shard size, which is the whole batch's loss up to BatchNorm's per-shard statistics
   * (BCE is a pixel mean and Dice an image mean, both over same-sized images).
   */
  async step(shards: readonly Shard[], lambda: number, lr: number, optimizer: Adam, label: string): Promise<number> {
    if (shards.length !== this.workers) throw new Error(`${shards.length} shards for ${this.workers} workers`);
    this.activity = label;
    const active = this.replicas.filter((r) => shards[r.index].n > 0);
    const total = active.reduce((a, r) => a + shards[r.index].n, 0);
    if (total === 0) throw new Error(`${label}: empty batch`);
    const id = this.nextId++;
    const answers = await Promise.all(
      active.map((r) => {
        const s = shards[r.index];
        const msg: ToWorker = { type: 'step', id, version: this.version, lambda, x: s.x, y: s.y, n: s.n };
        return this.request(r, msg, [s.x.buffer as ArrayBuffer, s.y.buffer as ArrayBuffer]);
      }),
    );
    let loss = 0;
    const missing = new Set<number>();
    for (let i = 0; i < active.length; i++) {
      const r = active[i];
      const a = answers[i];
      if (a.type !== 'step-done') throw new Error(`${this.label(r)} answered ${a.type} to a step`);
      // Acquire: orders the reads of its result buffer after the worker's writes.
      if (Atomics.load(this.control, 1 + r.index) !== id) throw new Error(`${this.label(r)} reported ${label} done but did not publish it`);
      loss += (shards[r.index].n / total) * a.loss;
      for (const m of a.missing) missing.add(m);
    }
    this.average(active, shards, total);

    const grads = new Map<tf.Variable, tf.Tensor>();
    this.layout.grads.forEach((s, i) => {
      if (missing.has(i)) return;
      const v = this.model.params.get(s.name)!.variable;
      grads.set(v, tf.tensor(this.averaged.subarray(s.offset, s.offset + s.length), v.shape));
    });
    try {
      optimizer.apply(grads, lr);
    } finally {
      for (const g of grads.values()) g.dispose();
    }
    for (const s of this.layout.stats) {
      const v = this.model.params.get(s.name)!.variable;
      tf.tidy(() => v.assign(tf.tensor(this.averaged.subarray(s.offset, s.offset + s.length), v.shape)));
    }
    this.model.batchesTracked++;
    this.syncReplicas();
    this.activity = `the pause after ${label}`;
    return loss;
  }

  /** Shard-size-weighted mean of the active replicas' results, accumulated in float64 and rounded once. */
  private average(active: readonly Replica[], shards: readonly Shard[], total: number): void {
    const out = this.averaged;
    if (active.length === 1) {
      out.set(active[0].result);
      return;
    }
    const w = active.map((r) => shards[r.index].n / total);
    const src = active.map((r) => r.result);
    if (src.length === 2) {
      const [a, b] = src;
      const [wa, wb] = w;
      for (let i = 0; i < out.length; i++) out[i] = wa * a[i] + wb * b[i];
      return;
    }
    for (let i = 0; i < out.length; i++) {
      let acc = 0;
      for (let k = 0; k < src.length; k++) acc += w[k] * src[k][i];
      out[i] = acc;
    }
  }

  /**
   * Writes the main copy's weights for the replicas to load before their next request; step() does
   * this itself, a caller that changes the main copy's weights otherwise must call it.
   */
  syncReplicas(): void {
    storeWeights(this.model, this.layout, this.weights);
    this.version++;
    // Release: a replica that atomically reads this version sees the writes above.
    Atomics.store(this.control, 0, this.version);
  }

  /**
   * Validation split across the replicas as consecutive runs of whole batches, so each batch is
   * the one a single-thread pass makes and the result equals it exactly.
   */
  async evaluate(pairs: readonly Pair[], batch: number, lambda: number, label: string): Promise<Evaluation> {
    this.activity = label;
    const batches = Math.ceil(pairs.length / batch);
    const id = this.nextId++;
    const jobs = this.replicas
      .map((r) => {
        const from = Math.floor((r.index * batches) / this.workers) * batch;
        const to = Math.min(pairs.length, Math.floor(((r.index + 1) * batches) / this.workers) * batch);
        return { r, slice: pairs.slice(from, to) };
      })
      .filter((j) => j.slice.length > 0);
    const answers = await Promise.all(jobs.map((j) => this.request(j.r, { type: 'eval', id, version: this.version, lambda, pairs: j.slice, batch })));
    const dice: number[] = [];
    const batchLoss: number[] = [];
    answers.forEach((a, i) => {
      if (a.type !== 'eval-done') throw new Error(`${this.label(jobs[i].r)} answered ${a.type} to an evaluation`);
      dice.push(...a.dice);
      batchLoss.push(...a.batchLoss);
    });
    return { loss: sumLosses(batchLoss) / Math.max(1, pairs.length), dice };
  }

  /** Stops every worker; pending requests fail. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.replicas) {
      r.dead ??= new Error(`${this.label(r)} was closed`);
      const p = r.pending;
      r.pending = undefined;
      p?.reject(r.dead);
    }
    await Promise.all(this.replicas.map((r) => r.worker.terminate()));
  }
}

/** Splits `samples`' images into per-worker shards (contiguous, sizes from shardSizes). */
export function makeShards(images: readonly { image: Float32Array; mask: Float32Array }[], workers: number): Shard[] {
  const sizes = shardSizes(images.length, workers);
  const shards: Shard[] = [];
  let at = 0;
  for (const n of sizes) {
    const part = images.slice(at, at + n);
    at += n;
    const per = part[0]?.image.length ?? 0;
    const perMask = part[0]?.mask.length ?? 0;
    const x = new Float32Array(per * n);
    const y = new Float32Array(perMask * n);
    part.forEach((s, i) => {
      x.set(s.image, i * per);
      y.set(s.mask, i * perMask);
    });
    shards.push({ x, y, n });
  }
  return shards;
}
