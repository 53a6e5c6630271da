/**
 * Training on real Kvasir images at 128x128: a few steps on one batch drive the loss down; a tiny
 * end-to-end run writes the split, log, checkpoints and a λ = 1 lvunet.safetensors that `model
 * build` loads, and --resume continues where it stopped.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { listPairs, readSplitFile } from '../../src/data/dataset.js';
import { loadWeightsFile } from '../../src/model/build.js';
import { seededWeights } from '../../src/model/init.js';
import { initTrainBackend } from '../../src/train/backend.js';
import { readWeightsCheckpoint } from '../../src/train/checkpoint.js';
import { loadSample, stackBatch } from '../../src/train/data.js';
import { TfLvunet } from '../../src/train/model.js';
import { Adam } from '../../src/train/optimizer.js';
import { FINAL_WEIGHTS, LAST_WEIGHTS, LOG_FILE, PLOT_FILE, readLog, SPLIT_FILE, train, trainStep } from '../../src/train/trainer.js';
import { BUSI, KVASIR } from '../helpers/paths.js';
import { requireShared, sharedSkip } from '../helpers/shared-data.js';

requireShared(KVASIR);

const SIZE = 128;
const dir = mkdtempSync(join(tmpdir(), 'lvunet-trainer-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.before(async () => {
  await initTrainBackend({ preferNative: false });
});

t.test('a few Adam steps on 8 real images drive the loss down', async (t) => {
  const samples = await Promise.all(listPairs(KVASIR).slice(0, 8).map((p) => loadSample(p, SIZE)));
  const { x, y } = stackBatch(samples);
  const model = TfLvunet.create({ height: SIZE, width: SIZE, lambda: 0 }, seededWeights({ seed: 42, randomBatchNorm: false }));
  const optimizer = new Adam();
  t.teardown(() => {
    optimizer.dispose();
    model.dispose();
  });
  const xt = tf.tensor4d(x, [8, SIZE, SIZE, 3]);
  const yt = tf.tensor4d(y, [8, SIZE, SIZE, 1]);
  const losses: number[] = [];
  losses.push(trainStep(model, optimizer, xt, yt, 1e-3));
  const before = tf.memory().numTensors;
  for (let i = 1; i < 6; i++) losses.push(trainStep(model, optimizer, xt, yt, 1e-3));
  t.equal(tf.memory().numTensors, before, 'no tensors leak per step once Adam slots exist');
  xt.dispose();
  yt.dispose();
  t.ok(losses.every(Number.isFinite), `finite losses ${losses.map((l) => l.toFixed(4)).join(' ')}`);
  t.ok(losses[5] < losses[0] - 0.02, `loss fell from ${losses[0].toFixed(4)} to ${losses[5].toFixed(4)}`);
  t.equal(model.batchesTracked, 6);
  const rm = model.params.get('firstconv.1.running_mean')!.variable.dataSync();
  t.ok(rm.some((v) => v !== 0), 'running statistics move in training mode');
});

t.test('train(): files, λ = 1 final weights that model build loads, and --resume', async (t) => {
  const out = join(dir, 'run');
  const lines: string[] = [];
  const base = { data: KVASIR, out, epochs: 2, batch: 2, size: SIZE, seed: 42, resume: false, limit: 2, wasm: true, progressEvery: 0 };
  const first = await train({ ...base, epochs: 2 }, (l) => lines.push(l));
  t.equal(first.records.length, 2);
  t.equal(first.records[0].lambda, 0, 'λ starts at 0');
  t.equal(first.records[1].lambda, 1, 'λ is exactly 1 in the last epoch');
  t.ok(lines.some((l) => /img\/s ETA/.test(l)), 'progress lines report images/s and ETA');
  for (const f of [SPLIT_FILE, LOG_FILE, LAST_WEIGHTS, FINAL_WEIGHTS, 'last.optim.safetensors', 'state.json']) t.ok(existsSync(join(out, f)), `${f} written`);
  const split = readSplitFile(join(out, SPLIT_FILE));
  t.equal(split.train.length + split.val.length + split.test.length, listPairs(KVASIR).length);
  t.equal(split.test.length, Math.round(listPairs(KVASIR).length * 0.2), '20 % test');
  const weights = loadWeightsFile(join(out, FINAL_WEIGHTS));
  t.equal(weights.lambda, 1, 'lvunet.safetensors records λ = 1 for model build');
  t.equal(readFileSync(join(out, LOG_FILE), 'utf8').trim().split('\n').length, 3, 'CSV header + one line per epoch');
  t.same(readLog(join(out, LOG_FILE)).map((r) => r.epoch), [1, 2]);
  const svg = readFileSync(join(out, PLOT_FILE), 'utf8');
  t.match(svg, /^<svg [^>]*>[\s\S]*>epoch<[\s\S]*>validation Dice<[\s\S]*<\/svg>\n$/, 'curves.svg written, axes and legend labelled');

  const resumed = await train({ ...base, resume: true }, () => {});
  t.equal(resumed.records.length, 0, 'a finished run resumes to nothing left to do');
  await t.rejects(train({ ...base, resume: true, batch: 4 }, () => {}), /batch/, 'resume refuses changed options');

  // A new run's default augmentation is 'field', recorded, and a resume cannot switch it.
  t.ok(lines.some((l) => /^augmentation: rot90, flips, brightness\/contrast; field: zoom/.test(l)), 'the profile is logged');
  t.equal((JSON.parse(readFileSync(join(out, 'state.json'), 'utf8')) as { augment: string }).augment, 'field');
  await t.rejects(train({ ...base, resume: true, augment: 'basic' }, () => {}), /trained with --augment field, this run asks for basic/);
  // A run written before profiles existed (no 'augment' in state.json) resumes as basic.
  const state = JSON.parse(readFileSync(join(out, 'state.json'), 'utf8')) as Record<string, unknown>;
  delete state.augment;
  writeFileSync(join(out, 'state.json'), JSON.stringify(state));
  const old: string[] = [];
  await train({ ...base, resume: true }, (l) => old.push(l));
  t.ok(old.includes('augmentation: rot90, flips, brightness/contrast'), 'an old run keeps the paper augmentation');
});

t.test('greyscale data (BUSI) gets the ultrasound profile by default', { skip: sharedSkip(BUSI) }, async (t) => {
  const out = join(dir, 'busi');
  const lines: string[] = [];
  await train({ data: BUSI, out, epochs: 1, batch: 2, size: SIZE, seed: 42, resume: false, limit: 2, wasm: true, progressEvery: 0 }, (l) => lines.push(l));
  t.ok(lines.some((l) => /^augmentation profile ultrasound: \d+ of 32 sampled training images are greyscale/.test(l)), 'the choice and its reason are logged');
  t.ok(lines.some((l) => /^augmentation: rot90, flips, brightness\/contrast; ultrasound: zoom .*speckle/.test(l)), 'the profile is described');
  t.equal((JSON.parse(readFileSync(join(out, 'state.json'), 'utf8')) as { augment: string }).augment, 'ultrasound');
  const resumed: string[] = [];
  await train({ data: BUSI, out, epochs: 1, batch: 2, size: SIZE, seed: 42, resume: true, limit: 2, wasm: true, progressEvery: 0 }, (l) => resumed.push(l));
  t.notOk(resumed.some((l) => l.startsWith('augmentation profile')), 'a resumed run does not choose again');
});

t.test('an interrupted and resumed run ends with the weights of an uninterrupted one', async (t) => {
  const base = { data: KVASIR, epochs: 2, batch: 2, size: SIZE, seed: 5, resume: false, limit: 2, wasm: true };
  const whole = join(dir, 'whole');
  const parts = join(dir, 'parts');
  await train({ ...base, out: whole }, () => {});
  const first = await train({ ...base, out: parts, stopAfter: 1 }, () => {});
  t.equal(first.records.length, 1, 'stopped after one epoch');
  t.notOk(existsSync(join(parts, FINAL_WEIGHTS)), 'no λ = 1 epoch yet, so no lvunet.safetensors');
  const second = await train({ ...base, out: parts, resume: true }, () => {});
  t.same(second.records.map((r) => r.epoch), [2], 'resumed at epoch 2');
  const a = readWeightsCheckpoint(join(whole, LAST_WEIGHTS));
  const b = readWeightsCheckpoint(join(parts, LAST_WEIGHTS));
  let worst = 0;
  for (const [name, x] of a.tensors) {
    const y = b.tensors.get(name)!;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  }
  t.equal(worst, 0, 'bitwise equal weights and running statistics');
  t.equal(b.batchesTracked, a.batchesTracked, 'num_batches_tracked carried over');
  t.equal(readLog(join(parts, LOG_FILE)).length, 2, 'the log continues across the resume');
});

