/**
 * Each fusion rule alone on a one-layer graph with random BatchNorm statistics, run before and after
 * in onnxruntime-node (the pattern onnxruntime's own web tests use for graph passes).
 */
import t, { type Test } from 'tap';
import { GraphBuilder } from '../../src/model/graph-builder.js';
import { seededWeights } from '../../src/model/init.js';
import type { Graph } from '../../src/model/ir.js';
import { asModel } from '../../src/model/export.js';
import { foldBatchNorms, fuse, FusionError, mergeConsecutive1x1Convs, removeIdentityLeakyRelus } from '../../src/model/fusion.js';
import { gaussian } from '../../src/data/random.js';
import { maxAbs, maxAbsDiff, runModel } from '../helpers/ort.js';

const C = 6;
const H = 8;

function oneLayer(build: (b: GraphBuilder, x: string) => string, seed = 7, outChannels = C): Graph {
  const b = new GraphBuilder(seededWeights({ seed, randomBatchNorm: true, gain: 2 }));
  const y = build(b, 'x');
  return b.finish('rule', [{ name: 'x', dataType: 'float32', shape: [1, C, H, H] }], {
    value: y,
    info: { name: 'y', dataType: 'float32', shape: [1, outChannels, H, H] },
  });
}

function input(seed = 3): Float32Array {
  const g = gaussian(seed);
  return Float32Array.from({ length: C * H * H }, () => g() * 2);
}

async function agree(t: Test, before: Graph, after: Graph, dims = [1, C, H, H]): Promise<void> {
  const x = input();
  const a = await runModel(asModel(before, new Map()), x, dims);
  const b = await runModel(asModel(after, new Map()), x, dims);
  t.ok(maxAbs(a) > 0.1, 'the layer produces non-trivial output');
  t.ok(maxAbsDiff(a, b) < 1e-5, `max |Δ| ${maxAbsDiff(a, b)} < 1e-5`);
}

const ops = (g: Graph): string[] => g.nodes.map((n) => n.op);

t.test('rule 1: BN folds into a conv with a bias', async (t) => {
  const g = oneLayer((b, x) => b.batchNorm(b.conv(x, { name: 'c', inChannels: C, outChannels: C, kernel: 3, bias: true }), 'bn', C, 1e-6));
  const f = foldBatchNorms(g);
  t.same(ops(f), ['Conv']);
  t.notOk(f.initializers.has('bn.running_mean'), 'BN statistics are dropped');
  await agree(t, g, f);
});

t.test('rule 1: BN folds into a bias-free conv (encoder style, eps 1e-3), which gains a bias', async (t) => {
  const g = oneLayer((b, x) => b.batchNorm(b.conv(x, { name: 'c.0', inChannels: C, outChannels: C, kernel: 1, bias: false }), 'c.1', C, 1e-3));
  const f = foldBatchNorms(g);
  t.same(ops(f), ['Conv']);
  t.equal(f.nodes[0].inputs[2], 'c.0.bias');
  await agree(t, g, f);
});

t.test('rule 1: the series-activation BN folds into its depthwise conv', async (t) => {
  const g = oneLayer((b, x) => b.batchNorm(b.conv(b.relu(x, 'r'), { name: 'act', inChannels: C, outChannels: C, kernel: 3, groups: C, bias: false }), 'act.bn', C, 1e-6));
  const f = foldBatchNorms(g);
  t.same(ops(f), ['Relu', 'Conv']);
  t.same(f.initializers.get('act.bias')?.dims, [C]);
  await agree(t, g, f);
});

t.test('rule 1: a BN whose conv output is read elsewhere is left alone', async (t) => {
  const g = oneLayer((b, x) => {
    const c = b.conv(x, { name: 'c', inChannels: C, outChannels: C, kernel: 1, bias: true });
    return b.add(b.batchNorm(c, 'bn', C, 1e-6), c, 'sum');
  });
  t.same(ops(foldBatchNorms(g)), ['Conv', 'BatchNormalization', 'Add']);
});

t.test('rule 2: LeakyReLU(1) is removed, any other slope stays', async (t) => {
  const g = oneLayer((b, x) => b.leakyRelu(b.conv(x, { name: 'c', inChannels: C, outChannels: C, kernel: 1, bias: true }), 'l', 1));
  const f = removeIdentityLeakyRelus(g);
  t.same(ops(f), ['Conv']);
  t.equal(f.nodes[0].outputs[0], 'y', 'the graph output keeps its name');
  await agree(t, g, f);
  const half = oneLayer((b, x) => b.leakyRelu(b.conv(x, { name: 'c', inChannels: C, outChannels: C, kernel: 1, bias: true }), 'l', 0.5));
  t.same(ops(removeIdentityLeakyRelus(half)), ['Conv', 'LeakyRelu']);
});

t.test('rule 3: two 1x1 convs merge into one', async (t) => {
  const g = oneLayer(
    (b, x) => {
      const a = b.conv(x, { name: 'blk.conv1.0', inChannels: C, outChannels: C, kernel: 1, bias: true });
      return b.conv(a, { name: 'blk.conv2.0', inChannels: C, outChannels: 4, kernel: 1, bias: true });
    },
    7,
    4,
  );
  const f = mergeConsecutive1x1Convs(g);
  t.same(ops(f), ['Conv']);
  t.same(f.initializers.get('blk.conv.weight')?.dims, [4, C, 1, 1]);
  const x = input();
  const a = await runModel(asModel(g, new Map()), x, [1, C, H, H]);
  const b = await runModel(asModel(f, new Map()), x, [1, C, H, H]);
  t.ok(maxAbsDiff(a, b) < 1e-5);
});

t.test('rule 3: a 3x3 conv or a strided 1x1 is never merged', async (t) => {
  const g = oneLayer((b, x) => {
    const a = b.conv(x, { name: 'a', inChannels: C, outChannels: C, kernel: 3, bias: true });
    return b.conv(a, { name: 'b', inChannels: C, outChannels: C, kernel: 1, bias: true });
  });
  t.same(ops(mergeConsecutive1x1Convs(g)), ['Conv', 'Conv']);
});

t.test('fuse refuses λ ≠ 1 and says why', async (t) => {
  const g = oneLayer((b, x) => b.leakyRelu(b.conv(x, { name: 'c', inChannels: C, outChannels: C, kernel: 1, bias: true }), 'l', 0.9948));
  t.throws(() => fuse(g, 0.9948), FusionError);
  t.throws(() => fuse(g, 0.9948), /refusing to fuse: λ = 0\.9948/);
  t.throws(() => fuse(g, 1), /LeakyReLU node\(s\) have slope 0\.994\d* ≠ 1/, 'the graph itself is checked too');
});
