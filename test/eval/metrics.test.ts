import t, { type Test } from 'tap';
import { mulberry32 } from '../../src/data/random.js';
import {
  aggregate,
  boundary,
  confusion,
  hd95,
  imageMetrics,
  meanStd,
  percentile,
  scores,
  squaredDistanceTransform,
} from '../../src/eval/metrics.js';

/** A w x h mask with the given [x, y] pixels set. */
function maskOf(w: number, h: number, pixels: readonly (readonly [number, number])[]): Uint8Array {
  const m = new Uint8Array(w * h);
  for (const [x, y] of pixels) m[y * w + x] = 1;
  return m;
}

/** A w x h mask with the rectangle [x0, x0 + rw) x [y0, y0 + rh) set. */
function rect(w: number, h: number, x0: number, y0: number, rw: number, rh: number): Uint8Array {
  const m = new Uint8Array(w * h);
  for (let y = y0; y < y0 + rh; y++) for (let x = x0; x < x0 + rw; x++) m[y * w + x] = 1;
  return m;
}

function close(t: Test, actual: number | null, expected: number, msg: string): void {
  t.ok(actual !== null && Math.abs(actual - expected) < 1e-12, `${msg}: ${actual} vs ${expected}`);
}

t.test('empty truth and empty prediction: everything 1, HD95 undefined', async (t) => {
  const e = new Uint8Array(16);
  const m = imageMetrics(e, e, 4, 4);
  t.same(m.counts, { tp: 0, fp: 0, fn: 0, tn: 16 });
  t.same({ dice: m.dice, iou: m.iou, precision: m.precision, recall: m.recall, specificity: m.specificity }, { dice: 1, iou: 1, precision: 1, recall: 1, specificity: 1 });
  t.equal(m.hd95, null);
});

t.test('one side empty', async (t) => {
  const e = new Uint8Array(16);
  const p = maskOf(4, 4, [[1, 1]]);
  const missed = imageMetrics(e, p, 4, 4); // prediction empty, truth one pixel
  t.same(missed.counts, { tp: 0, fp: 0, fn: 1, tn: 15 });
  t.match(missed, { dice: 0, iou: 0, precision: 0, recall: 0, specificity: 1, hd95: null });
  const spurious = imageMetrics(p, e, 4, 4); // prediction one pixel, truth empty
  t.same(spurious.counts, { tp: 0, fp: 1, fn: 0, tn: 15 });
  t.match(spurious, { dice: 0, iou: 0, precision: 0, recall: 0, hd95: null });
  t.equal(spurious.specificity, 15 / 16);
});

t.test('one pixel each, same place and different places', async (t) => {
  const a = maskOf(5, 5, [[2, 3]]);
  const same = imageMetrics(a, maskOf(5, 5, [[2, 3]]), 5, 5);
  t.match(same, { dice: 1, iou: 1, precision: 1, recall: 1, specificity: 1, hd95: 0 });
  const other = imageMetrics(a, maskOf(5, 5, [[4, 0]]), 5, 5);
  t.same(other.counts, { tp: 0, fp: 1, fn: 1, tn: 23 });
  t.match(other, { dice: 0, iou: 0, precision: 0, recall: 0 });
  t.equal(other.specificity, 23 / 24);
  // (2,3) to (4,0): sqrt(4 + 9); both directed sets are that one distance.
  close(t, other.hd95, Math.sqrt(13), 'hd95');
});

t.test('full frame: specificity follows the same rule on the backgrounds', async (t) => {
  const full = new Uint8Array(9).fill(1);
  t.match(imageMetrics(full, full, 3, 3), { dice: 1, iou: 1, precision: 1, recall: 1, specificity: 1, hd95: 0 });
  const notFull = full.slice();
  notFull[4] = 0;
  // Truth full, prediction with one background pixel: tn + fp = 0 and the prediction has background.
  const m = imageMetrics(notFull, full, 3, 3);
  t.same(m.counts, { tp: 8, fp: 0, fn: 1, tn: 0 });
  t.equal(m.specificity, 0);
  t.equal(m.dice, 16 / 17);
  t.equal(m.iou, 8 / 9);
  t.equal(m.precision, 1);
  t.equal(m.recall, 8 / 9);
});

