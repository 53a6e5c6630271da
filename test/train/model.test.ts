/**
 * The tfjs model interpreted from the IR computes what `model build`'s ONNX models compute, on a
 * real image, with weights that went tfjs → safetensors → loadWeightsFile (the path a trained model
 * takes to deployment). Random BN statistics and gain 2 make wrong folds and layouts visible.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { listPairs } from '../../src/data/dataset.js';
import { readImageFile } from '../../src/image/decode.js';
import { preprocessRgb } from '../../src/image/preprocess.js';
import { buildTrainingGraph, parameterSpecs } from '../../src/model/architecture.js';
import { loadWeightsFile } from '../../src/model/build.js';
import { asModel, buildModels } from '../../src/model/export.js';
import { seededWeights } from '../../src/model/init.js';
import { readSafetensors } from '../../src/model/safetensors.js';
import { checkWeights } from '../../src/model/weights-check.js';
import { initTrainBackend } from '../../src/train/backend.js';
import { nchwToNhwc, TfLvunet } from '../../src/train/model.js';
import { serializeWeights } from '../../src/train/checkpoint.js';
import { maxAbs, maxAbsDiff, runModel } from '../helpers/ort.js';
import { KVASIR } from '../helpers/paths.js';
import { requireShared } from '../helpers/shared-data.js';

requireShared(KVASIR);

const SIZE = 128;
const dir = mkdtempSync(join(tmpdir(), 'lvunet-train-model-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.before(async () => {
  await initTrainBackend({ preferNative: false });
});

t.test('eval-mode tfjs logits equal the ONNX logits of model build on the same weights', async (t) => {
  const model = TfLvunet.create({ height: SIZE, width: SIZE, lambda: 1 }, seededWeights({ seed: 7, randomBatchNorm: true, gain: 2 }));
  t.teardown(() => model.dispose());
  const file = join(dir, 'w.safetensors');
  writeFileSync(file, serializeWeights(model, { lambda: '1' }));

  const loaded = loadWeightsFile(file);
  t.equal(loaded.lambda, 1, 'λ read from the metadata');
  const models = buildModels({ height: SIZE, width: SIZE, lambda: loaded.lambda }, loaded.provider, { weights: 'test', lambda: 1 });

  const image = listPairs(KVASIR)[0].image;
  const x = preprocessRgb(await readImageFile(image), { width: SIZE, height: SIZE });
  const logits = tf.tidy(() => model.forward(tf.tensor4d(nchwToNhwc(x, 1, 3, SIZE, SIZE), [1, SIZE, SIZE, 3]), false));
  const ours = logits.dataSync() as Float32Array;
  logits.dispose();
  t.ok(maxAbs(ours) > 0.5, `logits are not trivially small (max ${maxAbs(ours).toFixed(3)})`);
  for (const [label, m, opt] of [
    ['training-mode ONNX', models.training, 'disabled'],
    ['fused ONNX', models.deployment, 'all'],
  ] as const) {
    const onnx = await runModel(m, x, [1, 3, SIZE, SIZE], opt);
    const d = maxAbsDiff(ours, onnx);
    t.ok(d <= 1e-4, `${label}: max |Δ logit| ${d.toExponential(2)} ≤ 1e-4`);
  }
});

t.test('the LeakyReLU slope comes from the λ variable, not the IR it was built from', async (t) => {
  const weights = seededWeights({ seed: 11, randomBatchNorm: true, gain: 2 });
  const model = TfLvunet.create({ height: SIZE, width: SIZE, lambda: 1 }, weights);
  t.teardown(() => model.dispose());
  model.setLambda(0.3);
  const graph = buildTrainingGraph({ height: SIZE, width: SIZE, lambda: 0.3 }, seededWeights({ seed: 11, randomBatchNorm: true, gain: 2 })).graph;
  const x = preprocessRgb(await readImageFile(listPairs(KVASIR)[1].image), { width: SIZE, height: SIZE });
  const logits = tf.tidy(() => model.forward(tf.tensor4d(nchwToNhwc(x, 1, 3, SIZE, SIZE), [1, SIZE, SIZE, 3]), false));
  const ours = logits.dataSync() as Float32Array;
  logits.dispose();
  const ref = await runModel(asModel(graph, new Map()), x, [1, 3, SIZE, SIZE], 'disabled');
  const d = maxAbsDiff(ours, ref);
  t.ok(d <= 1e-4, `λ = 0.3 training-mode ONNX: max |Δ logit| ${d.toExponential(2)} ≤ 1e-4`);
});

t.test('weights round-trip tfjs → safetensors → checkWeights with the paper names', async (t) => {
  const model = TfLvunet.create({ height: SIZE, width: SIZE, lambda: 0.25 }, seededWeights({ seed: 3, randomBatchNorm: true }));
  t.teardown(() => model.dispose());
  const exported = model.exportWeights();
  const parsed = readSafetensors(serializeWeights(model, { lambda: '0.25' }), 'mem');
  const checked = checkWeights(parsed, parameterSpecs(), 'mem');
  t.equal(checked.size, parameterSpecs().length, 'every paper parameter present');
  t.ok(parsed.tensors.has('firstconv.1.num_batches_tracked'), 'num_batches_tracked written for torch strict loading');
  t.equal(parsed.metadata.lambda, '0.25');
  let worst = 0;
  const reference = seededWeights({ seed: 3, randomBatchNorm: true });
  for (const spec of parameterSpecs()) {
    const a = checked.get(spec.name)!;
    const b = reference(spec);
    const e = exported.get(spec.name)!.data;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]), Math.abs(e[i] - b[i]));
  }
  t.equal(worst, 0, 'values and OIHW layout survive exactly');
  const other = TfLvunet.create({ height: SIZE, width: SIZE, lambda: 0.25 }, seededWeights({ seed: 99, randomBatchNorm: false }));
  t.teardown(() => other.dispose());
  other.loadWeights(checked);
  let back = 0;
  for (const [name, tensor] of other.exportWeights()) {
    const a = checked.get(name)!;
    for (let i = 0; i < a.length; i++) back = Math.max(back, Math.abs(a[i] - tensor.data[i]));
  }
  t.equal(back, 0, 'loadWeights restores a checkpoint exactly');
});
