/**
 * The training loop: deterministic split, seeded augmentation and batch order (derived from the
 * seed and the epoch, so a resumed run draws what the uninterrupted one would have), deep-training
 * λ and cosine LR from schedule.ts, a checkpoint each epoch and a CSV log. With `workers` ≥ 2 the
 * steps and validation run data-parallel (parallel.ts); batches are still drawn and augmented
 * here, in the same order, so the data a run sees depends on the seed alone.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { DEFAULT_FRACTIONS, listPairs, readSplitFile, selectPairs, splitPairs, writeSplitFile, type Pair, type SplitFile } from '../data/dataset.js';
import { detectModality } from '../data/modality.js';
import { mulberry32, shuffleInPlace } from '../data/random.js';
import { SIZE_MULTIPLE } from '../model/architecture.js';
import { seededWeights } from '../model/init.js';
import { writeFileAtomic } from '../util/files.js';
import { initTrainBackend } from './backend.js';
import { readOptimizerCheckpoint, readWeightsCheckpoint, serializeOptimizer, serializeWeights } from './checkpoint.js';
import { readInitWeights, type InitSource, type InitWeights } from './init-weights.js';
import { augment, describeAugmentation, SampleCache, stackBatch, type AugmentProfile, type Sample } from './data.js';
import { diceScores, segmentationLoss } from './loss.js';
import { TfLvunet } from './model.js';
import { Adam } from './optimizer.js';
import { DataParallelTrainer, makeShards } from './parallel.js';
import type { WorkerFault } from './parallel-shard.js';
import { plotCurves } from './plot.js';
import { DEFAULT_LR, lambdaAt, lrAt } from './schedule.js';

export interface TrainOptions {
  readonly data: string;
  readonly out: string;
  readonly epochs: number;
  readonly batch: number;
  readonly size: number;
  readonly seed: number;
  /** An existing split file; otherwise one is made (64/16/20 by `seed`) and saved as out/split.json. */
  readonly split?: string;
  readonly resume: boolean;
  /** Use at most this many train and val images (smoke runs). */
  readonly limit?: number;
  readonly lr?: number;
  readonly weightDecay?: number;
  /** Force the wasm backend even when tfjs-node is installed. */
  readonly wasm?: boolean;
  /** Stop after this many epochs of this invocation (training in chunks; --resume continues). */
  readonly stopAfter?: number;
  /** Seconds between progress lines within an epoch (default 10). */
  readonly progressEvery?: number;
  /**
   * Data-parallel worker threads (parallel.ts). 1, the default, trains in this thread exactly as
   * before workers existed, so a run resumed with default options continues bit for bit; N ≥ 2
   * splits each batch into N shards with BatchNorm statistics per shard, implies the wasm backend,
   * and gives slightly different numbers than 1 (also when resuming a run with another N).
   */
  readonly workers?: number;
  /**
   * Augmentation profile (data.ts). Unset: a resumed run keeps its own (runs from before profiles
   * existed are 'basic'), a new run takes 'ultrasound' for greyscale data and 'field' otherwise. Set,
   * it must match a resumed run's.
   */
  readonly augment?: AugmentProfile;
  /**
   * Fine-tune instead of training from scratch: a model directory, its training-mode ONNX or a
   * λ = 1 safetensors checkpoint (init-weights.ts). λ stays 1 for every epoch, Adam starts fresh,
   * and the learning rate runs its cosine from `lr` (default FINE_TUNE_LR). A split.json beside the
   * starting weights is used unless `split` is given, so their test images stay unseen.
   */
  readonly init?: string;
  /** Tests only: make a worker fail (see WorkerFault). */
  readonly workerFault?: WorkerFault;
}

export const FINAL_WEIGHTS = 'lvunet.safetensors';
export const LAST_WEIGHTS = 'last.safetensors';
export const LAST_OPTIMIZER = 'last.optim.safetensors';
export const STATE_FILE = 'state.json';
export const SPLIT_FILE = 'split.json';
export const LOG_FILE = 'log.csv';
export const PLOT_FILE = 'curves.svg';
const CSV_HEADER = 'epoch,lambda,lr,train_loss,val_loss,val_dice,val_dice_std,images_per_s,seconds\n';