t.test('a 4x4 square against the same square shifted by (1, 1)', async (t) => {
  const a = rect(10, 10, 2, 2, 4, 4);
  const b = rect(10, 10, 3, 3, 4, 4);
  const c = confusion(a, b);
  // Overlap is 3x3 = 9; each square has 16 pixels.
  t.same(c, { tp: 9, fp: 7, fn: 7, tn: 100 - 23 });
  const s = scores(c);
  t.equal(s.dice, 18 / 32);
  t.equal(s.iou, 9 / 23);
  t.equal(s.precision, 9 / 16);
  t.equal(s.recall, 9 / 16);
  t.equal(s.specificity, 77 / 84);
});

t.test('boundary is the mask minus its 4-connected erosion, image edges included', async (t) => {
  const b = boundary(rect(5, 5, 0, 0, 3, 3), 5, 5);
  t.same(Array.from(b), Array.from(maskOf(5, 5, [[0, 0], [1, 0], [2, 0], [0, 1], [2, 1], [0, 2], [1, 2], [2, 2]])));
  const full = boundary(new Uint8Array(9).fill(1), 3, 3);
  t.same(Array.from(full), [1, 1, 1, 1, 0, 1, 1, 1, 1], 'only the centre of a full 3x3 frame is interior');
});

t.test('squared EDT equals brute force', async (t) => {
  const rnd = mulberry32(7);
  for (let trial = 0; trial < 30; trial++) {
    const w = 1 + Math.floor(rnd() * 17);
    const h = 1 + Math.floor(rnd() * 17);
    const f = Uint8Array.from({ length: w * h }, () => (rnd() < 0.08 ? 1 : 0));
    f[Math.floor(rnd() * w * h)] = 1;
    const d = squaredDistanceTransform(f, w, h);
    let bad = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let best = Infinity;
        for (let v = 0; v < h; v++) for (let u = 0; u < w; u++) if (f[v * w + u]) best = Math.min(best, (x - u) ** 2 + (y - v) ** 2);
        if (d[y * w + x] !== best) bad++;
      }
    }
    t.equal(bad, 0, `${w}x${h} trial ${trial}`);
  }
});

t.test('HD95 of two squares offset by k pixels is k', async (t) => {
  for (const k of [1, 2, 3, 5]) {
    const a = rect(40, 30, 5, 5, 12, 12);
    t.equal(hd95(a, rect(40, 30, 5 + k, 5, 12, 12), 40, 30), k, `horizontal ${k}`);
    t.equal(hd95(rect(40, 30, 5, 5 + k, 12, 12), a, 40, 30), k, `vertical ${k}`);
  }
});

t.test('HD95 of a point against a 5x5 square around it', async (t) => {
  const point = maskOf(9, 9, [[4, 4]]);
  const square = rect(9, 9, 2, 2, 5, 5);
  // Square boundary: 16 pixels; 4 edge midpoints at 2, 8 at sqrt(5), 4 corners at sqrt(8). The point's
  // distance to the boundary is 2. Union of 17: index 0.95 * 16 = 15.2 falls between two sqrt(8).
  close(t, hd95(point, square, 9, 9), Math.sqrt(8), 'point vs square');
  close(t, hd95(square, point, 9, 9), Math.sqrt(8), 'symmetric');
  // A 3x3 square: 8 boundary pixels, 4 at 1, 4 at sqrt(2), point at 1. Union of 9: index 7.6 -> sqrt(2).
  close(t, hd95(point, rect(9, 9, 3, 3, 3, 3), 9, 9), Math.SQRT2, '3x3');
});

/** medpy's hd95 by brute force: boundary distances over all pairs, numpy percentile of the union. */
function bruteHd95(a: Uint8Array, b: Uint8Array, w: number, h: number): number | null {
  if (!a.some((v) => v) || !b.some((v) => v)) return null;
  const pts = (m: Uint8Array): [number, number][] => {
    const bd = boundary(m, w, h);
    const out: [number, number][] = [];
    for (let i = 0; i < bd.length; i++) if (bd[i]) out.push([i % w, Math.floor(i / w)]);
    return out;
  };
  const pa = pts(a);
  const pb = pts(b);
  const directed = (from: [number, number][], to: [number, number][]): number[] =>
    from.map(([x, y]) => Math.min(...to.map(([u, v]) => Math.hypot(x - u, y - v))));
  const all = [...directed(pa, pb), ...directed(pb, pa)].sort((x, y) => x - y);
  return percentile(all, 95);
}

