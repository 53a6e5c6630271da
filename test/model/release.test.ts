import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { listPairs } from '../../src/data/dataset.js';
import { evaluate } from '../../src/eval/evaluate.js';
import type { Manifest } from '../../src/model/manifest.js';
import { FP16_FILE, INT8_FILE, releaseModel, ReleaseError } from '../../src/model/release.js';
import { sha256 } from '../../src/util/files.js';
import { KVASIR } from '../helpers/paths.js';
import { fakeRun, stems } from '../helpers/fake-run.js';
import { requireShared } from '../helpers/shared-data.js';
import { same } from '../helpers/same.js';
import type { StressReport } from '../../src/eval/stress-report.js';
import { COLOUR_SHIFTS } from '../../src/eval/stress.js';
import { spreadSample } from '../../src/model/precision/images.js';

requireShared(KVASIR);


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

t.test('a run without λ = 1 weights yet is refused with how far it got', async (t) => {
  const dir = t.testdir({ run: {}, out: {} });
  fakeRun(join(dir, 'run'), false);
  await t.rejects(releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: join(dir, 'out') }), ReleaseError);
  await t.rejects(releaseModel({ runDir: join(dir, 'run'), dataDir: KVASIR, outDir: join(dir, 'out') }), /10\/10 epochs.*--resume/);
  await t.rejects(releaseModel({ runDir: join(dir, 'out'), dataDir: KVASIR, outDir: join(dir, 'out') }), /not a training run folder: state\.json is missing/);
});
