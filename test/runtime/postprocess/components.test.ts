import t from 'tap';
import { findComponents } from '../../../src/runtime/postprocess/components.js';
import { maskFrom } from './fixtures/masks.js';
import { same } from '../../helpers/same.js';

t.test('empty mask has no components', async (t) => {
  const r = findComponents(maskFrom(['....', '....']));
  t.same(r.components, []);
  t.equal(r.total, 0);
  t.equal(r.dropped, 0);
  t.same(r.labelling.start, []);
});

t.test('full mask is one component covering everything', async (t) => {
  const r = findComponents(maskFrom(['####', '####', '####']), { prob: new Float32Array(12).fill(0.75) });
  t.same(r.components, [
    {
      area: 12,
      areaPercent: 100,
      bbox: { x: 0, y: 0, width: 4, height: 3 },
      centroid: { x: 1.5, y: 1 },
      meanProbability: 0.75,
    },
  ]);
});

t.test('one pixel', async (t) => {
  const r = findComponents(maskFrom(['....', '..#.', '....', '....']));
  t.same(r.components, [{ area: 1, areaPercent: 6.25, bbox: { x: 2, y: 1, width: 1, height: 1 }, centroid: { x: 2, y: 1 } }]);
  t.same(r.labelling.start, [6]);
});

t.test('two diagonal pixels are one 8-connected component', async (t) => {
  const a = findComponents(maskFrom(['#.', '.#']));
  t.equal(a.total, 1);
  t.same(a.components[0].bbox, { x: 0, y: 0, width: 2, height: 2 });
  t.same(a.components[0].centroid, { x: 0.5, y: 0.5 });
  // The anti-diagonal exercises the NE neighbour.
  const b = findComponents(maskFrom(['.#', '#.']));
  t.equal(b.total, 1);
  t.equal(b.components[0].area, 2);
});

t.test('a ring is one component', async (t) => {
  const r = findComponents(
    maskFrom([
      '.......',
      '.#####.',
      '.#...#.',
      '.#...#.',
      '.#####.',
      '.......',
    ]),
  );
  t.equal(r.total, 1);
  t.same(r.components[0], {
    area: 14,
    areaPercent: 33.3333,
    bbox: { x: 1, y: 1, width: 5, height: 4 },
    centroid: { x: 3, y: 2.5 },
  });
});

t.test('U shape: two provisional sets merged by union-find', async (t) => {
  // The runs of columns 0 and 4 form separate sets for three rows; row 3 joins them.
  const r = findComponents(maskFrom(['#...#', '#...#', '#...#', '#####']));
  t.equal(r.total, 1);
  t.same(r.components[0], {
    area: 11,
    areaPercent: 55,
    bbox: { x: 0, y: 0, width: 5, height: 4 },
    centroid: { x: 2, y: 1.91 },
  });
  t.same(r.labelling.start, [0]);
  // An upside-down U and a W: one run touching several runs of the row above.
  t.equal(findComponents(maskFrom(['#####', '#...#', '#...#'])).total, 1);
  t.equal(findComponents(maskFrom(['#.#.#', '#.#.#', '#####'])).total, 1);
  // A staircase forces a chain of merges through NW/NE.
  const w = findComponents(maskFrom(['#.#.#', '.#.#.', '#...#']));
  t.equal(w.total, 1);
  t.equal(w.components[0].area, 7);
});

t.test('W+NE and NW+NE merges', async (t) => {
  t.equal(findComponents(maskFrom(['#.#', '##.'])).total, 1, 'W joins NE');
  t.equal(findComponents(maskFrom(['#.#', '.#.'])).total, 1, 'NW joins NE');
  t.equal(findComponents(maskFrom(['#..#', '....', '#..#'])).total, 4);
});

t.test('sorted by area, ties in raster order; minArea and maxComponents with dropped count', async (t) => {
  const mask = maskFrom([
    '#..##..#',
    '...##...',
    '........',
    '###....#',
  ]);
  const all = findComponents(mask);
  t.same(
    all.components.map((c) => [c.area, c.bbox.x, c.bbox.y]),
    [
      [4, 3, 0],
      [3, 0, 3],
      [1, 0, 0],
      [1, 7, 0],
      [1, 7, 3],
    ],
  );
  t.equal(all.total, 5);
  t.equal(all.dropped, 0);
  const big = findComponents(mask, { minArea: 2 });
  t.same(big.components.map((c) => c.area), [4, 3]);
  t.equal(big.dropped, 3);
  const capped = findComponents(mask, { maxComponents: 3 });
  t.same(capped.components.map((c) => c.area), [4, 3, 1]);
  t.equal(capped.dropped, 2);
  t.same(capped.labelling.start, [3, 24, 0]);
  t.equal(findComponents(mask, { maxComponents: 0 }).dropped, 5);
  t.throws(() => findComponents(mask, { minArea: -1 }), RangeError);
  t.throws(() => findComponents(mask, { maxComponents: 1.5 }), RangeError);
  t.throws(() => findComponents(mask, { prob: new Float32Array(3) }), RangeError);
});

t.test('mean probability is per component', async (t) => {
  const mask = maskFrom(['##..#']);
  const prob = Float32Array.from([0.5, 1, 0, 0, 0.75]);
  const r = findComponents(mask, { prob });
  same(t, r.components.map((c) => c.meanProbability), [0.75, 0.75]);
});

t.test('agrees with a flood-fill reference on random masks', async (t) => {
  let seed = 12345;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let trial = 0; trial < 30; trial++) {
    const w = 1 + Math.floor(rand() * 40);
    const h = 1 + Math.floor(rand() * 40);
    const density = rand();
    // Odd trials use an unaligned view, which the word-wise run scan must handle.
    const data = new Uint8Array(w * h + 1).map(() => (rand() < density ? 1 : 0)).subarray(trial & 1, w * h + (trial & 1));
    const r = findComponents({ width: w, height: h, data }, { maxComponents: w * h });
    // Reference: iterative flood fill with an explicit stack.
    const seen = new Uint8Array(w * h);
    const areas: number[] = [];
    for (let i = 0; i < w * h; i++) {
      if (!data[i] || seen[i]) continue;
      let area = 0;
      const stack = [i];
      seen[i] = 1;
      while (stack.length) {
        const p = stack.pop() as number;
        area++;
        const px = p % w, py = (p - px) / w;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const x = px + dx, y = py + dy;
            if (x < 0 || y < 0 || x >= w || y >= h) continue;
            const q = y * w + x;
            if (data[q] && !seen[q]) {
              seen[q] = 1;
              stack.push(q);
            }
          }
        }
      }
      areas.push(area);
    }
    areas.sort((a, b) => b - a);
    t.same(r.components.map((c) => c.area), areas, `trial ${trial}: ${w}x${h}`);
  }
});
