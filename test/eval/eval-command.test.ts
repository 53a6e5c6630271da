import t from 'tap';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { evalCommand, CSV_HEADER } from '../../src/cli/eval-command.js';
import { UsageError } from '../../src/cli/errors.js';
import { listPairs } from '../../src/data/dataset.js';
import { evaluate, type EvaluationReport } from '../../src/eval/evaluate.js';
import { imageMetrics } from '../../src/eval/metrics.js';
import { readImageFile, readMaskFile } from '../../src/image/decode.js';
import { composeOverlay, drawOverlay, LAYER } from '../../src/image/overlay.js';
import { buildModelDir, FP32_FILE, seededModelWeights } from '../../src/model/build.js';
import { KVASIR } from '../helpers/paths.js';
import { requireShared } from '../helpers/shared-data.js';
import { same } from '../helpers/same.js';
import type { StressReport } from '../../src/eval/stress-report.js';
import { COLOUR_SHIFTS } from '../../src/eval/stress.js';

requireShared(KVASIR);

const STEMS = listPairs(KVASIR)
  .slice(0, 3)
  .map((p) => p.stem);

/** A three-pair copy of Kvasir-SEG and a seeded 256x256 model, shared by the tests below. */
const root = t.testdir();
const data = join(root, 'data');
for (const sub of ['images', 'masks']) {
  mkdirSync(join(data, sub), { recursive: true });
  for (const f of readdirSync(join(KVASIR, sub))) {
    if (STEMS.some((s) => f.startsWith(`${s}.`))) copyFileSync(join(KVASIR, sub, f), join(data, sub, f));
  }
}
const modelDir = join(root, 'm');
mkdirSync(modelDir);
buildModelDir(seededModelWeights(1), { height: 256, width: 256 }, modelDir);
const model = join(modelDir, FP32_FILE);

async function runEval(argv: string[]): Promise<{ out: string; err: string[] }> {
  const err: string[] = [];
  let out = '';
  await evalCommand(argv, (l) => err.push(l), (s) => (out += s));
  return { out, err };
}

t.test('eval on 3 Kvasir images: report, CSV and native-size masks', async (t) => {
  const masksOut = join(root, 'pred');
  const csv = join(root, 'rows.csv');
  const overlaysOut = join(root, 'overlays');
  const { out, err } = await runEval(['--model', model, '--data', data, '--save-masks', masksOut, '--save-overlays', overlaysOut, '--csv', csv, '--json']);
  const report = JSON.parse(out) as EvaluationReport;

  t.equal(report.images, 3);
  same(t, report.threshold, { probability: 0.5, logit: 0 });
  t.equal(report.std, 'population');
  t.match(report.emptyMaskRule, /both masks are empty/);
  t.match(report.model, { width: 256, height: 256, sha256: /^[0-9a-f]{64}$/ });
  for (const res of ['model', 'native'] as const) {
    const s = report.summary[res];
    t.equal(s.resolution, res);
    t.equal(s.images, 3);
    for (const m of ['dice', 'iou', 'precision', 'recall', 'specificity'] as const) {
      t.equal(s.perImage[m].n, 3, `${res} ${m} n`);
      t.ok(s.perImage[m].mean >= 0 && s.perImage[m].mean <= 1, `${res} ${m} mean in [0, 1]`);
      t.ok(s.perImage[m].std >= 0, `${res} ${m} std`);
      t.ok(s.pooled[m] >= 0 && s.pooled[m] <= 1, `${res} ${m} pooled`);
    }
    t.equal(s.hd95.n + s.hd95.undefined, 3);
    t.match(s.empty, { truth: 0 }, 'Kvasir masks are never empty');
  }
  t.same(report.summary.model.size, { width: 256, height: 256 });
  t.equal(report.summary.native.size, null);
  same(t, report.perImage.map((r) => r.stem), STEMS);

  const lines = readFileSync(csv, 'utf8').trimEnd().split('\n');
  t.equal(lines[0], CSV_HEADER.join(','));
  t.equal(lines.length, 4, 'header and 3 rows');
  for (const [i, line] of lines.slice(1).entries()) {
    const cells = line.split(',');
    const row = report.perImage[i];
    t.equal(cells[0], row.stem);
    t.equal(Number(cells[1]), row.native.dice, 'csv dice is the native one, at full precision');
    t.equal(cells[6], row.native.hd95 === null ? '' : String(row.native.hd95));
    t.equal(Number(cells[7]), row.model.dice, 'last column is dice at model size');
  }

  same(t, readdirSync(masksOut).sort(), STEMS.map((s) => `${s}.png`).sort());
  for (const row of report.perImage) {
    const image = await readImageFile(join(data, 'images', `${row.stem}.jpg`));
    const saved = await readMaskFile(join(masksOut, `${row.stem}.png`));
    same(t, [saved.width, saved.height], [image.width, image.height], `${row.stem} mask at native size`);
    same(t, [row.width, row.height], [image.width, image.height]);
    // The saved mask is the one that was scored: rescoring it gives the same native row.
    const truth = await readMaskFile(join(data, 'masks', `${row.stem}.jpg`));
    same(t, imageMetrics(saved.data, truth.data, saved.width, saved.height), row.native, `${row.stem} rescored`);
  }
  // Overlays: the image where neither mask is, red fill inside the prediction, green on the truth's outline.
  for (const row of report.perImage) {
    const image = await readImageFile(join(data, 'images', `${row.stem}.jpg`));
    const pred = await readMaskFile(join(masksOut, `${row.stem}.png`));
    const truth = await readMaskFile(join(data, 'masks', `${row.stem}.jpg`));
    const overlay = await readImageFile(join(overlaysOut, `${row.stem}.png`));
    same(t, [overlay.width, overlay.height], [image.width, image.height], `${row.stem} overlay at native size`);
    const layer = drawOverlay({ mask: pred, truth });
    same(t, overlay.data, composeOverlay(image, layer).data, `${row.stem}: the image with the one overlay drawing over it`);
    let truthOutline = 0, untouched = 0, outside = 0;
    for (let i = 0; i < layer.data.length; i++) {
      if (layer.data[i] === LAYER.truth) {
        truthOutline++;
        same(t, [...overlay.data.subarray(i * 3, i * 3 + 3)], [40, 220, 90], 'truth outline is green');
        break;
      }
    }
    for (let i = 0; i < layer.data.length; i++) {
      if (pred.data[i] || truth.data[i]) continue;
      outside++;
      if (overlay.data[i * 3] === image.data[i * 3] && overlay.data[i * 3 + 1] === image.data[i * 3 + 1] && overlay.data[i * 3 + 2] === image.data[i * 3 + 2]) untouched++;
    }
    t.ok(truthOutline > 0, `${row.stem}: the truth is outlined`);
    t.equal(untouched, outside, `${row.stem}: every pixel outside both masks is the image's own (eval draws no boxes)`);
  }
  t.ok(err.some((l) => /wrote 3 overlays \(prediction red, truth green\)/.test(l)));
  t.ok(err.some((l) => /eval: 3\/3 /.test(l)), 'progress reaches 3/3 on stderr');
  t.ok(err.some((l) => /wrote 3 rows/.test(l)));
});