t.test('HD95 equals a brute-force O(n²) computation on random small masks', async (t) => {
  const rnd = mulberry32(2024);
  let compared = 0;
  for (let trial = 0; trial < 60; trial++) {
    const w = 2 + Math.floor(rnd() * 20);
    const h = 2 + Math.floor(rnd() * 20);
    const pa = rnd() * 0.6;
    const pb = rnd() * 0.6;
    const a = Uint8Array.from({ length: w * h }, () => (rnd() < pa ? 1 : 0));
    const b = Uint8Array.from({ length: w * h }, () => (rnd() < pb ? 1 : 0));
    const fast = hd95(a, b, w, h);
    const slow = bruteHd95(a, b, w, h);
    if (slow === null) {
      t.equal(fast, null);
      continue;
    }
    compared++;
    t.ok(fast !== null && Math.abs(fast - slow) < 1e-9, `${w}x${h}: ${fast} vs ${slow}`);
  }
  t.ok(compared > 40, `${compared} non-empty cases compared`);
});

t.test('percentile matches numpy linear interpolation', async (t) => {
  t.equal(percentile([1, 2, 3, 4], 50), 2.5);
  t.equal(percentile([0, 10], 95), 9.5);
  t.equal(percentile([7], 95), 7);
  t.ok(Number.isNaN(percentile([], 95)));
});

t.test('mean, population std and pooled counts by hand', async (t) => {
  t.same(meanStd([1, 2, 3, 4]), { mean: 2.5, std: Math.sqrt(1.25), n: 4 });
  t.same(meanStd([0.5]), { mean: 0.5, std: 0, n: 1 });

  const w = 4;
  const h = 1;
  // Image 1: truth 1100, prediction 1000 -> tp 1, fn 1, tn 2: dice 2/3, iou 1/2.
  const r1 = imageMetrics(Uint8Array.of(1, 0, 0, 0), Uint8Array.of(1, 1, 0, 0), w, h);
  // Image 2: both empty -> dice 1, iou 1, hd95 null.
  const r2 = imageMetrics(new Uint8Array(4), new Uint8Array(4), w, h);
  // Image 3: truth 0011, prediction 0111 -> tp 2, fp 1, tn 1: dice 4/5, iou 2/3.
  const r3 = imageMetrics(Uint8Array.of(0, 1, 1, 1), Uint8Array.of(0, 0, 1, 1), w, h);
  const agg = aggregate([r1, r2, r3]);
  t.equal(agg.images, 3);
  const diceMean = (2 / 3 + 1 + 4 / 5) / 3;
  close(t, agg.perImage.dice.mean, diceMean, 'dice mean');
  const diceVar = ((2 / 3 - diceMean) ** 2 + (1 - diceMean) ** 2 + (4 / 5 - diceMean) ** 2) / 3;
  close(t, agg.perImage.dice.std, Math.sqrt(diceVar), 'dice population std');
  close(t, agg.perImage.iou.mean, (1 / 2 + 1 + 2 / 3) / 3, 'iou mean');
  // Pooled: tp 3, fp 1, fn 1, tn 7 -> dice 6/8, iou 3/5, precision 3/4, recall 3/4, specificity 7/8.
  t.same(agg.pooled.counts, { tp: 3, fp: 1, fn: 1, tn: 7 });
  t.equal(agg.pooled.dice, 6 / 8);
  t.equal(agg.pooled.iou, 3 / 5);
  t.equal(agg.pooled.precision, 3 / 4);
  t.equal(agg.pooled.recall, 3 / 4);
  t.equal(agg.pooled.specificity, 7 / 8);
  // HD95 over the two images where it is defined. In a one-row image every foreground pixel touches
  // the edge, so it is all boundary. Image 1: {0} vs {0, 1}: distances 0 | 0, 1 -> union [0, 0, 1],
  // index 0.95 * 2 = 1.9 -> 0.9. Image 3: {1, 2, 3} vs {2, 3}: 1, 0, 0 | 0, 0 -> [0, 0, 0, 0, 1],
  // index 3.8 -> 0.8.
  t.equal(agg.hd95.n, 2);
  t.equal(agg.hd95.undefined, 1);
  close(t, r1.hd95, 0.9, 'image 1 hd95');
  close(t, r3.hd95, 0.8, 'image 3 hd95');
  close(t, agg.hd95.mean, 0.85, 'hd95 mean');
  close(t, agg.hd95.std, 0.05, 'hd95 std');
  t.same(agg.empty, { truth: 1, prediction: 1, both: 1 });
});

t.test('size mismatches are refused', async (t) => {
  t.throws(() => confusion(new Uint8Array(3), new Uint8Array(4)), RangeError);
  t.throws(() => hd95(new Uint8Array(4), new Uint8Array(4), 3, 1), RangeError);
});
