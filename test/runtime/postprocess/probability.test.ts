import t from 'tap';
import { letterboxGeometry, letterboxInverse, resizeProbBilinear } from '../../../src/image/preprocess.js';
import {
  coverage,
  probabilityToFrame,
  sigmoid,
  sigmoidInto,
  thresholdMask,
} from '../../../src/runtime/postprocess/probability.js';
import { firstDifference, maskFrom } from './fixtures/masks.js';
import { same } from '../../helpers/same.js';

t.test('sigmoid is stable at the extremes', async (t) => {
  const p = sigmoidInto(Float32Array.from([-100, -1000, 0, 100, 1000, -Infinity, Infinity, NaN]));
  t.ok(p.every((v) => Number.isFinite(v) && v >= 0 && v <= 1), 'all finite in [0, 1]');
  t.equal(p[3], 1);
  t.equal(p[4], 1);
  t.equal(p[2], 0.5);
  t.ok(p[0] > 0 && p[0] < 1e-40, `sigmoid(-100) = ${p[0]} is tiny but not 0`);
  t.equal(p[1], 0);
  t.equal(p[5], 0);
  t.equal(p[6], 1);
  t.equal(p[7], 0, 'NaN is background');
  t.equal(sigmoid(-100), Math.exp(-100) / (1 + Math.exp(-100)));
  t.equal(sigmoid(2), 1 / (1 + Math.exp(-2)));
  t.ok(Math.abs(sigmoid(-2) + sigmoid(2) - 1) < 1e-15, 'symmetric');
});

t.test('sigmoidInto reuses its buffer, in place too', async (t) => {
  const logits = Float32Array.from([0, 1, -1]);
  const buf = new Float32Array(3);
  t.equal(sigmoidInto(logits, buf), buf);
  same(t, Array.from(buf), [0.5, Math.fround(sigmoid(1)), Math.fround(sigmoid(-1))]);
  t.equal(sigmoidInto(logits, logits), logits);
  same(t, Array.from(logits), Array.from(buf));
  t.throws(() => sigmoidInto(logits, new Float32Array(2)), RangeError);
});

t.test('threshold is strict and validated', async (t) => {
  const prob = Float32Array.from([0.2, 0.5, 0.51, 1]);
  same(t, Array.from(thresholdMask(prob, 2, 2).data), [0, 0, 1, 1]);
  same(t, Array.from(thresholdMask(prob, 4, 1, 0.1).data), [1, 1, 1, 1]);
  same(t, Array.from(thresholdMask(prob, 4, 1, 1).data), [0, 0, 0, 0]);
  t.throws(() => thresholdMask(prob, 2, 2, 1.5), RangeError);
  t.throws(() => thresholdMask(prob, 2, 2, NaN), RangeError);
  t.throws(() => thresholdMask(prob, 3, 1), RangeError);
});

t.test('frame mask comes from resized probabilities, not a blocky upscale', async (t) => {
  // 2x1 -> 4x1: sample positions -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1):
  // p = 0.2, 0.2*0.75 + 0.8*0.25 = 0.35, 0.2*0.25 + 0.8*0.75 = 0.65, 0.8.
  const up = probabilityToFrame(Float32Array.from([0.2, 0.8]), { width: 2, height: 1 }, { width: 4, height: 1 });
  const a = Math.fround(0.2);
  const b = Math.fround(0.8);
  same(t, Array.from(up), [a, 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b, b].map(Math.fround));
  same(t, Array.from(thresholdMask(up, 4, 1, 0.6).data), [0, 0, 1, 1]);
  // A nearest-neighbour upscale of the model mask at 0.6 would give [0, 0, 1, 1] too, but at 0.3 the
  // interpolated edge moves: [0, 1, 1, 1].
  same(t, Array.from(thresholdMask(up, 4, 1, 0.3).data), [0, 1, 1, 1]);
});

t.test('letterbox inverse on a known geometry', async (t) => {
  // A 4x2 frame letterboxed into 4x4: scale 1, content 4x2 at (0, 1); rows 0 and 3 are padding.
  const g = letterboxGeometry(4, 2, 4, 4);
  t.same(g, { scale: 1, newW: 4, newH: 2, ox: 0, oy: 1 });
  const model = Float32Array.from([9, 9, 9, 9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 9, 9, 9, 9]);
  const out = probabilityToFrame(model, { width: 4, height: 4 }, { width: 4, height: 2 }, g);
  same(t, Array.from(out), Array.from(model.subarray(4, 12)), 'padding (9) never reaches the frame');

  // 2x1 frame into 4x4: scale 2, content 4x2 at (0, 1), resized 4x2 -> 2x1: positions 0.5 (x), 0.5 (y).
  const g2 = letterboxGeometry(2, 1, 4, 4);
  t.same(g2, { scale: 2, newW: 4, newH: 2, ox: 0, oy: 1 });
  const m2 = new Float32Array(16).fill(9);
  m2.set([0, 0.4, 0.8, 0.8], 4);
  m2.set([0.4, 0.8, 0.8, 0.8], 8);
  const out2 = probabilityToFrame(m2, { width: 4, height: 4 }, { width: 2, height: 1 }, g2);
  // x=0: mean of cols 0,1 of both rows = (0 + 0.4 + 0.4 + 0.8) / 4 = 0.4; x=1: cols 2,3 = 0.8.
  same(t, Array.from(out2), [0.4, 0.8].map(Math.fround));
  same(t, Array.from(out2), Array.from(letterboxInverse(m2, 4, 4, 2, 1)));

  // A realistic geometry matches letterboxInverse bit for bit.
  const frame = { width: 640, height: 480 };
  const gg = letterboxGeometry(640, 480, 256, 256);
  const prob = new Float32Array(256 * 256).map((_, i) => (i % 257) / 257);
  const model256 = { width: 256, height: 256 };
  t.equal(
    firstDifference(probabilityToFrame(prob, model256, frame, gg), letterboxInverse(prob, 256, 256, 640, 480)),
    -1,
    'same as letterboxInverse',
  );
  t.equal(
    firstDifference(probabilityToFrame(prob, model256, frame), resizeProbBilinear(prob, 256, 256, 640, 480)),
    -1,
    'same as resizeProbBilinear without letterbox',
  );

  t.throws(
    () => probabilityToFrame(m2, { width: 4, height: 4 }, { width: 2, height: 1 }, { ...g2, oy: 3 }),
    RangeError,
  );
});

t.test('coverage', async (t) => {
  t.equal(coverage(maskFrom(['....', '....'])), 0);
  t.equal(coverage(maskFrom(['####', '####'])), 1);
  t.equal(coverage(maskFrom(['#...', '....'])), 1 / 8);
});
