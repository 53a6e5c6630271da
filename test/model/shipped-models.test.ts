// Every model directory shipped in models/: its manifest is valid, every file it lists is there with
// the sha256 it states, no model file sits there unlisted (a precision that failed its gate must not
// be left beside a manifest that rejects it), and the test-split figures it claims are those of its
// own fp32 file on its own split (re-evaluated on a spread of the test images; the whole split runs in
// the soak tier, test/soak/shipped-models-eval.test.ts).
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { readSplitFile, listPairs, selectPairs } from '../../src/data/dataset.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { spreadSample } from '../../src/model/precision/images.js';
import { manifest as manifestValidator, type Manifest } from '../../src/schemas/manifest.js';
import { sha256 } from '../../src/util/files.js';
import { DATASETS, REPO_ROOT } from '../helpers/paths.js';

const MODELS = join(REPO_ROOT, 'models');
const dirs = readdirSync(MODELS, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);

t.ok(dirs.includes('lvunet-kvasir') && dirs.includes('lvunet-busi'), `both shipped models are here (${dirs.join(', ')})`);

for (const name of dirs) {
  t.test(name, async (t) => {
    const dir = join(MODELS, name);
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    t.same(manifestValidator.errors(m), [], 'manifest.json is valid');
    for (const f of m.files) {
      t.ok(existsSync(join(dir, f.file)), `${f.file} is there`);
      t.equal(sha256(readFileSync(join(dir, f.file))), f.sha256, `${f.file}: sha256 as stated`);
    }
    const listed = new Set(m.files.map((f) => f.file));
    t.same(readdirSync(dir).filter((f) => f.endsWith('.onnx') && !listed.has(f)), [], 'no unlisted model file');
    for (const r of m.rejected ?? []) t.notOk(existsSync(join(dir, String(r.file))), `rejected ${String(r.file)} is not shipped`);

    const data = (m.training as { data?: { name?: string } } | undefined)?.data?.name;
    const datasetDir = data === undefined ? undefined : join(DATASETS, data);
    const missing = datasetDir === undefined || !existsSync(join(datasetDir, 'images')) ? `dataset ${data ?? '(none named)'} not found under ${DATASETS}` : false;
    t.test('the claimed test Dice is this fp32 file\'s', { skip: missing }, async (t) => {
      const test = selectPairs(listPairs(datasetDir as string), readSplitFile(join(dir, 'split.json')).test);
      const evaluation = m.evaluation as { images: number; native: { perImage: { dice: { mean: number } } } };
      t.equal(test.length, evaluation.images, 'the manifest was evaluated on the whole test split');
      // 16 spread images: their mean Dice lies within a wide band of the claim (its own std is 0.2-0.3).
      const again = await evaluate(join(dir, 'lvunet.fp32.onnx'), spreadSample(test, 16), { threads: 1 });
      const claimed = evaluation.native.perImage.dice.mean;
      const got = again.summary.native.perImage.dice.mean;
      t.ok(Math.abs(got - claimed) < 0.15, `16 test images: Dice ${got.toFixed(4)} against the claimed ${claimed.toFixed(4)} over ${evaluation.images}`);
    });
  });
}
