/**
 * End to end: the fused deployment model computes the training-mode model's function at λ = 1, on
 * real images, with random BatchNorm statistics (default statistics would hide a wrong fold), in
 * onnxruntime-node with graph optimisation off and fully on.
 */
import t from 'tap';
import { join } from 'node:path';
import { buildModels } from '../../src/model/export.js';
import { seededWeights } from '../../src/model/init.js';
import { readImageFile } from '../../src/image/decode.js';
import { preprocessRgb } from '../../src/image/preprocess.js';
import { listPairs } from '../../src/data/dataset.js';
import { writeOnnx } from '../../src/model/onnx/write.js';
import { maxAbs, maxAbsDiff, runModel } from '../helpers/ort.js';
import { BUSI, KVASIR } from '../helpers/paths.js';
import { requireShared } from '../helpers/shared-data.js';

requireShared(KVASIR, BUSI);

const SIZE = 256;
// gain 2 makes logits of order 1-10, so an absolute 1e-4 bound is a real test.
const models = buildModels({ height: SIZE, width: SIZE, lambda: 1 }, seededWeights({ seed: 2024, randomBatchNorm: true, gain: 2 }), {
  weights: 'seed:2024',
  lambda: 1,
});
const training = writeOnnx(models.training);
const deployment = writeOnnx(models.deployment);

const images = [...listPairs(KVASIR).slice(0, 2), ...listPairs(BUSI).slice(0, 2)].map((p) => p.image);

for (const optimization of ['disabled', 'all'] as const) {
  t.test(`deployment == training at λ = 1 on real images (graph optimisation ${optimization})`, async (t) => {
    for (const file of images) {
      const x = preprocessRgb(await readImageFile(file), { width: SIZE, height: SIZE });
      const a = await runModel(training, x, [1, 3, SIZE, SIZE], optimization);
      const b = await runModel(deployment, x, [1, 3, SIZE, SIZE], optimization);
      t.ok(maxAbs(a) > 0.5, `${join('…', file.split('/').slice(-3).join('/'))}: logits are not trivially small (max ${maxAbs(a).toFixed(3)})`);
      const d = maxAbsDiff(a, b);
      t.ok(d <= 1e-4, `max |Δ logit| ${d.toExponential(2)} ≤ 1e-4`);
    }
  });
}