/** state.json: what a resumed run must agree with, and where the previous one stopped (also read by `model release`). */
export interface RunState {
  readonly epochs: number;
  readonly batch: number;
  readonly size: number;
  readonly seed: number;
  readonly epochsDone: number;
  readonly bestDice: number;
  readonly bestEpoch: number;
  /** Absent in runs written before augmentation profiles: those are 'basic'. */
  readonly augment?: AugmentProfile;
  /** Peak learning rate; absent in runs written before 2026-12-04 (their log.csv's first epoch has it). */
  readonly lr?: number;
  /** The weights a fine-tuning run started from; absent for runs from scratch. */
  readonly init?: InitSource;
}

/** Fine-tuning's default peak learning rate: a third of a fresh run's, so a trained model is adjusted, not retrained. */
export const FINE_TUNE_LR = 3e-4;

export interface EpochRecord {
  readonly epoch: number;
  readonly lambda: number;
  readonly lr: number;
  readonly trainLoss: number;
  readonly valLoss: number;
  readonly valDice: number;
  readonly valDiceStd: number;
  readonly imagesPerSecond: number;
  readonly seconds: number;
}

export interface TrainResult {
  readonly records: EpochRecord[];
  readonly finalWeights: string;
  readonly bestEpoch: number;
  readonly bestDice: number;
  readonly backend: string;
}

export function checkTrainOptions(o: TrainOptions): void {
  const positive = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`--${name} must be a positive integer, got ${v}`);
  };
  positive('epochs', o.epochs);
  positive('batch', o.batch);
  positive('size', o.size);
  if (o.limit !== undefined) positive('limit', o.limit);
  if (o.workers !== undefined) {
    positive('workers', o.workers);
    if (o.workers > o.batch) throw new RangeError(`--workers ${o.workers} is more than --batch ${o.batch}: every worker needs at least one image of each batch`);
  }
  if (!Number.isInteger(o.seed)) throw new RangeError(`--seed must be an integer, got ${o.seed}`);
  if (o.size % SIZE_MULTIPLE !== 0) throw new RangeError(`--size ${o.size} is not a multiple of ${SIZE_MULTIPLE}`);
}

function sameSplit(a: SplitFile, b: SplitFile): boolean {
  const key = (x: SplitFile): string => JSON.stringify([[...x.train].sort(), [...x.val].sort(), [...x.test].sort()]);
  return key(a) === key(b);
}

/**
 * The run's split: a resumed run's own; else --split; else, fine-tuning on the data the starting
 * weights were trained on, their split (from split.json beside them), so their test images stay
 * unseen; else a fresh one by the seed. Starting weights from other data (none of their split's
 * images is here) get a fresh split; a split that names only some of this data's images is refused.
 */
function resolveSplit(o: TrainOptions, pairs: readonly Pair[], init: InitWeights | undefined, log: (line: string) => void): SplitFile {
  const saved = join(o.out, SPLIT_FILE);
  if (o.split === undefined && o.resume && existsSync(saved)) return readSplitFile(saved);
  const startPath = init === undefined ? undefined : join(dirname(init.source.file), SPLIT_FILE);
  const start = startPath !== undefined && existsSync(startPath) ? readSplitFile(startPath) : undefined;
  let sameData = false;
  if (start !== undefined) {
    const here = new Set(pairs.map((p) => p.stem));
    const named = [...start.train, ...start.val, ...start.test];
    const present = named.filter((stem) => here.has(stem)).length;
    if (present > 0 && present < named.length) {
      throw new Error(`--init: ${startPath}, the split the starting weights were trained on, names ${named.length - present} images that are not in ${o.data} and ${present} that are; give this data's split with --split FILE`);
    }
    sameData = present > 0;
  }
  let split: SplitFile;
  if (o.split !== undefined) {
    split = readSplitFile(o.split);
    if (sameData && !sameSplit(split, start!)) {
      log(`warning: --split ${o.split} differs from ${startPath}, the split the starting weights were trained on: their training images may be in this run's val or test split`);
    }
  } else if (sameData) {
    split = start!;
    log(`split: ${startPath}, the one the starting weights were trained on (its test images stay unseen)`);
  } else {
    split = splitPairs(pairs, DEFAULT_FRACTIONS, o.seed);
    if (start !== undefined) log(`split: a fresh one by --seed ${o.seed}; the starting weights were trained on other data (none of the images in ${startPath} is in ${o.data})`);
    else if (init !== undefined) {
      log(`warning: no ${SPLIT_FILE} beside ${init.source.file}, so a fresh split by --seed ${o.seed}: if the starting weights were trained on this data, give their split with --split, or their training images may be in this run's val or test split`);
    }
  }
  writeSplitFile(saved, split);
  return split;
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

function meanStd(v: readonly number[]): { mean: number; std: number } {
  const mean = v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, v.length));
  return { mean, std };
}

