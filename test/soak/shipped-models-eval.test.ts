// The test-split figures each shipped manifest claims, re-computed on the whole split from its own
// fp32 file (about 30 s for both models): what `model release` wrote is what the file does.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { listPairs, readSplitFile, selectPairs } from '../../src/data/dataset.js';
import { evaluate } from '../../src/eval/evaluate.js';
import type { Manifest } from '../../src/schemas/manifest.js';
import { DATASETS, REPO_ROOT } from '../helpers/paths.js';

const MODELS = join(REPO_ROOT, 'models');
for (const name of readdirSync(MODELS, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)) {
  const dir = join(MODELS, name);
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const data = (m.training as { data?: { name?: string } } | undefined)?.data?.name;
  const datasetDir = data === undefined ? '' : join(DATASETS, data);
  const skip = data === undefined || !existsSync(join(datasetDir, 'images')) ? `dataset ${data ?? '(none named)'} not found under ${DATASETS}` : false;
  t.test(`${name}: the manifest's test-split table is its fp32 file's`, { skip }, async (t) => {
    const test = selectPairs(listPairs(datasetDir), readSplitFile(join(dir, 'split.json')).test);
    const claimed = m.evaluation as { images: number; native: { perImage: Record<string, { mean: number }> }; model: { perImage: Record<string, { mean: number }> } };
    const r = await evaluate(join(dir, 'lvunet.fp32.onnx'), test, { threads: 2 });
    t.equal(r.images, claimed.images);
    for (const res of ['native', 'model'] as const) {
      for (const metric of ['dice', 'iou', 'precision', 'recall', 'specificity'] as const) {
        // Thread count changes float summation inside ONNX Runtime: allow a few boundary pixels.
        t.ok(Math.abs(r.summary[res].perImage[metric].mean - claimed[res].perImage[metric].mean) < 1e-3, `${res} ${metric}: ${r.summary[res].perImage[metric].mean.toFixed(5)} vs claimed ${claimed[res].perImage[metric].mean.toFixed(5)}`);
      }
    }
  });
}
