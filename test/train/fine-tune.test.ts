/**
 * `train --init`: fine-tuning starts from the shipped model's own weights (read out of its
 * training-mode ONNX), keeps λ = 1 for every epoch, uses the split the weights were trained on,
 * records where it started, and refuses starting points it cannot fine-tune.
 */
import t from 'tap';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSplitFile, writeSplitFile } from '../../src/data/dataset.js';
import { readOnnx } from '../../src/model/onnx/read.js';
import { writeOnnx } from '../../src/model/onnx/write.js';
import { TRAIN_FILE } from '../../src/model/build.js';
import { initTrainBackend } from '../../src/train/backend.js';
import { readWeightsCheckpoint } from '../../src/train/checkpoint.js';
import { InitWeightsError, readInitWeights } from '../../src/train/init-weights.js';
import { FINAL_WEIGHTS, FINE_TUNE_LR, LAST_WEIGHTS, readLog, LOG_FILE, SPLIT_FILE, STATE_FILE, train, type RunState } from '../../src/train/trainer.js';
import { sha256 } from '../../src/util/files.js';
import { BUSI, KVASIR, REPO_ROOT } from '../helpers/paths.js';
import { requireShared, sharedSkip } from '../helpers/shared-data.js';

requireShared(KVASIR);

const SHIPPED = join(REPO_ROOT, 'models', 'lvunet-kvasir');
const SHIPPED_ONNX = join(SHIPPED, TRAIN_FILE);

t.before(async () => {
  await initTrainBackend({ preferNative: false });
});

t.test('a model directory gives the weights inside its training-mode ONNX', async (t) => {
  const init = readInitWeights(SHIPPED);
  const model = readOnnx(readFileSync(SHIPPED_ONNX), SHIPPED_ONNX);
  t.equal(init.source.file, SHIPPED_ONNX, 'the directory means its lvunet.train.onnx');
  t.equal(init.source.sha256, sha256(readFileSync(SHIPPED_ONNX)));
  t.equal(init.source.weightsSha256, model.metadata.get('weights'), 'the safetensors the ONNX was built from is named');
  const w = model.graph.initializers.get('firstconv.0.weight')!.data as Float32Array;
  t.same(Array.from(init.tensors.get('firstconv.0.weight')!), Array.from(w), 'weights are the initializers, unchanged');
  t.ok(init.tensors.has('encoder1.0.block.0.1.running_var'), 'running statistics come too');
});

t.test('starting points that cannot be fine-tuned are refused, naming the file and why', async (t) => {
  const dir = t.testdir({ empty: {}, 'notes.txt': 'x' });
  t.throws(() => readInitWeights(join(dir, 'missing')), { name: 'InitWeightsError', message: /no such file or directory/ });
  t.throws(() => readInitWeights(join(dir, 'empty')), { message: /without lvunet\.train\.onnx/ });
  t.throws(() => readInitWeights(join(dir, 'notes.txt')), { message: /not a \.onnx or \.safetensors file/ });
  t.throws(() => readInitWeights(join(SHIPPED, 'lvunet.fp32.onnx')), { message: /a deployment ONNX; fine-tuning needs the training-mode model/ });
  t.throws(() => readInitWeights(join(SHIPPED, 'lvunet.fp32.onnx')), InitWeightsError);
  // A training-mode ONNX built with λ < 1 (mid-ramp weights).
  const shipped = readOnnx(readFileSync(SHIPPED_ONNX), SHIPPED_ONNX);
  const midRamp = join(dir, 'mid-ramp.onnx');
  writeFileSync(midRamp, writeOnnx({ ...shipped, metadata: new Map([...shipped.metadata, ['lambda', '0.5']]) }));
  t.throws(() => readInitWeights(midRamp), { message: /λ = 0\.5; only λ = 1 weights can be fine-tuned/ });
});

