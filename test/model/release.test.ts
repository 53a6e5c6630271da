import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { listPairs, writeSplitFile } from '../../src/data/dataset.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { parameterSpecs } from '../../src/model/architecture.js';
import { seededWeights } from '../../src/model/init.js';
import type { Manifest } from '../../src/model/manifest.js';
import { FP16_FILE, INT8_FILE, releaseModel, ReleaseError } from '../../src/model/release.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { sha256 } from '../../src/util/files.js';
import { KVASIR, REPO_ROOT } from '../helpers/paths.js';
import { requireShared } from '../helpers/shared-data.js';
import { same } from '../helpers/same.js';
import type { StressReport } from '../../src/eval/stress-report.js';
import { COLOUR_SHIFTS } from '../../src/eval/stress.js';
import { spreadSample } from '../../src/model/precision/images.js';

requireShared(KVASIR);

const stems = (): string[] => listPairs(KVASIR).map((p) => p.stem);

/** A training run folder as `lvunet-edge train` leaves it, with seeded weights standing in for trained ones. */
function fakeRun(dir: string, withWeights = true): void {
  const all = stems();
  writeSplitFile(join(dir, 'split.json'), {
    seed: 42,
    fractions: { train: 0.64, val: 0.16, test: 0.2 },
    train: all.slice(0, 6).sort(),
    val: all.slice(6, 8).sort(),
    test: all.slice(8, 12).sort(),
  });
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ epochs: 10, batch: 2, size: 256, seed: 42, epochsDone: 10, bestDice: 0.5, bestEpoch: 10 }));
  writeFileSync(
    join(dir, 'log.csv'),
    'epoch,lambda,lr,train_loss,val_loss,val_dice,val_dice_std,images_per_s,seconds\n10,1,0.00001,0.4,0.45,0.5,0.1,3,120\n',
  );
  if (!withWeights) return;
  const provider = seededWeights({ seed: 5, randomBatchNorm: true });
  const tensors = new Map(parameterSpecs().map((s) => [s.name, { shape: s.shape, data: provider(s) }]));
  writeFileSync(join(dir, 'lvunet.safetensors'), writeSafetensors(tensors, { lambda: '1', epoch: '10' }));
}

t.test('a run becomes a model directory with evaluation, provenance and gated precisions', async (t) => {
  const dir = t.testdir({ run: {}, out: {} });
  fakeRun(join(dir, 'run'));
  const out = join(dir, 'out');
  const result = await releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: out, precisions: ['fp16'], threads: 1, stress: false });
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest;
  t.same(manifest, JSON.parse(JSON.stringify(result.manifest)), 'the manifest on disk is the one returned');

  const files = new Map(manifest.files.map((f) => [f.file, f]));
  t.ok(files.has('lvunet.fp32.onnx') && files.has('lvunet.train.onnx') && files.has(FP16_FILE));
  for (const f of manifest.files) t.equal(f.sha256, sha256(readFileSync(join(out, f.file))), `${f.file} sha256 matches`);
  const fp16 = files.get(FP16_FILE) as unknown as { agreement: { passed: boolean; images: number; maskDiceAgreement: { mean: number } } };
  t.equal(fp16.agreement.images, 4, 'checked on the 4 test images');
  t.ok(fp16.agreement.passed && fp16.agreement.maskDiceAgreement.mean >= 0.995, 'fp16 passes its gate');

  const training = manifest.training as Record<string, Record<string, unknown>>;
  t.match(training.data.notes, /research and educational use/, 'the data terms travel with the model');
  t.equal(training.split.test, 4);
  t.equal(training.split.sha256, sha256(readFileSync(join(dir, 'run', 'split.json'))));
  t.same(training.epochs, { planned: 10, done: 10 });
  t.equal(training.trainer, 'lvunet-edge train');
  t.match(training.weights, { file: 'lvunet.safetensors', epoch: 10, selectedBy: /best validation Dice/ });
  const evaluation = manifest.evaluation as { images: number; native: { perImage: { dice: { mean: number; n: number } } } };
  t.equal(evaluation.images, 4);
  t.equal(evaluation.native.perImage.dice.n, 4);
  // The manifest carries the fp32 model's figures on exactly the run's test split: evaluated again here.
  const testStems = new Set(stems().slice(8, 12));
  const again = await evaluate(join(out, 'lvunet.fp32.onnx'), listPairs(KVASIR).filter((p) => testStems.has(p.stem)), { threads: 1 });
  t.equal(evaluation.native.perImage.dice.mean, again.summary.native.perImage.dice.mean, "the manifest's test Dice is the fp32 model's on the test split");
  t.ok(existsSync(join(out, 'split.json')), 'the split ships beside the model');

});