/** The learning rate of a run's first logged epoch, if its log has one. */
function firstLoggedLr(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const first = readLog(path).find((r) => r.epoch === 1);
  return first !== undefined && Number.isFinite(first.lr) ? first.lr : undefined;
}

/** The epochs of a run's log.csv (all of them, across resumes). */
export function readLog(path: string): EpochRecord[] {
  const lines = readFileSync(path, 'utf8').trim().split('\n').slice(1);
  return lines
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [epoch, lambda, lr, trainLoss, valLoss, valDice, valDiceStd, imagesPerSecond, seconds] = l.split(',').map(Number);
      return { epoch, lambda, lr, trainLoss, valLoss, valDice, valDiceStd, imagesPerSecond, seconds };
    });
}

/** One optimisation step; returns the batch loss. */
export function trainStep(model: TfLvunet, optimizer: Adam, x: tf.Tensor4D, y: tf.Tensor4D, lr: number): number {
  const vars = model.trainableVariables();
  let result: { value: tf.Scalar; grads: tf.NamedTensorMap } | undefined;
  try {
    result = tf.variableGrads(() => segmentationLoss(model.forward(x, true), y), vars);
  } catch (e) {
    model.discardBatchStats();
    throw e;
  }
  const grads = new Map<tf.Variable, tf.Tensor>();
  for (const v of vars) {
    const g = result.grads[v.name];
    if (g !== undefined) grads.set(v, g);
  }
  optimizer.apply(grads, lr);
  model.commitBatchStats();
  const loss = result.value.dataSync()[0];
  result.value.dispose();
  for (const g of grads.values()) g.dispose();
  return loss;
}

export interface Evaluation {
  readonly loss: number;
  readonly dice: number[];
}

export async function evaluate(model: TfLvunet, pairs: readonly Pair[], cache: SampleCache, batch: number, size: number): Promise<Evaluation> {
  const parts = await evaluateParts(model, pairs, cache, batch, size);
  return { loss: sumLosses(parts.batchLoss) / Math.max(1, pairs.length), dice: parts.dice };
}

/** Summed in batch order, so a validation split across workers adds up exactly as one pass does. */
export function sumLosses(batchLoss: readonly number[]): number {
  let lossSum = 0;
  for (const l of batchLoss) lossSum += l;
  return lossSum;
}

export interface EvaluationParts {
  readonly dice: number[];
  /** Each batch's mean loss times its size, in order. */
  readonly batchLoss: number[];
}

/** `evaluate` before the loss is summed: batches of `batch` from the start of `pairs`. */
export async function evaluateParts(model: TfLvunet, pairs: readonly Pair[], cache: SampleCache, batch: number, size: number): Promise<EvaluationParts> {
  const dice: number[] = [];
  const batchLoss: number[] = [];
  for (let i = 0; i < pairs.length; i += batch) {
    const samples = await Promise.all(pairs.slice(i, i + batch).map((p) => cache.get(p)));
    const { x, y } = stackBatch(samples);
    const n = samples.length;
    const [logits, loss] = tf.tidy(() => {
      const yt = tf.tensor4d(y, [n, size, size, 1]);
      const z = model.forward(tf.tensor4d(x, [n, size, size, 3]), false);
      return [z, segmentationLoss(z, yt)] as const;
    });
    dice.push(...diceScores(logits.dataSync() as Float32Array, y, n));
    batchLoss.push(loss.dataSync()[0] * n);
    logits.dispose();
    loss.dispose();
  }
  return { dice, batchLoss };
}

/** A new run's profile when --augment is not given: the field profile for the data's modality. */
async function defaultAugment(pairs: readonly Pair[], log: (line: string) => void): Promise<AugmentProfile> {
  const m = await detectModality(pairs);
  const profile = m.modality === 'grey' ? 'ultrasound' : 'field';
  log(`augmentation profile ${profile}: ${m.grey} of ${m.sampled} sampled training images are greyscale (--augment to choose)`);
  return profile;
}

