#!/usr/bin/env node
/**
 * Runs a `model build` output folder (lvunet.train.onnx, lvunet.fp32.onnx) in onnxruntime-node on
 * the inputs export-inputs.mjs wrote and compares the logits with the PyTorch fixture at λ = 1.
 * Exits 1 if any max |Δ logit| exceeds the tolerance.
 *
 * usage: node tools/torch-reference/compare-onnx.mjs --model DIR --work DIR [--fixture DIR] [--tolerance 1e-4]
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    work: { type: 'string' },
    fixture: { type: 'string', default: join(ROOT, 'test', 'fixtures', 'torch-reference') },
    tolerance: { type: 'string', default: '1e-4' },
  },
});
if (!values.model || !values.work) throw new Error('--model DIR and --work DIR are required');
const tolerance = Number(values.tolerance);
const meta = JSON.parse(readFileSync(join(values.fixture, 'meta.json'), 'utf8'));
const size = meta.size;

function readF32(file) {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

let worst = 0;
for (const [file, mode] of [['lvunet.train.onnx', 'train-l1'], ['lvunet.fp32.onnx', 'deploy-l1']]) {
  for (const optimization of ['disabled', 'all']) {
    const session = await ort.InferenceSession.create(join(values.model, file), { graphOptimizationLevel: optimization, intraOpNumThreads: 1 });
    for (const img of meta.images) {
      const x = readF32(join(values.work, `${img.dataset}.input.f32`));
      const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, size, size]) });
      const y = out[session.outputNames[0]].data;
      const ref = readF32(join(values.fixture, meta.files[img.dataset][mode]));
      let d = 0;
      for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(y[i] - ref[i]));
      worst = Math.max(worst, d);
      console.log(`${file} (${mode}, ORT optimisation ${optimization}) ${img.dataset} ${img.stem}: max |Δ logit| vs PyTorch ${d.toExponential(2)}`);
    }
    await session.release();
  }
}
console.log(`worst ${worst.toExponential(2)} (tolerance ${tolerance})`);
if (!(worst <= tolerance)) process.exit(1);