t.test('stress tests: recorded per shift, and a precision that holds on the test split but not under a shift is not shipped', async (t) => {
  const dir = t.testdir({ run: {}, out: {} });
  fakeRun(join(dir, 'run'));
  const out = join(dir, 'out');
  const result = await releaseModel({
    runDir: join(dir, 'run'),
    dataDir: KVASIR,
    outDir: out,
    precisions: ['fp16'],
    threads: 1,
    limit: 2,
    stressLimit: 1,
    gates: { fp16: { minMeanMaskDice: 0.5, minStressMaskDice: 1.01 }, int8: {} },
  });
  t.equal(result.outcomes[0].shipped, false);
  t.match(result.outcomes[0].reason, /under stress shift \S+ [01]\.\d{4} \(gate ≥ 1\.01\)/);
  t.notOk(existsSync(join(out, FP16_FILE)));

  // Kvasir is colour data, so the colour set; each shift's fp32 Dice is what evaluate gives on the
  // same image with that shift applied, and fp16's worst shift is recorded with its agreement.
  const manifest = result.manifest;
  const training = manifest.training as Record<string, Record<string, unknown>>;
  t.match(training.data.modality, { modality: 'colour' });
  const stress = (manifest.evaluation as { stress: StressReport }).stress;
  same(t, stress.shifts.map((s) => s.name), COLOUR_SHIFTS.map((s) => s.name));
  t.equal(stress.images, 1);
  const testStems = new Set(stems().slice(8, 12));
  const evalPairs = spreadSample(listPairs(KVASIR).filter((p) => testStems.has(p.stem)), 2);
  const blur = stress.shifts.find((s) => s.name === 'blur')!;
  const blurred = await evaluate(join(out, 'lvunet.fp32.onnx'), spreadSample(evalPairs, 1), { threads: 1, transform: COLOUR_SHIFTS.find((s) => s.name === 'blur')!.apply });
  t.equal(blur.dice.native, blurred.summary.native.perImage.dice.mean, 'the blur row is fp32 Dice on the blurred image');
  t.equal(blur.diceChange, blur.dice.native - stress.baseline.native);
  const worst = Math.min(...stress.shifts.map((s) => s.agreement.fp16.mean));
  t.same(stress.worstAgreement.fp16.mean, worst);
  t.equal(result.outcomes[0].agreement.stress?.mean, worst, 'the fp16 outcome carries its worst shift');
  t.ok(worst >= 0.995, `fp16 holds under every shift (worst ${worst})`);
});

t.test('a precision that fails its gate is not written and is listed as rejected', async (t) => {
  const dir = t.testdir({ run: {}, out: { [INT8_FILE]: 'stale file from an earlier release' } });
  fakeRun(join(dir, 'run'));
  const out = join(dir, 'out');
  const result = await releaseModel({
    runDir: join(dir, 'run'),
    dataDir: KVASIR,
    outDir: out,
    precisions: ['int8'],
    calibCount: 2,
    threads: 1,
    stress: false,
    gates: { fp16: { minMeanMaskDice: 0.995 }, int8: { minMeanMaskDice: 1.01 } },
  });
  t.equal(result.outcomes.length, 1);
  t.equal(result.outcomes[0].shipped, false);
  t.match(result.outcomes[0].reason, /mean mask Dice vs fp32 .* \(gate ≥ 1\.01\)/);
  t.notOk(existsSync(join(out, INT8_FILE)), 'no INT8 file beside a manifest that rejects it');
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest;
  t.notOk(manifest.files.some((f) => f.file === INT8_FILE));
  t.equal(manifest.rejected?.length, 1);
  const calibration = (manifest.rejected?.[0] as { agreement: { images: number } }).agreement;
  t.equal(calibration.images, 4);
  // What was made and not written is identifiable and reproducible: its sha256 and its calibration.
  const made = manifest.rejected?.[0] as { sha256: string; calibration: { split: string; stems: string[] }; quantization: { keepFloat: string[] } };
  t.match(made.sha256, /^[0-9a-f]{64}$/);
  t.equal(made.calibration.split, 'train');
  t.equal(made.calibration.stems.length, 2);
  t.same(made.quantization.keepFloat, ['firstconv', 'encoder1']);
  t.equal((manifest.evaluation as { stress: unknown }).stress, null, 'no stress tests were run, and the manifest says so');
});

t.test('weights given with --weights are not credited to the run', async (t) => {
  const dir = t.testdir({ run: {}, out: {} });
  fakeRun(join(dir, 'run'));
  const other = join(dir, 'other.safetensors');
  writeFileSync(other, readFileSync(join(dir, 'run', 'lvunet.safetensors')));
  const result = await releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: join(dir, 'out'), weights: other, precisions: [], threads: 1, limit: 2, stress: false });
  const training = result.manifest.training as Record<string, Record<string, unknown> | string>;
  t.match(training.trainer, /^unknown: weights given with --weights/);
  same(t, training.weights, { file: 'other.safetensors', sha256: sha256(readFileSync(other)), epoch: null, selectedBy: 'given with --weights' });
});

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
  t.match(link.run, { epochs: { planned: 30, done: 30 }, bestEpoch: 25, lr: 0.0003 });
  t.equal(link.run.init.file, 'lvunet-kvasir/lvunet.train.onnx');
  t.equal(link.run.init.model.name, shipped.name, 'recorded back to the model it began from');
  // The earlier run's checkpoint has changed since: it is named by sha256, not described.
  writeFileSync(ckpt, 'another file now');
  const changed = await releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: join(dir, 'out'), precisions: [], threads: 1, limit: 2, stress: false });
  t.equal((changed.manifest.training as { init: { run: unknown } }).init.run, null);
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

t.test('a run without λ = 1 weights yet is refused with how far it got', async (t) => {
  const dir = t.testdir({ run: {}, out: {} });
  fakeRun(join(dir, 'run'), false);
  await t.rejects(releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: join(dir, 'out') }), ReleaseError);
  await t.rejects(releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: join(dir, 'out') }), /10\/10 epochs.*--resume/);
  await t.rejects(releaseModel({ runDir: join(dir, 'out'), dataDir: KVASIR, outDir: join(dir, 'out') }), /not a training run folder: state\.json is missing/);
});
