/**
 * Training throughput of LV-UNet: images/s of full training steps (forward, loss, backward, Adam,
 * running statistics) at batch 8, 256x256, on random data after warm-up. Prints one JSON document.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/train.js [--steps 3] [--warmup 1] [--batch 8] [--size 256] [--wasm]
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { seededWeights } from '../src/model/init.js';
import { initTrainBackend } from '../src/train/backend.js';
import { TfLvunet } from '../src/train/model.js';
import { Adam } from '../src/train/optimizer.js';
import { trainStep } from '../src/train/trainer.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    batch: { type: 'string', default: '8' },
    size: { type: 'string', default: '256' },
    wasm: { type: 'boolean', default: false },
  },
});
const steps = Number(values.steps);
const warmup = Number(values.warmup);
const batch = Number(values.batch);
const size = Number(values.size);

const backend = await initTrainBackend({ preferNative: !values.wasm });
const model = TfLvunet.create({ height: size, width: size, lambda: 0.5 }, seededWeights({ seed: 1, randomBatchNorm: false }));
const optimizer = new Adam();
const x = tf.randomNormal<tf.Rank.R4>([batch, size, size, 3], 0, 1, 'float32', 1);
const y = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([batch, size, size, 1], 0, 1, 'float32', 2), 0.7), 'float32')) as tf.Tensor4D;

const load0 = loadavg()[0];
for (let i = 0; i < warmup; i++) trainStep(model, optimizer, x, y, 1e-3);
const wall: number[] = [];
const cpu: number[] = [];
for (let i = 0; i < steps; i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  trainStep(model, optimizer, x, y, 1e-3);
  wall.push((performance.now() - t0) / 1000);
  const dc = process.cpuUsage(c0);
  cpu.push((dc.user + dc.system) / 1e6);
}
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(
  JSON.stringify(
    {
      backend: backend.detail,
      batch,
      size,
      warmupSteps: warmup,
      steps,
      stepSeconds: wall.map((s) => +s.toFixed(3)),
      medianStepSeconds: +median(wall).toFixed(3),
      imagesPerSecond: +(batch / median(wall)).toFixed(3),
      // CPU time: the wasm backend is single-threaded, so on a loaded machine this is the fairer figure.
      imagesPerCpuSecond: +(batch / median(cpu)).toFixed(3),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      loadAverage1mBefore: +load0.toFixed(2),
      loadAverage1mAfter: +loadavg()[0].toFixed(2),
      peakTensorsMB: +(tf.memory().numBytes / 1e6).toFixed(1),
    },
    null,
    2,
  ),
);
optimizer.dispose();
model.dispose();
x.dispose();
y.dispose();
