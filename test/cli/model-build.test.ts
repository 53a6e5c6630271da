import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { parameterSpecs } from '../../src/model/architecture.js';
import { seededWeights } from '../../src/model/init.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { sha256 } from '../../src/util/files.js';
import type { Manifest } from '../../src/model/manifest.js';
import { runCli } from '../helpers/cli.js';
import { maxAbsDiff } from '../helpers/ort.js';
import { same } from '../helpers/same.js';

function weightsFile(dir: string, name: string, metadata?: Record<string, string>, edit?: (m: Map<string, { shape: readonly number[]; data: Float32Array }>) => void): string {
  const provider = seededWeights({ seed: 11, randomBatchNorm: true });
  const tensors = new Map(parameterSpecs().map((s) => [s.name, { shape: s.shape, data: provider(s) }]));
  edit?.(tensors);
  const path = join(dir, name);
  writeFileSync(path, writeSafetensors(tensors, metadata));
  return path;
}

async function logits(file: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  const x = Float32Array.from({ length: 3 * 256 * 256 }, (_, i) => Math.sin(i / 97));
  const out = await s.run({ image: new ort.Tensor('float32', x, [1, 3, 256, 256]) });
  await s.release();
  return out.logits.data as Float32Array;
}

t.test('model build --seed writes both models and a manifest that describes them', async (t) => {
  const dir = t.testdir();
  const r = runCli(['model', 'build', '--seed', '3', '--out', dir]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /wrote .*lvunet\.fp32\.onnx \(deployment, 510985 params/);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  t.equal(manifest.lambda, 1);
  t.equal(manifest.weights.source, 'seed:3');
  t.match(manifest.input, { name: 'image', layout: 'NCHW', shape: [1, 3, 256, 256], preprocessing: { colorOrder: 'RGB' } });
  t.same(manifest.files.map((f) => [f.file, f.mode, f.params]), [
    ['lvunet.train.onnx', 'training', 934545],
    ['lvunet.fp32.onnx', 'deployment', 510985],
  ]);
  for (const f of manifest.files) t.equal(f.sha256, sha256(readFileSync(join(dir, f.file))), `${f.file} sha256`);

  const inspect = runCli(['model', 'inspect', join(dir, 'lvunet.fp32.onnx'), '--json']);
  t.equal(inspect.status, 0, inspect.stderr);
  const report = JSON.parse(inspect.stdout) as Record<string, unknown>;
  t.match(report, { params: 510985, opset: 17, sha256: manifest.files[1].sha256, ops: { Conv: 54 } });
  t.ok(Math.abs((report.macs as number) / 0.1571e9 - 1) < 0.01, 'deployment MACs within 1 % of 0.1571 G');
  same(t, report.inputs, [{ name: 'image', dataType: 'float32', shape: [1, 3, 256, 256] }], 'a fixed batch of 1, as torch.onnx.export writes');
  same(t, report.outputs, [{ name: 'logits', dataType: 'float32', shape: [1, 1, 256, 256] }]);
  t.notOk('BatchNormalization' in (report.ops as object), 'no BN survives fusion');
});

t.test('model build --dynamic-batch writes a symbolic batch dimension that runs at batch 2', async (t) => {
  const dir = t.testdir();
  const r = runCli(['model', 'build', '--seed', '3', '--dynamic-batch', '--out', dir]);
  t.equal(r.status, 0, r.stderr);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  t.same(manifest.input.shape, ['batch', 3, 256, 256]);
  for (const file of ['lvunet.train.onnx', 'lvunet.fp32.onnx']) {
    const s = await ort.InferenceSession.create(join(dir, file), { intraOpNumThreads: 1 });
    const one = Float32Array.from({ length: 3 * 256 * 256 }, (_, i) => Math.sin(i / 97));
    const two = new Float32Array(2 * one.length);
    two.set(one, 0);
    two.set(one.map((v) => -v), one.length);
    const out = (await s.run({ image: new ort.Tensor('float32', two, [2, 3, 256, 256]) })).logits;
    const single = (await s.run({ image: new ort.Tensor('float32', one, [1, 3, 256, 256]) })).logits.data as Float32Array;
    await s.release();
    t.same(out.dims, [2, 1, 256, 256], `${file} runs a batch of 2`);
    t.ok(maxAbsDiff((out.data as Float32Array).subarray(0, single.length), single) <= 1e-5, `${file}: batch item 0 equals the single run`);
  }
});

t.test('a safetensors file with λ in its metadata builds the same model as the weights it holds', async (t) => {
  const dir = t.testdir();
  const file = weightsFile(dir, 'w.safetensors', { lambda: '1' });
  const r = runCli(['model', 'build', '--weights', file, '--size', '256', '--out', join(dir, 'out')]);
  t.equal(r.status, 0, r.stderr);
  const manifest = JSON.parse(readFileSync(join(dir, 'out', 'manifest.json'), 'utf8')) as Manifest;
  t.equal(manifest.weights.sha256, sha256(readFileSync(file)), 'the manifest cites the weights file');
  const a = await logits(join(dir, 'out', 'lvunet.train.onnx'));
  const b = await logits(join(dir, 'out', 'lvunet.fp32.onnx'));
  t.ok(maxAbsDiff(a, b) <= 1e-4);
});

t.test('λ must be known, and fusion refuses λ ≠ 1', async (t) => {
  const dir = t.testdir();
  const bare = weightsFile(dir, 'bare.safetensors');
  const r = runCli(['model', 'build', '--weights', bare, '--out', join(dir, 'a')]);
  t.equal(r.status, 1);
  t.match(r.stderr, /bare\.safetensors does not record the deep-training slope λ.*--lambda 1/s);
  t.equal(runCli(['model', 'build', '--weights', bare, '--lambda', '1', '--out', join(dir, 'b')]).status, 0);

  const early = weightsFile(dir, 'early.safetensors', { lambda: '0.9948' });
  const e = runCli(['model', 'build', '--weights', early, '--out', join(dir, 'c')]);
  t.equal(e.status, 1);
  t.match(e.stderr, /refusing to fuse: λ = 0\.9948/);

  const conflict = runCli(['model', 'build', '--weights', early, '--lambda', '1', '--out', join(dir, 'd')]);
  t.equal(conflict.status, 1);
  t.match(conflict.stderr, /says λ = 0\.9948.*but --lambda 1 was given/);
});

t.test('bad weights files fail with every culprit named', async (t) => {
  const dir = t.testdir();
  const bad = weightsFile(dir, 'bad.safetensors', { lambda: '1' }, (m) => {
    m.delete('final.1.bias');
    m.set('stages.0.conv1.0.weight', { shape: [80, 80, 3, 3], data: new Float32Array(80 * 80 * 9) });
    m.set('extra.weight', { shape: [1], data: new Float32Array(1) });
  });
  const r = runCli(['model', 'build', '--weights', bad, '--out', join(dir, 'o')]);
  t.equal(r.status, 1);
  t.match(r.stderr, /bad\.safetensors: weights do not match the model \(3 problems\)/);
  t.match(r.stderr, /stages\.0\.conv1\.0\.weight: shape 80x80x3x3, expected 80x80x1x1/);
  t.match(r.stderr, /final\.1\.bias: missing/);
  t.match(r.stderr, /extra\.weight: unexpected tensor/);

  const good = readFileSync(weightsFile(dir, 'good.safetensors', { lambda: '1' }));
  writeFileSync(join(dir, 'cut.safetensors'), good.subarray(0, good.length - 1000));
  const cut = runCli(['model', 'build', '--weights', join(dir, 'cut.safetensors'), '--out', join(dir, 'o2')]);
  t.equal(cut.status, 1);
  t.match(cut.stderr, /cut\.safetensors: not a valid safetensors file/);

  const missing = runCli(['model', 'build', '--weights', join(dir, 'nope.safetensors'), '--out', join(dir, 'o3')]);
  t.equal(missing.status, 1);
  t.match(missing.stderr, /cannot read weights file .*nope\.safetensors/);
});

t.test('usage errors exit 2 with the usage text', async (t) => {
  const none = runCli(['model', 'build', '--out', '/tmp/x']);
  t.equal(none.status, 2);
  t.match(none.stderr, /give exactly one of --weights FILE or --seed N/);
  t.match(none.stderr, /usage: lvunet-edge model build/);
  const size = runCli(['model', 'build', '--seed', '1', '--size', '300', '--out', t.testdir()]);
  t.equal(size.status, 1);
  t.match(size.stderr, /height 300 is not a positive multiple of 128/);
  const flag = runCli(['model', 'build', '--seed', '1', '--bogus']);
  t.equal(flag.status, 2);
  t.match(flag.stderr, /Unknown option '--bogus'/);
  const inspect = runCli(['model', 'inspect', '/definitely/missing.onnx']);
  t.equal(inspect.status, 1);
  t.match(inspect.stderr, /cannot read ONNX file \/definitely\/missing\.onnx/);
});
