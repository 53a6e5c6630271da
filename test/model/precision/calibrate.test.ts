/** Calibration ranges on a tiny graph against hand-computed min/max, and the clip-threshold searches. */
import t from 'tap';
import { asModel } from '../../../src/model/export.js';
import type { Graph } from '../../../src/model/ir.js';
import { float32Tensor } from '../../../src/model/ir.js';
import { calibrate, calibrationGraph, entropyThreshold, percentileThreshold } from '../../../src/model/precision/calibrate.js';
import { same } from '../../helpers/same.js';

// x → Relu → r; Add(r, x) → s; Mul(s, 3) → y (graph output).
const graph: Graph = {
  name: 'tiny',
  inputs: [{ name: 'x', dataType: 'float32', shape: [1, 1, 2, 2] }],
  outputs: [{ name: 'y', dataType: 'float32', shape: [1, 1, 2, 2] }],
  nodes: [
    { op: 'Relu', name: 'relu', inputs: ['x'], outputs: ['r'], attributes: [] },
    { op: 'Add', name: 'add', inputs: ['r', 'x'], outputs: ['s'], attributes: [] },
    { op: 'Mul', name: 'mul', inputs: ['s', 'three'], outputs: ['y'], attributes: [] },
  ],
  initializers: new Map([['three', float32Tensor([1], Float32Array.of(3))]]),
};

t.test('calibrationGraph exposes every requested tensor as an output', async (t) => {
  const g = calibrationGraph(graph, ['x', 'r', 's', 'y']);
  same(t, g.outputs.map((o) => o.name), ['y', 'r', 's'], 'input and existing outputs are not duplicated');
  same(t, g.outputs[1].shape, [1, 1, 2, 2]);
});

t.test('minmax ranges equal the hand-computed ones', async (t) => {
  const inputs = [Float32Array.of(-2, 1, 0.5, 3), Float32Array.of(-0.5, -4, 2, 1)];
  const ranges = await calibrate(asModel(graph, new Map()), inputs, { threads: 1 });
  // r = relu(x): [0,1,0.5,3] and [0,0,2,1]; s = r + x: [-2,2,1,6] and [-0.5,-4,4,2]; y = 3s.
  t.same(ranges.get('x'), { min: -4, max: 3 });
  t.same(ranges.get('r'), { min: 0, max: 3 });
  t.same(ranges.get('s'), { min: -4, max: 6 });
  t.same(ranges.get('y'), { min: -12, max: 18 });
});

t.test('percentile and entropy clip a long tail and never widen the range', async (t) => {
  const inputs = [Float32Array.from({ length: 4 }, (_, i) => i * 0.01), Float32Array.of(0.01, 0.02, 0.03, 100)];
  const ranges = await calibrate(asModel(graph, new Map()), inputs, { method: 'percentile', percentile: 80, threads: 1 });
  const x = ranges.get('x')!;
  t.ok(x.max < 100 && x.max > 0, `percentile clips the outlier (max ${x.max})`);
  t.equal(x.min, 0, 'the minimum is kept when it is inside the threshold');
});

t.test('percentileThreshold and entropyThreshold on synthetic histograms', async (t) => {
  const counts = new Float64Array(100);
  counts[0] = 90;
  counts[99] = 10;
  t.equal(percentileThreshold(counts, 1, 90), 1, '90 % of the mass is in the first bin');
  t.equal(percentileThreshold(counts, 1, 100), 100);
  // A bell of mass near 0 and a far, thin tail: KL picks a clip well short of the tail.
  const bins = 2048;
  const h = new Float64Array(bins);
  for (let i = 0; i < 400; i++) h[i] = Math.exp(-((i / 100) ** 2)) * 1e6;
  h[bins - 1] = 1;
  const threshold = entropyThreshold(h, 1 / bins);
  t.ok(threshold < 0.5, `threshold ${threshold} ignores the outlier at 1.0`);
  t.ok(threshold > 128 / bins, `threshold ${threshold} covers the bulk`);

  // After a ReLU: 70 % exact zeros, the rest half-normal (sigma 1, max 4.6). The zero spike must not
  // pull the clip down to the smallest one tried (it gave 0.57, clipping a third of the non-zero values).
  const relu = new Float64Array(bins);
  const max = 4.6;
  relu[0] = 0.7 * 1e6;
  for (let i = 0; i < bins; i++) {
    const x = ((i + 0.5) * max) / bins;
    relu[i] += 0.3 * 1e6 * (max / bins) * Math.sqrt(2 / Math.PI) * Math.exp(-(x * x) / 2);
  }
  const before = Float64Array.from(relu);
  const reluT = entropyThreshold(relu, max / bins);
  t.ok(reluT > 2.5 && reluT <= max + max / bins, `ReLU output: threshold ${reluT} keeps the half-normal's bulk (sigma 1)`);
  same(t, relu, before, 'the caller\'s histogram is not modified');

  // A hard-sigmoid output (SE scale): every value in [0.15, 0.8] of a max of 0.8, sparse (few channels
  // per image). A clip below the values folds them all into one level, which KL scored 0 and picked
  // (0.05 on both shipped models: INT8 masks agreed with FP32 at Dice 0.0005).
  const se = new Float64Array(bins);
  const seMax = 0.8;
  for (let k = 0; k < 300; k++) se[Math.min(bins - 1, Math.floor(((0.15 + (0.65 * k) / 299) / seMax) * bins))] += 1;
  const seT = entropyThreshold(se, seMax / bins);
  t.ok(seT > 0.15 + 2 * (seMax / bins), `SE scale: threshold ${seT} lies above the smallest values (0.15)`);
});
