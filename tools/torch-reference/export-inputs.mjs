#!/usr/bin/env node
/**
 * Node half of the torch cross-check (see README.md): writes, into DIR,
 *   weights.safetensors  the seeded training-mode weights our toolchain generates (paper-code names,
 *                        OIHW, random BN statistics, conv gain 2), metadata lambda = 1
 *   <dataset>.input.f32  each image through the shared preprocessing (src/image/preprocess.ts),
 *                        1x3xSxS float32 little-endian
 *   inputs.json          seed, gain, size, the images used, sha256 of the weights (float32 data of
 *                        every parameter in architecture order) and of each input tensor
 * Uses the compiled toolchain in dist/ (run `npm run build` first).
 *
 * usage: node tools/torch-reference/export-inputs.mjs --out DIR [--seed 2024] [--gain 2] [--size 256]
 *          [--kvasir STEM] [--busi STEM]
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = join(ROOT, 'dist', 'src');
const { parameterSpecs } = await import(join(DIST, 'model', 'architecture.js'));
const { seededWeights } = await import(join(DIST, 'model', 'init.js'));
const { writeSafetensors } = await import(join(DIST, 'model', 'safetensors.js'));
const { readImageFile } = await import(join(DIST, 'image', 'decode.js'));
const { preprocessRgb } = await import(join(DIST, 'image', 'preprocess.js'));
const { listPairs } = await import(join(DIST, 'data', 'dataset.js'));

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    seed: { type: 'string', default: '2024' },
    gain: { type: 'string', default: '2' },
    size: { type: 'string', default: '256' },
    kvasir: { type: 'string' },
    busi: { type: 'string' },
  },
});
if (!values.out) throw new Error('--out DIR is required');
const seed = Number(values.seed);
const gain = Number(values.gain);
const size = Number(values.size);
const datasets = resolve(ROOT, '..', 'shared', 'datasets');

// Same recipe as test/model/torch-reference.test.ts: one provider call per parameter, in the
// architecture's parameter order.
const provider = seededWeights({ seed, randomBatchNorm: true, gain });
const tensors = new Map();
const weightsHash = createHash('sha256');
for (const spec of parameterSpecs()) {
  const data = provider(spec);
  tensors.set(spec.name, { shape: spec.shape, data });
  weightsHash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}
mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, 'weights.safetensors'), writeSafetensors(tensors, { lambda: '1', producer: `lvunet-edge seed ${seed} gain ${gain}` }));

const images = [];
for (const [dataset, stem] of [['kvasir-seg', values.kvasir], ['busi', values.busi]]) {
  const pairs = listPairs(join(datasets, dataset));
  const pair = stem === undefined ? pairs[0] : pairs.find((p) => p.stem === stem);
  if (!pair) throw new Error(`${dataset}: no image with stem ${stem}`);
  const x = preprocessRgb(await readImageFile(pair.image), { width: size, height: size });
  writeFileSync(join(values.out, `${dataset}.input.f32`), Buffer.from(x.buffer, x.byteOffset, x.byteLength));
  const inputSha256 = createHash('sha256').update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)).digest('hex');
  images.push({ dataset, stem: pair.stem, inputSha256 });
}
writeFileSync(join(values.out, 'inputs.json'), `${JSON.stringify({ seed, gain, randomBatchNorm: true, size, weightsSha256: weightsHash.digest('hex'), images }, null, 2)}\n`);
console.log(`wrote ${tensors.size} tensors and ${images.length} inputs (${images.map((i) => i.stem).join(', ')}) to ${values.out}`);
