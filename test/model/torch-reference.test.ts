/**
 * Independent check against the paper code's PyTorch model (issue 2): the logits in
 * test/fixtures/torch-reference/ were computed by tools/torch-reference/lvunet_torch.py (LV-UNet as
 * the paper code builds it, torchvision MobileNetV3-Large encoder, the paper's deployment fusion) on
 * our seeded weights (random BN statistics, conv gain 2). Here the same weights are regenerated
 * from the seed, written as the PyTorch state_dict would be (num_batches_tracked I64 counters
 * included, λ in the metadata), put through `model build`'s loader and builder, and run in
 * onnxruntime-node on the same preprocessed images: training mode at λ = 1 and λ = 0.37, deployment
 * mode at λ = 1, each within 1e-4 of PyTorch. No torch is needed here; regenerate the fixture with
 * tools/torch-reference/make-fixture.sh.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTrainingGraph, parameterSpecs } from '../../src/model/architecture.js';
import { buildModelDir, FP32_FILE, loadWeightsFile, TRAIN_FILE } from '../../src/model/build.js';
import { asModel, metadataFor } from '../../src/model/export.js';
import { seededWeights } from '../../src/model/init.js';
import { writeOnnx } from '../../src/model/onnx/write.js';
import { writeSafetensorsRaw, type RawTensor } from '../../src/model/safetensors.js';
import { listPairs } from '../../src/data/dataset.js';
import { readImageFile } from '../../src/image/decode.js';
import { preprocessRgb } from '../../src/image/preprocess.js';
import { inspectOnnx } from '../../src/model/inspect.js';
import { maxAbs, maxAbsDiff, runModel } from '../helpers/ort.js';
import { DATASETS, REPO_ROOT, WEIGHTS_TSV } from '../helpers/paths.js';
import { requireShared } from '../helpers/shared-data.js';

requireShared(WEIGHTS_TSV, DATASETS);

const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'torch-reference');
const TOLERANCE = 1e-4;
const PAPER_EXPORT = 'paper-export';

interface Meta {
  seed: number;
  gain: number;
  randomBatchNorm: boolean;
  size: number;
  weightsSha256: string;
  lambdas: number[];
  images: { dataset: string; stem: string; inputSha256: string }[];
  files: Record<string, Record<string, string>>;
  torch: string;
  torchvision: string;
}

const meta = JSON.parse(readFileSync(join(FIXTURE, 'meta.json'), 'utf8')) as Meta;
const SIZE = meta.size;
const lambdaTag = (l: number): string => `l${l}`;

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function readF32(file: string): Float32Array {
  const b = readFileSync(file);
  const out = new Float32Array(b.length / 4);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}

/** The fixture's weights, regenerated exactly as tools/torch-reference/export-inputs.mjs made them. */
function regenerateWeights(): Map<string, { shape: readonly number[]; data: Float32Array }> {
  const provider = seededWeights({ seed: meta.seed, randomBatchNorm: meta.randomBatchNorm, gain: meta.gain });
  const out = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const spec of parameterSpecs()) out.set(spec.name, { shape: spec.shape, data: provider(spec) });
  return out;
}

/**
 * The file `safetensors.torch.save_file(model.state_dict(), …)` would write: every state_dict entry
 * of the paper model (lvunet-train-weights.tsv), F32 weights and I64 scalar BN counters.
 */
function torchStyleFile(weights: Map<string, { shape: readonly number[]; data: Float32Array }>, lambda: number): Buffer {
  const raw = new Map<string, RawTensor>();
  const lines = readFileSync(WEIGHTS_TSV, 'utf8').trim().split('\n').slice(1);
  for (const line of lines) {
    const [name, shape] = line.split('\t');
    if (name.endsWith('num_batches_tracked')) {
      if (shape !== 'scalar') throw new Error(`${name}: expected a scalar, the TSV says ${shape}`);
      raw.set(name, { dtype: 'I64', shape: [], bytes: new Uint8Array(8) });
      continue;
    }
    const w = weights.get(name);
    if (!w) throw new Error(`regenerated weights lack ${name}`);
    raw.set(name, { dtype: 'F32', shape: w.shape, bytes: Uint8Array.from(bytesOf(w.data)) });
  }
  if (raw.size !== lines.length) throw new Error(`${raw.size} tensors for ${lines.length} state_dict entries`);
  return writeSafetensorsRaw(raw, { lambda: String(lambda) });
}