t.test('--split, --subset and --limit pick the pairs; text output names both resolutions', async (t) => {
  const split = join(root, 'split.json');
  writeFileSync(split, JSON.stringify({ seed: 1, fractions: { train: 0.34, val: 0, test: 0.66 }, train: [STEMS[0]], val: [], test: [STEMS[1], STEMS[2]] }));
  const { out, err } = await runEval(['--model', model, '--data', data, '--split', split, '--subset', 'test', '--limit', '1']);
  t.ok(err.some((l) => /2 test pairs of .*split\.json, first 1$/.test(l)), err.join('\n'));
  t.match(out, /model resolution \(model size 256x256\), 1 images:/);
  t.match(out, /native resolution \(native size\), 1 images:/);
  t.match(out, /dice +\d\.\d{4} ± \d\.\d{4} +\d\.\d{4}/);
  t.match(out, /std: population/);

  const train = await runEval(['--model', model, '--data', data, '--split', split, '--subset', 'train', '--json']);
  same(t, (JSON.parse(train.out) as EvaluationReport).perImage.map((r) => r.stem), [STEMS[0]]);
});

t.test('--stress scores the images under each shift; JSON carries the table', async (t) => {
  const { out, err } = await runEval(['--model', model, '--data', data, '--limit', '1', '--stress', '--json']);
  const report = JSON.parse(out) as EvaluationReport & { stress: StressReport };
  t.ok(err.some((l) => /stress tests, 12 shifts for colour data/.test(l)), 'Kvasir is colour data: the colour set');
  same(t, report.stress.shifts.map((s) => s.name), COLOUR_SHIFTS.map((s) => s.name));
  t.equal(report.stress.baseline.native, report.summary.native.perImage.dice.mean);
  same(t, report.stress.worstAgreement, {}, 'a single .onnx file: no converted precisions to compare');
  const text = await runEval(['--model', model, '--data', data, '--limit', '1', '--stress', '--stress-set', 'grey']);
  t.match(text.out, /stress tests \(1 images; unshifted dice \d\.\d{4}, native size\):\nshift +dice +change\n/);
  t.match(text.out, /\nspeckle-0\.3 +\d\.\d{4} +[+-]\d\.\d{4}\n/, '--stress-set grey: the grey set');
  await t.rejects(runEval(['--model', model, '--data', data, '--stress', '--stress-set', 'sepia']), UsageError);
});

t.test('usage errors', async (t) => {
  await t.rejects(runEval(['--data', data]), UsageError);
  await t.rejects(runEval(['--model', model]), UsageError);
  await t.rejects(runEval(['--model', model, '--data', data, '--subset', 'test']), UsageError);
  await t.rejects(runEval(['--model', model, '--data', data, '--limit', '0']), UsageError);
  await t.rejects(runEval(['--model', model, '--data', data, '--split', 'x.json', '--subset', 'dev']), UsageError);
});

t.test('evaluate refuses a size the model was not built for, and an empty pair list', async (t) => {
  const pairs = listPairs(data);
  await t.rejects(evaluate(model, pairs, { size: { width: 128, height: 128 } }), /fixed at 256x256/);
  await t.rejects(evaluate(model, []), /no image pairs/);
  const r = await evaluate(model, pairs.slice(0, 1), { size: { width: 256, height: 256 }, threads: 1 });
  t.equal(r.images, 1);
});
