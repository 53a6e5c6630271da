/**
 * A data-parallel training replica (a worker_thread started by parallel.ts): its own tfjs + wasm
 * backend and LV-UNet, loaded from the shared weights buffer whenever the main thread publishes a
 * new version; per step it writes its shard's gradients and updated running statistics to its
 * shared result buffer and answers with the loss. It never steps the optimizer: the main thread
 * does, once, so every replica holds the same weights.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { seededWeights } from '../model/init.js';
import { initTrainBackend } from './backend.js';
import { SampleCache } from './data.js';
import { TfLvunet } from './model.js';
import { computeShard, flatLayout, layoutKey, loadWeightsFlat, type FlatLayout, type FromWorker, type ToWorker, type WorkerInit } from './parallel-shard.js';
import { evaluateParts } from './trainer.js';

const init = workerData as WorkerInit;
const port = parentPort;
if (port === null) throw new Error('parallel-worker.js runs only as a worker_thread of the trainer');

const post = (msg: FromWorker): void => port.postMessage(msg);
const control = new Int32Array(init.control);
const weights = new Float32Array(init.weights);
const result = new Float32Array(init.result);

let model: TfLvunet | undefined;
let layout: FlatLayout | undefined;
let loaded = -1;
let steps = 0;
let cache: SampleCache | undefined;

function sync(version: number): TfLvunet {
  if (model === undefined || layout === undefined) throw new Error('worker used before it was ready');
  // The atomic load orders this thread's reads after the main thread's writes of that version.
  const published = Atomics.load(control, 0);
  if (published < version) throw new Error(`weights version ${version} requested, ${published} published`);
  if (loaded !== version) {
    loadWeightsFlat(model, layout, weights);
    loaded = version;
  }
  return model;
}

async function injectFault(): Promise<void> {
  const f = init.fault;
  if (f === undefined || f.worker !== init.index || f.step !== steps) return;
  const what = `injected fault (${f.kind}) in worker ${init.index + 1} at its step ${steps}`;
  if (f.kind === 'throw') throw new Error(what);
  if (f.kind === 'exit') process.exit(3);
  // Outside any handler, while the step never answers: only the worker's 'error' event tells.
  setImmediate(() => {
    throw new Error(what);
  });
  await new Promise<never>(() => {});
}

async function handle(msg: ToWorker): Promise<void> {
  if (msg.type === 'step') {
    const m = sync(msg.version);
    steps++;
    await injectFault();
    m.setLambda(msg.lambda);
    const x = tf.tensor4d(msg.x, [msg.n, init.size, init.size, 3]);
    const y = tf.tensor4d(msg.y, [msg.n, init.size, init.size, 1]);
    try {
      const r = computeShard(m, layout!, x, y, result);
      Atomics.store(control, 1 + init.index, msg.id);
      post({ type: 'step-done', id: msg.id, loss: r.loss, missing: r.missing });
    } finally {
      x.dispose();
      y.dispose();
    }
  } else {
    const m = sync(msg.version);
    m.setLambda(msg.lambda);
    cache ??= new SampleCache(init.size);
    const parts = await evaluateParts(m, msg.pairs, cache, msg.batch, init.size);
    post({ type: 'eval-done', id: msg.id, dice: parts.dice, batchLoss: parts.batchLoss });
  }
}

async function start(): Promise<void> {
  const backend = await initTrainBackend({ preferNative: false });
  model = TfLvunet.create({ height: init.size, width: init.size, lambda: 0 }, seededWeights({ seed: 0, randomBatchNorm: false }));
  layout = flatLayout(model);
  const key = layoutKey(layout);
  if (key !== init.layoutKey) throw new Error(`worker ${init.index + 1}: its model's parameter layout differs from the main thread's`);
  post({ type: 'ready', detail: `${backend.detail}, thread ${threadId}` });
}

// Messages are handled one at a time, in order: a step must not start while the previous
// message (an evaluation reading files, say) is still awaiting.
let queue = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  queue = queue.then(() =>
    handle(msg).catch((e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e));
      post({ type: 'failed', id: msg.id, message: err.message, stack: err.stack });
    }),
  );
});

start().catch((e: unknown) => {
  const err = e instanceof Error ? e : new Error(String(e));
  post({ type: 'failed', id: 0, message: err.message, stack: err.stack });
});