t.test('a fine-tuning run: shipped weights, λ = 1 throughout, the shipped split, recorded; resume checks the start', async (t) => {
  const dir = t.testdir({});
  const out = join(dir, 'ft');
  const lines: string[] = [];
  // A learning rate so small that one step leaves the convolution weights where they started.
  const base = { data: KVASIR, out, epochs: 4, batch: 2, size: 128, seed: 42, resume: false, limit: 2, wasm: true, progressEvery: 0, augment: 'basic' as const, init: SHIPPED };
  const first = await train({ ...base, lr: 1e-12, stopAfter: 1 }, (l) => lines.push(l));
  t.same(first.records.map((r) => r.lambda), [1], 'λ = 1 from the first epoch');
  t.ok(lines.some((l) => l.startsWith(`split: ${join(SHIPPED, SPLIT_FILE)}, the one the starting weights were trained on`)), 'the split choice is logged');
  t.equal(readFileSync(join(out, SPLIT_FILE), 'utf8'), readFileSync(join(SHIPPED, SPLIT_FILE), 'utf8'), "the shipped model's split, so its test images stay unseen");
  t.ok(lines.some((l) => /^fine-tuning from .*lvunet\.train\.onnx \(sha256 [0-9a-f]{12}…\): λ = 1 for every epoch, fresh Adam/.test(l)));
  const state = JSON.parse(readFileSync(join(out, STATE_FILE), 'utf8')) as RunState;
  t.same(state.init, readInitWeights(SHIPPED).source, 'state.json records the start');
  t.equal(state.lr, 1e-12);
  t.equal(first.bestEpoch, 1, 'every epoch is λ = 1, so the first can already be the best');

  const start = readInitWeights(SHIPPED).tensors.get('firstconv.0.weight')!;
  const after = readWeightsCheckpoint(join(out, LAST_WEIGHTS)).tensors.get('firstconv.0.weight')!;
  let worst = 0;
  for (let i = 0; i < start.length; i++) worst = Math.max(worst, Math.abs(start[i] - after[i]));
  t.ok(worst < 1e-6, `the run started from the shipped weights (largest change ${worst.toExponential(2)})`);

  const other = join(dir, 'other');
  mkdirSync(other);
  copyFileSync(join(first.finalWeights), join(other, FINAL_WEIGHTS));
  await t.rejects(train({ ...base, resume: true, init: join(other, FINAL_WEIGHTS) }, () => {}), /started from .*lvunet\.train\.onnx .*this run asks for --init/, 'resume refuses another start');
  await t.rejects(train({ ...base, resume: true, lr: 1e-3 }, () => {}), /trained with --lr 1e-12, this run asks for 0\.001/, 'resume refuses another lr');
  // Epoch 2 of 4 from scratch would train at λ = 0.13: a resumed fine-tuning run must stay at 1.
  const second = await train({ ...base, resume: true, init: undefined, stopAfter: 1 }, () => {});
  t.same(second.records.map((r) => [r.epoch, r.lambda, r.lr]), [[2, 1, 1e-12]], 'resumed without --init: still λ = 1; a rate below the usual floor stays put, never climbs');
  t.equal(readLog(join(out, LOG_FILE))[0].lr, 1e-12);

  // The run's own λ = 1 checkpoint is a starting point too; the default lr is the fine-tuning one.
  const again = join(dir, 'again');
  const fromCkpt: string[] = [];
  await train({ ...base, out: again, epochs: 1, init: first.finalWeights, lr: undefined }, (l) => fromCkpt.push(l));
  t.equal((JSON.parse(readFileSync(join(again, STATE_FILE), 'utf8')) as RunState).lr, FINE_TUNE_LR);
  t.ok(fromCkpt.some((l) => l.startsWith(`split: ${join(out, SPLIT_FILE)}`)), 'the split beside the checkpoint is used');

  // A checkpoint from mid-ramp (λ < 1) is refused.
  const ramp = join(dir, 'ramp');
  await train({ data: KVASIR, out: ramp, epochs: 2, batch: 2, size: 128, seed: 7, resume: false, limit: 2, wasm: true, stopAfter: 1, augment: 'basic' }, () => {});
  t.throws(() => readInitWeights(join(ramp, LAST_WEIGHTS)), { message: /λ = 0 in its metadata; only λ = 1 weights can be fine-tuned/ });
  // A run from scratch records its default lr too, so a resume cannot change it silently.
  t.equal((JSON.parse(readFileSync(join(ramp, STATE_FILE), 'utf8')) as RunState).lr, 0.001);
  await t.rejects(train({ data: KVASIR, out: ramp, epochs: 2, batch: 2, size: 128, seed: 7, resume: true, limit: 2, wasm: true, lr: 0.01 }, () => {}), /trained with --lr 0\.001, this run asks for 0\.01/);

  // A --split other than the start's is allowed, with a warning.
  const warned: string[] = [];
  const split = join(dir, 'split.json');
  writeFileSync(split, readFileSync(join(ramp, SPLIT_FILE)));
  await train({ ...base, out: join(dir, 'warned'), epochs: 1, split }, (l) => warned.push(l));
  t.ok(warned.some((l) => /^warning: --split .* differs from .*lvunet-kvasir\/split\.json/.test(l)), 'a different split is warned about');
});

t.test('the split when the start has none beside it, was trained on other data, or names only part of this data', { skip: sharedSkip(BUSI) }, async (t) => {
  const dir = t.testdir({ bare: {}, partial: {} });
  const base = { data: KVASIR, epochs: 1, batch: 2, size: 128, seed: 42, resume: false, limit: 2, wasm: true, progressEvery: 0, augment: 'basic' as const };
  copyFileSync(SHIPPED_ONNX, join(dir, 'bare', TRAIN_FILE));
  const bare: string[] = [];
  await train({ ...base, out: join(dir, 'out-bare'), init: join(dir, 'bare') }, (l) => bare.push(l));
  t.ok(bare.some((l) => /^warning: no split\.json beside .*bare\/lvunet\.train\.onnx, so a fresh split by --seed 42/.test(l)), 'a fresh split, with a warning');

  const other: string[] = [];
  await train({ ...base, data: BUSI, out: join(dir, 'out-busi'), init: SHIPPED }, (l) => other.push(l));
  t.ok(other.some((l) => /^split: a fresh one by --seed 42; the starting weights were trained on other data/.test(l)), 'other data: a fresh split');

  copyFileSync(SHIPPED_ONNX, join(dir, 'partial', TRAIN_FILE));
  const shippedSplit = readSplitFile(join(SHIPPED, SPLIT_FILE));
  writeSplitFile(join(dir, 'partial', SPLIT_FILE), { ...shippedSplit, test: [...shippedSplit.test.slice(1), 'not-in-kvasir'] });
  await t.rejects(train({ ...base, out: join(dir, 'out-partial'), init: join(dir, 'partial') }, () => {}), /names 1 images that are not in .* and 999 that are; give this data's split with --split FILE/);
});
