import t from 'tap';
import { readFileSync } from 'node:fs';
import { buildTrainingGraph, makeDivisible, parameterSpecs } from '../../src/model/architecture.js';
import { countMacs, countParameters } from '../../src/model/stats.js';
import { WEIGHTS_TSV } from '../helpers/paths.js';
import { requireShared } from '../helpers/shared-data.js';

requireShared(WEIGHTS_TSV);

const zeros = (s: { shape: readonly number[] }): Float32Array => new Float32Array(s.shape.reduce((a, b) => a * b, 1));

t.test('parameter names and shapes are exactly the paper code state_dict', async (t) => {
  const rows = readFileSync(WEIGHTS_TSV, 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
  const expected = rows.filter(([name]) => !name.endsWith('num_batches_tracked')).map(([name, shape]) => `${name} ${shape}`);
  const ours = parameterSpecs().map((p) => `${p.name} ${p.shape.join('x')}`);
  t.same([...ours].sort(), [...expected].sort());
  t.equal(ours.length, 319);
});

t.test('training graph: 934,545 parameters and 0.1746 G MACs at 256x256', async (t) => {
  const { graph } = buildTrainingGraph({ height: 256, width: 256, lambda: 1 }, zeros);
  t.equal(countParameters(graph), 934_545);
  const macs = countMacs(graph);
  t.ok(Math.abs(macs / 0.1746e9 - 1) < 0.01, `MACs ${macs} within 1 % of 0.1746 G`);
  t.equal(graph.nodes.filter((n) => n.op === 'BatchNormalization').length, 57, 'every BN is its own node');
  t.equal(graph.nodes.filter((n) => n.op === 'LeakyRelu').length, 10, 'one LeakyReLU(λ) per fusible block');
});

t.test('MACs scale with the input size', async (t) => {
  const small = countMacs(buildTrainingGraph({ height: 256, width: 256, lambda: 1 }, zeros).graph);
  const wide = countMacs(buildTrainingGraph({ height: 256, width: 512, lambda: 1 }, zeros).graph);
  // SE convs act on 1x1 maps, so doubling the area does not exactly double the total.
  t.ok(Math.abs(wide / small - 2) < 0.01);
});

t.test('input sizes must be multiples of 128 and λ within [0, 1]', async (t) => {
  t.throws(() => buildTrainingGraph({ height: 200, width: 256, lambda: 1 }, zeros), /height 200 is not a positive multiple of 128/);
  t.throws(() => buildTrainingGraph({ height: 256, width: 0, lambda: 1 }, zeros), /width 0/);
  t.throws(() => buildTrainingGraph({ height: 256, width: 256, lambda: 1.5 }, zeros), /λ = 1.5 is outside/);
});

t.test("SE widths follow torchvision's _make_divisible", async (t) => {
  t.equal(makeDivisible(72 / 4), 24);
  t.equal(makeDivisible(120 / 4), 32);
  t.equal(makeDivisible(10), 16);
});