export async function train(o: TrainOptions, log: (line: string) => void = console.log): Promise<TrainResult> {
  checkTrainOptions(o);
  mkdirSync(o.out, { recursive: true });
  const workers = o.workers ?? 1;
  // tfjs-node already runs every op multi-threaded; the workers exist for wasm, one thread each.
  const backend = await initTrainBackend({ preferNative: o.wasm !== true && workers === 1 });
  if (workers === 1) log(`backend: ${backend.detail}`);

  const init: InitWeights | undefined = o.init === undefined ? undefined : readInitWeights(o.init);
  const pairs = listPairs(o.data);
  const split = resolveSplit(o, pairs, init, log);
  const allTrainPairs = selectPairs(pairs, split.train);
  let trainPairs = allTrainPairs;
  let valPairs = selectPairs(pairs, split.val);
  if (o.limit !== undefined) {
    trainPairs = trainPairs.slice(0, o.limit);
    valPairs = valPairs.slice(0, o.limit);
  }
  if (trainPairs.length === 0) throw new Error(`${o.data}: the split has no training images`);
  log(`data: ${trainPairs.length} train, ${valPairs.length} val (split ${join(o.out, SPLIT_FILE)}, ${split.test.length} test held out)`);

  const statePath = join(o.out, STATE_FILE);
  const resuming = o.resume && existsSync(statePath);
  const lr = o.lr ?? (init !== undefined ? FINE_TUNE_LR : DEFAULT_LR);
  let state: RunState = {
    epochs: o.epochs,
    batch: o.batch,
    size: o.size,
    seed: o.seed,
    epochsDone: 0,
    bestDice: -1,
    bestEpoch: -1,
    augment: o.augment ?? (resuming ? 'basic' : await defaultAugment(allTrainPairs, log)),
    lr,
    ...(init !== undefined ? { init: init.source } : {}),
  };
  // ('basic' above is a placeholder: a resumed run's state, read below, replaces it with the run's own profile.)
  let prior: RunState | undefined;
  let priorLr: number | undefined;
  if (resuming) {
    prior = JSON.parse(readFileSync(statePath, 'utf8')) as RunState;
    for (const k of ['epochs', 'batch', 'size', 'seed'] as const) {
      if (prior[k] !== state[k]) throw new Error(`--resume: ${statePath} has ${k} ${prior[k]}, this run ${state[k]}`);
    }
    // Runs from before the lr was recorded: the first logged epoch's rate is the one they started with.
    priorLr = prior.lr ?? firstLoggedLr(join(o.out, LOG_FILE));
    if (o.lr !== undefined && priorLr !== undefined && o.lr !== priorLr) throw new Error(`--resume: ${statePath} was trained with --lr ${priorLr}, this run asks for ${o.lr}`);
    if (init !== undefined && init.source.sha256 !== prior.init?.sha256) {
      throw new Error(
        `--resume: ${statePath} ${prior.init ? `started from ${prior.init.file} (sha256 ${prior.init.sha256})` : 'was trained from scratch'}, ` +
          `this run asks for --init ${init.source.file} (sha256 ${init.source.sha256}); a resumed run keeps its own start, so leave --init off`,
      );
    }
  }
  // A fine-tuning run (fresh or resumed) keeps λ = 1 throughout: rampFraction 0.
  const fineTuning = prior !== undefined ? prior.init !== undefined : init !== undefined;
  const schedule = { epochs: o.epochs, lr: prior !== undefined ? priorLr ?? o.lr : lr, rampFraction: fineTuning ? 0 : undefined };
  const model = TfLvunet.create({ height: o.size, width: o.size, lambda: lambdaAt(0, schedule) }, seededWeights({ seed: o.seed, randomBatchNorm: false }));
  const optimizer = new Adam({ weightDecay: o.weightDecay ?? 1e-4 });
  let pool: DataParallelTrainer | undefined;

  try {
    if (prior !== undefined) {
      const ckpt = readWeightsCheckpoint(join(o.out, LAST_WEIGHTS));
      model.loadWeights(ckpt.tensors);
      model.batchesTracked = ckpt.batchesTracked;
      readOptimizerCheckpoint(join(o.out, LAST_OPTIMIZER), optimizer, model);
      const priorAugment = prior.augment ?? 'basic';
      if (o.augment !== undefined && o.augment !== priorAugment) {
        throw new Error(`--resume: ${statePath} was trained with --augment ${priorAugment}, this run asks for ${o.augment}`);
      }
      state = { ...prior, augment: priorAugment, ...(schedule.lr !== undefined ? { lr: schedule.lr } : {}) };
      const best = state.bestEpoch < 0 ? 'no λ = 1 epoch yet' : `best λ = 1 val Dice ${state.bestDice.toFixed(4)} at epoch ${state.bestEpoch}`;
      log(`resuming after epoch ${state.epochsDone} of ${state.epochs} (${best})`);
    } else {
      if (o.resume) log(`--resume: no ${statePath}, starting ${init ? 'the fine-tuning run' : 'from scratch'}`);
      if (init !== undefined) {
        model.loadWeights(init.tensors);
        model.batchesTracked = init.batchesTracked;
        log(`fine-tuning from ${init.source.file} (sha256 ${init.source.sha256.slice(0, 12)}…): λ = 1 for every epoch, fresh Adam, lr ${lrAt(0, schedule).toExponential(2)} cosine to ${lrAt(o.epochs - 1, schedule).toExponential(2)}`);
      }
    }
    if (workers > 1) {
      // BatchNorm over two values per channel outputs ±1 whatever they are, so no gradient crosses it.
      const deepest = Math.floor(o.batch / workers) * (o.size / SIZE_MULTIPLE) ** 2;
      if (deepest <= 2) log(`warning: a shard of ${Math.floor(o.batch / workers)} image(s) at ${o.size}x${o.size} gives the deepest BatchNorm ${deepest} value(s) per channel; use fewer workers, a larger batch or size`);
      pool = await DataParallelTrainer.start(model, { workers, size: o.size, fault: o.workerFault });
      log(`backend: ${pool.detail}; optimizer on the main thread`);
    }
    log(`augmentation: ${describeAugmentation(state.augment ?? 'basic')}`);
    const logPath = join(o.out, LOG_FILE);
    if (state.epochsDone === 0 || !existsSync(logPath)) writeFileAtomic(logPath, CSV_HEADER);

    const cache = new SampleCache(o.size);
    // Drop the last partial batch (as the paper's loader does) unless it is the only one.
    const steps = Math.max(1, Math.floor(trainPairs.length / o.batch));
    const records: EpochRecord[] = [];
    const every = (o.progressEvery ?? 10) * 1000;
    let trainSecondsTotal = 0;
    let stepsTotal = 0;
    let lastEpochPerStep: number | undefined;

    const end = Math.min(o.epochs, state.epochsDone + (o.stopAfter ?? o.epochs));
    for (let epoch = state.epochsDone; epoch < end; epoch++) {
      const lambda = lambdaAt(epoch, schedule);
      const lr = lrAt(epoch, schedule);
      model.setLambda(lambda);
      const rng = mulberry32((Math.imul(o.seed, 0x9e3779b1) ^ (epoch + 1)) >>> 0);
      const order = shuffleInPlace([...trainPairs], rng);
      const t0 = performance.now();
      let lastLine = t0;
      let lossSum = 0;
      // Batches are drawn strictly in order (one prepared ahead), so the augmentation draws from
      // `rng` are the same whether or not the next batch is prepared while workers compute.
      const prepare = async (s: number): Promise<Sample[]> => {
        const batchPairs = order.slice(s * o.batch, (s + 1) * o.batch);
        return (await Promise.all(batchPairs.map((p) => cache.get(p)))).map((sample) => augment(sample, o.size, rng, { profile: state.augment }));
      };
      let next: Promise<Sample[]> | undefined;
      for (let s = 0; s < steps; s++) {
        const samples = await (next ?? prepare(s));
        next = undefined;
        let loss: number;
        if (pool === undefined) {
          const { x, y } = stackBatch(samples);
          const n = samples.length;
          const xt = tf.tensor4d(x, [n, o.size, o.size, 3]);
          const yt = tf.tensor4d(y, [n, o.size, o.size, 1]);
          loss = trainStep(model, optimizer, xt, yt, lr);
          xt.dispose();
          yt.dispose();
        } else {
          const shards = makeShards(samples, workers);
          const stepping = pool.step(shards, lambda, lr, optimizer, `epoch ${epoch + 1} step ${s + 1}`);
          if (s + 1 < steps) {
            next = prepare(s + 1);
            // Awaited next iteration; if this step fails first, its rejection must not go unhandled.
            next.catch(() => {});
          }
          loss = await stepping;
        }
        if (!Number.isFinite(loss)) throw new Error(`epoch ${epoch + 1} step ${s + 1}: loss is ${loss}`);
        lossSum += loss;
        const now = performance.now();
        if (now - lastLine >= every || s === steps - 1) {
          lastLine = now;
          const secs = (now - t0) / 1000;
          const ips = ((s + 1) * o.batch) / secs;
          // The first epoch also decodes every image; later epochs read the cache, so once one has
          // finished its pace is the better predictor.
          const perStep = lastEpochPerStep ?? (trainSecondsTotal + secs) / (stepsTotal + s + 1);
          const remaining = (end - epoch) * steps - (s + 1);
          log(`epoch ${epoch + 1}/${o.epochs} step ${s + 1}/${steps} loss ${(lossSum / (s + 1)).toFixed(4)} λ ${lambda.toFixed(4)} lr ${lr.toExponential(2)} ${ips.toFixed(2)} img/s ETA ${formatDuration(remaining * perStep)} (train only)`);
        }
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      trainSecondsTotal += trainSeconds;
      lastEpochPerStep = trainSeconds / steps;
      stepsTotal += steps;

      let val: Evaluation = { loss: NaN, dice: [] };
      if (valPairs.length > 0) {
        val = pool === undefined ? await evaluate(model, valPairs, cache, o.batch, o.size) : await pool.evaluate(valPairs, o.batch, lambda, `epoch ${epoch + 1} validation`);
      }
      const { mean: valDice, std: valDiceStd } = meanStd(val.dice);
      const record: EpochRecord = {
        epoch: epoch + 1,
        lambda,
        lr,
        trainLoss: lossSum / steps,
        valLoss: val.loss,
        valDice,
        valDiceStd,
        imagesPerSecond: (steps * o.batch) / trainSeconds,
        seconds: (performance.now() - t0) / 1000,
      };
      records.push(record);

      const meta = { lambda: String(lambda), epoch: String(epoch + 1), seed: String(o.seed), lr: String(lr), val_dice: String(valDice), producer: 'lvunet-edge train' };
      const weights = serializeWeights(model, meta);
      writeFileAtomic(join(o.out, LAST_WEIGHTS), weights);
      writeFileAtomic(join(o.out, LAST_OPTIMIZER), serializeOptimizer(optimizer, model));
      // Only λ = 1 epochs compete for best: an earlier one could not be fused for deployment, and
      // the deployed model must be the evaluated one. Without validation images the latest wins.
      let best = '';
      if (lambda === 1 && (valPairs.length === 0 || valDice > state.bestDice || state.bestEpoch < 0)) {
        writeFileAtomic(join(o.out, FINAL_WEIGHTS), weights);
        state = { ...state, bestDice: valDice, bestEpoch: epoch + 1 };
        best = ` → best, saved ${FINAL_WEIGHTS}`;
      }
      state = { ...state, epochsDone: epoch + 1 };
      writeFileAtomic(statePath, `${JSON.stringify(state, null, 2)}\n`);
      appendFileSync(
        logPath,
        [record.epoch, lambda, lr, record.trainLoss, record.valLoss, valDice, valDiceStd, record.imagesPerSecond, record.seconds]
          .map((v) => (Number.isInteger(v) ? String(v) : v.toPrecision(6)))
          .join(',') + '\n',
      );
      writeFileAtomic(join(o.out, PLOT_FILE), plotCurves(readLog(logPath)));
      log(`epoch ${epoch + 1}/${o.epochs} done: train loss ${record.trainLoss.toFixed(4)}, val loss ${val.loss.toFixed(4)}, val Dice ${valDice.toFixed(4)} ± ${valDiceStd.toFixed(4)} (per image, n=${val.dice.length}), ${record.imagesPerSecond.toFixed(2)} img/s, ${record.seconds.toFixed(1)} s${best}`);
    }
    return { records, finalWeights: join(o.out, FINAL_WEIGHTS), bestEpoch: state.bestEpoch, bestDice: state.bestDice, backend: pool?.detail ?? backend.detail };
  } finally {
    await pool?.close();
    optimizer.dispose();
    model.dispose();
  }
}