t.test('our toolchain reproduces the PyTorch reference logits', async (t) => {
  t.comment(`fixture: torch ${meta.torch}, torchvision ${meta.torchvision}; seed ${meta.seed}, gain ${meta.gain}, λ ${meta.lambdas.join(', ')}`);
  const weights = regenerateWeights();
  const hash = createHash('sha256');
  for (const w of weights.values()) hash.update(bytesOf(w.data));
  t.equal(hash.digest('hex'), meta.weightsSha256, 'regenerated weights are the ones the fixture was made from');

  const dir = mkdtempSync(join(tmpdir(), 'lvunet-torch-ref-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  // λ = 1: the `model build` path, from a PyTorch-style file, to both ONNX files.
  const file1 = join(dir, 'lvunet-l1.safetensors');
  writeFileSync(file1, torchStyleFile(weights, 1));
  const out = join(dir, 'model');
  buildModelDir(loadWeightsFile(file1), { height: SIZE, width: SIZE }, out);
  const models = new Map<string, Uint8Array>([
    ['train-l1', readFileSync(join(out, TRAIN_FILE))],
    ['deploy-l1', readFileSync(join(out, FP32_FILE))],
    // torch.onnx.export of the same deploy module (the bench times ours against it): also the PyTorch function.
    [PAPER_EXPORT, readFileSync(join(FIXTURE, 'paper-deploy.onnx'))],
  ]);
  // λ ≠ 1 cannot be fused; the training-mode graph is built from the file the same way.
  for (const lambda of meta.lambdas.filter((l) => l !== 1)) {
    const file = join(dir, `lvunet-${lambdaTag(lambda)}.safetensors`);
    writeFileSync(file, torchStyleFile(weights, lambda));
    const loaded = loadWeightsFile(file);
    t.equal(loaded.lambda, lambda, `λ ${lambda} read from the file's metadata`);
    const options = { height: SIZE, width: SIZE, lambda: loaded.lambda };
    const { graph } = buildTrainingGraph(options, loaded.provider);
    models.set(`train-${lambdaTag(lambda)}`, writeOnnx(asModel(graph, metadataFor('training', options, { weights: loaded.sha256 ?? '', lambda }))));
  }

  for (const img of meta.images) {
    const pair = listPairs(join(DATASETS, img.dataset)).find((p) => p.stem === img.stem);
    if (!pair) throw new Error(`${img.dataset}: image ${img.stem} not found`);
    const x = preprocessRgb(await readImageFile(pair.image), { width: SIZE, height: SIZE });
    t.equal(createHash('sha256').update(bytesOf(x)).digest('hex'), img.inputSha256, `${img.dataset} ${img.stem}: input tensor is the one PyTorch saw`);
    for (const [mode, model] of models) {
      const reference = readF32(join(FIXTURE, meta.files[img.dataset][mode === PAPER_EXPORT ? 'deploy-l1' : mode]));
      t.ok(maxAbs(reference) > 1, `${img.dataset} ${mode}: reference logits are not trivially small (max |logit| ${maxAbs(reference).toFixed(3)})`);
      for (const optimization of ['disabled', 'all'] as const) {
        const y = await runModel(model, x, [1, 3, SIZE, SIZE], optimization);
        const d = maxAbsDiff(y, reference);
        t.ok(d <= TOLERANCE, `${img.dataset} ${mode} (ORT optimisation ${optimization}): max |Δ logit| vs PyTorch ${d.toExponential(2)} ≤ ${TOLERANCE}`);
      }
    }
  }
});

t.test("our deployment graph has the paper export's structure: same nodes, parameters, MACs and fixed batch", async (t) => {
  const exportInfo = JSON.parse(readFileSync(join(FIXTURE, 'paper-deploy.json'), 'utf8')) as { sha256: string; torch: string };
  const paperFile = join(FIXTURE, 'paper-deploy.onnx');
  const paper = inspectOnnx(paperFile);
  t.equal(paper.sha256, exportInfo.sha256, `the fixture is the file torch ${exportInfo.torch} wrote`);
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-paper-shape-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'w.safetensors');
  writeFileSync(file, torchStyleFile(regenerateWeights(), 1));
  buildModelDir(loadWeightsFile(file), { height: SIZE, width: SIZE }, dir);
  const ours = inspectOnnx(join(dir, FP32_FILE));
  const { Constant: constants, ...paperOps } = paper.ops;
  t.equal(constants, 7, "torch's 7 Constant nodes are the Resize scales, initializers in ours");
  t.same(ours.ops, paperOps, 'op histogram');
  t.equal(ours.params, paper.params, 'parameters');
  t.equal(ours.macs, paper.macs, 'MACs');
  t.same(ours.inputs.map((i) => i.shape), paper.inputs.map((i) => i.shape), 'input shape (batch fixed at 1)');
});
