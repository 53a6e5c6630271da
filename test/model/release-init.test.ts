/**
 * `model release` of a fine-tuning run (`train --init`): the manifest names where the weights
 * started, back along a chain of runs, describes a start only while its file is unchanged (also
 * when the release replaces it), and reports the run's own learning rate.
 */
import t from 'tap';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Manifest } from '../../src/model/manifest.js';
import { releaseModel } from '../../src/model/release.js';
import { sha256 } from '../../src/util/files.js';
import { fakeRun } from '../helpers/fake-run.js';
import { KVASIR, REPO_ROOT } from '../helpers/paths.js';
import { same } from '../helpers/same.js';
import { requireShared } from '../helpers/shared-data.js';

requireShared(KVASIR);

t.test('a fine-tuned run records where it started and its own schedule', async (t) => {
  const dir = t.testdir({ run: {}, out: {}, copy: {} });
  fakeRun(join(dir, 'run'));
  const shippedDir = join(REPO_ROOT, 'models', 'lvunet-kvasir');
  const shippedOnnx = join(shippedDir, 'lvunet.train.onnx');
  const shipped = JSON.parse(readFileSync(join(shippedDir, 'manifest.json'), 'utf8')) as Manifest;
  const init = { file: shippedOnnx, sha256: sha256(readFileSync(shippedOnnx)), weightsSha256: 'a'.repeat(64) };
  const state = { epochs: 10, batch: 2, size: 256, seed: 42, epochsDone: 10, bestDice: 0.5, bestEpoch: 10, augment: 'field', lr: 0.0003, init };
  writeFileSync(join(dir, 'run', 'state.json'), JSON.stringify(state));
  const result = await releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: join(dir, 'out'), precisions: [], threads: 1, limit: 2, stress: false });
  const training = result.manifest.training as { init: unknown; schedule: Record<string, string> };
  same(t, training.init, {
    file: 'lvunet-kvasir/lvunet.train.onnx',
    sha256: init.sha256,
    weightsSha256: init.weightsSha256,
    model: { name: shipped.name, epochs: (shipped.training as { epochs: unknown }).epochs, augmentation: (shipped.training as { schedule: { augmentation: unknown } }).schedule.augmentation },
  });
  t.match(training.schedule.lambda, /^exactly 1 for every epoch \(fine-tuned/);
  t.match(training.schedule.optimizer, /lr 0\.0003 cosine/);

  // A copy whose manifest does not list it: the file is named, the manifest beside it is not credited.
  copyFileSync(shippedOnnx, join(dir, 'copy', 'lvunet.train.onnx'));
  writeFileSync(join(dir, 'copy', 'manifest.json'), JSON.stringify({ ...shipped, files: [] }));
  writeFileSync(join(dir, 'run', 'state.json'), JSON.stringify({ ...state, init: { ...init, file: join(dir, 'copy', 'lvunet.train.onnx') } }));
  const again = await releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: join(dir, 'out'), precisions: [], threads: 1, limit: 2, stress: false });
  t.equal((again.manifest.training as { init: { model: unknown } }).init.model, null);

  // A chain: this run started from another run's checkpoint, which started from the shipped model.
  const earlier = join(dir, 'earlier');
  mkdirSync(earlier);
  const ckpt = join(earlier, 'lvunet.safetensors');
  copyFileSync(join(dir, 'run', 'lvunet.safetensors'), ckpt);
  writeFileSync(join(earlier, 'state.json'), JSON.stringify({ ...state, epochs: 30, epochsDone: 30, bestEpoch: 25, bestDice: 0.84 }));
  const fromRun = { file: ckpt, sha256: sha256(readFileSync(ckpt)) };
  writeFileSync(join(dir, 'run', 'state.json'), JSON.stringify({ ...state, lr: 0.0001, init: fromRun }));
  const chained = await releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: join(dir, 'out'), precisions: [], threads: 1, limit: 2, stress: false });
  const link = (chained.manifest.training as { init: { file: string; run: { epochs: unknown; bestEpoch: number; lr: number; init: { file: string; model: { name: string } } } } }).init;
  t.equal(link.file, 'earlier/lvunet.safetensors');
  t.match(link.run, { checkpoint: { epoch: 10, valDice: null }, epochs: { planned: 30, done: 30 }, bestEpoch: 25, lr: 0.0003 });
  t.equal(link.run.init.file, 'lvunet-kvasir/lvunet.train.onnx');
  t.equal(link.run.init.model.name, shipped.name, 'recorded back to the model it began from');
  // The earlier run's checkpoint has changed since: it is named by sha256, not described.
  writeFileSync(ckpt, 'another file now');
  const changed = await releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: join(dir, 'out'), precisions: [], threads: 1, limit: 2, stress: false });
  t.equal((changed.manifest.training as { init: { run: unknown } }).init.run, null);

  // Released into the very directory the run started from (models/README's recipe): described as it was.
  const start = join(dir, 'start');
  mkdirSync(start);
  copyFileSync(shippedOnnx, join(start, 'lvunet.train.onnx'));
  copyFileSync(join(shippedDir, 'manifest.json'), join(start, 'manifest.json'));
  writeFileSync(join(dir, 'run', 'state.json'), JSON.stringify({ ...state, init: { ...init, file: join(start, 'lvunet.train.onnx') } }));
  const inPlace = await releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: start, precisions: [], threads: 1, limit: 2, stress: false });
  t.match((inPlace.manifest.training as { init: unknown }).init, { file: 'start/lvunet.train.onnx', sha256: init.sha256, model: { name: shipped.name } });
  t.not(sha256(readFileSync(join(start, 'lvunet.train.onnx'))), init.sha256, 'the start was replaced by the release');
});

t.test('a run from scratch that recorded no lr reports the one its first epoch logged', async (t) => {
  const dir = t.testdir({ run: {}, out: {} });
  fakeRun(join(dir, 'run'));
  writeFileSync(join(dir, 'run', 'log.csv'), 'epoch,lambda,lr,train_loss,val_loss,val_dice,val_dice_std,images_per_s,seconds\n1,0,0.002,0.5,0.5,0.4,0.1,3,120\n10,1,0.00001,0.4,0.45,0.5,0.1,3,120\n');
  const result = await releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: join(dir, 'out'), precisions: [], threads: 1, limit: 2, stress: false });
  const training = result.manifest.training as { init?: unknown; schedule: Record<string, string> };
  t.match(training.schedule.optimizer, /lr 0\.002 cosine/);
  t.match(training.schedule.lambda, /^1 − cos/);
  t.notOk('init' in training, 'no init for a run from scratch');
});
