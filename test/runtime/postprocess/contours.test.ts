import t from 'tap';
import { findComponents } from '../../../src/runtime/postprocess/components.js';
import {
  componentContours,
  simplifyClosed,
  simplifyClosedCapped,
  simplifyPath,
  traceOuterContour,
} from '../../../src/runtime/postprocess/contours.js';
import { mulberry32 } from '../../../src/data/random.js';
import type { GrayImage } from '../../../src/image/types.js';
import { maskFrom, pairs } from './fixtures/masks.js';
import { same } from '../../helpers/same.js';

/** Raw (unsimplified) outer contour of the first component. */
function trace(mask: GrayImage): [number, number][] {
  const { labelling: l } = findComponents(mask);
  return pairs(traceOuterContour(l.mask, l.start[0]));
}

t.test('Moore tracing of small shapes, clockwise from the first raster pixel', async (t) => {
  same(t, trace(maskFrom(['...', '.#.'])), [[1, 1]], 'one pixel');
  same(t, trace(maskFrom(['#.', '.#'])), [[0, 0], [1, 1]], 'diagonal pair');
  same(t, trace(maskFrom(['.#', '#.'])), [[1, 0], [0, 1]], 'anti-diagonal pair');
  t.same(
    trace(maskFrom(['###', '###'])),
    [[0, 0], [1, 0], [2, 0], [2, 1], [1, 1], [0, 1]],
    '3x2 block',
  );
  // A U of 1-pixel arms: the arms are walked down and back up (each pixel once per side).
  same(t, trace(maskFrom(['#...#', '#...#', '#...#', '#####'])), [
    [0, 0], [0, 1], [0, 2], [1, 3], [2, 3], [3, 3], [4, 2], [4, 1], [4, 0],
    [4, 1], [4, 2], [4, 3], [3, 3], [2, 3], [1, 3], [0, 3], [0, 2], [0, 1],
  ]);
});

t.test('a ring gives its outer rectangle only', async (t) => {
  const mask = maskFrom([
    '.......',
    '.#####.',
    '.#...#.',
    '.#...#.',
    '.#####.',
    '.......',
  ]);
  const raw = trace(mask);
  t.equal(raw.length, 14, 'every ring pixel is on the outer boundary');
  const contours = componentContours(findComponents(mask).labelling);
  t.equal(contours.length, 1);
  t.same(contours[0], { component: 0, points: [1, 1, 5, 1, 5, 4, 1, 4] });
});

t.test('a filled rectangle simplifies to its 4 corners', async (t) => {
  const rows: string[] = [];
  for (let y = 0; y < 9; y++) {
    let r = '';
    for (let x = 0; x < 12; x++) r += x >= 2 && x <= 9 && y >= 3 && y <= 7 ? '#' : '.';
    rows.push(r);
  }
  const found = findComponents(maskFrom(rows));
  const [c] = componentContours(found.labelling);
  t.same(pairs(c.points), [[2, 3], [9, 3], [9, 7], [2, 7]]);
  t.same(pairs(componentContours(found.labelling, { epsilon: 0 })[0].points), [[2, 3], [9, 3], [9, 7], [2, 7]]);
});

t.test('RDP on paths', async (t) => {
  t.same(simplifyPath([0, 0, 1, 0, 2, 0, 3, 0], 0), [0, 0, 3, 0], 'collinear points go');
  t.same(simplifyPath([0, 0, 2, 1, 4, 0], 1.5), [0, 0, 4, 0], 'within epsilon');
  t.same(simplifyPath([0, 0, 2, 2, 4, 0], 1.5), [0, 0, 2, 2, 4, 0], 'beyond epsilon');
  t.same(simplifyPath([5, 5], 1), [5, 5]);
  t.same(simplifyClosed([3, 3, 3, 3], 1), [3, 3]);
  t.throws(() => simplifyPath([1, 2, 3], 1), RangeError);
  t.throws(() => simplifyPath([0, 0, 1, 1], -1), RangeError);
});

t.test('the point cap coarsens epsilon until the contour fits', async (t) => {
  const n = 101;
  const rows: string[] = [];
  for (let y = 0; y < n; y++) {
    let r = '';
    for (let x = 0; x < n; x++) r += (x - 50) ** 2 + (y - 50) ** 2 <= 45 ** 2 ? '#' : '.';
    rows.push(r);
  }
  const found = findComponents(maskFrom(rows));
  const fine = componentContours(found.labelling, { epsilon: 0.5, maxPoints: 10000 })[0].points.length / 2;
  const capped = componentContours(found.labelling, { epsilon: 0.5, maxPoints: 12 })[0].points;
  t.ok(fine > 12, `uncapped contour has ${fine} points`);
  t.ok(capped.length / 2 <= 12 && capped.length / 2 >= 4, `capped contour has ${capped.length / 2} points`);
  t.ok(capped.every(Number.isInteger), 'integer points');
  const raw = traceOuterContour(found.labelling.mask, found.labelling.start[0]);
  t.same(simplifyClosedCapped(raw, 0, 2).length, 4, 'cap 2 leaves the first and the farthest point');
  t.throws(() => simplifyClosedCapped(raw, 1, 1), RangeError);
});

t.test('contours follow the component order and tolerate a full frame', async (t) => {
  const found = findComponents(maskFrom(['#.....', '......', '..####', '..####']));
  t.same(componentContours(found.labelling, { epsilon: 0.5 }), [
    { component: 0, points: [2, 2, 5, 2, 5, 3, 2, 3] },
    { component: 1, points: [0, 0] },
  ]);
  // At the default 1.5 px the 4x2 block is thinner than epsilon: (5, 2) is 0.95 px off the diagonal.
  t.same(componentContours(found.labelling)[0].points, [2, 2, 5, 3]);
  const w = 1000, h = 800;
  const full = findComponents({ width: w, height: h, data: new Uint8Array(w * h).fill(1) });
  t.same(componentContours(full.labelling)[0].points, [0, 0, w - 1, 0, w - 1, h - 1, 0, h - 1]);
  t.throws(() => traceOuterContour(found.labelling.mask, 1), RangeError, 'background start');
  t.throws(() => traceOuterContour(found.labelling.mask, 15), RangeError, 'not a first pixel');
});

t.test('on random masks the trace closes, stays in its component and walks all of its outer boundary', async (t) => {
  const rng = mulberry32(99);
  let problems = 0;
  let traced = 0;
  for (let trial = 0; trial < 60; trial++) {
    const w = 2 + Math.floor(rng() * 30);
    const h = 2 + Math.floor(rng() * 30);
    const density = 0.3 + rng() * 0.5;
    const data = new Uint8Array(w * h).map(() => (rng() < density ? 1 : 0));
    const mask = { width: w, height: h, data };
    // Outside background: 4-connected to the border (the complement of 8-connected foreground).
    const outside = new Uint8Array(w * h);
    const stack: number[] = [];
    for (let i = 0; i < w * h; i++) {
      const x = i % w, y = (i - x) / w;
      if (!data[i] && (x === 0 || y === 0 || x === w - 1 || y === h - 1)) {
        outside[i] = 1;
        stack.push(i);
      }
    }
    while (stack.length) {
      const p = stack.pop() as number;
      const x = p % w, y = (p - x) / w;
      for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
        const nx = x + dx, ny = y + dy;
        const q = ny * w + nx;
        if (nx >= 0 && ny >= 0 && nx < w && ny < h && !data[q] && !outside[q]) {
          outside[q] = 1;
          stack.push(q);
        }
      }
    }
    const isOutside = (x: number, y: number): boolean => x < 0 || y < 0 || x >= w || y >= h || outside[y * w + x] === 1;
    const found = findComponents(mask, { maxComponents: w * h });
    // Component membership by flood fill from each start, to check the trace against.
    for (const start of found.labelling.start) {
      const member = new Uint8Array(w * h);
      member[start] = 1;
      const st = [start];
      while (st.length) {
        const p = st.pop() as number;
        const x = p % w, y = (p - x) / w;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const nx = x + dx, ny = y + dy, q = ny * w + nx;
            if (nx >= 0 && ny >= 0 && nx < w && ny < h && data[q] && !member[q]) {
              member[q] = 1;
              st.push(q);
            }
          }
        }
      }
      const pts = pairs(traceOuterContour(mask, start));
      traced++;
      const on = new Set(pts.map(([x, y]) => y * w + x));
      for (let k = 0; k < pts.length; k++) {
        const [x, y] = pts[k];
        const [nx, ny] = pts[(k + 1) % pts.length];
        if (!member[y * w + x]) problems++;
        if (pts.length > 1 && (Math.max(Math.abs(nx - x), Math.abs(ny - y)) !== 1)) problems++;
      }
      for (let i = 0; i < w * h; i++) {
        if (!member[i]) continue;
        const x = i % w, y = (i - x) / w;
        const boundary = isOutside(x + 1, y) || isOutside(x - 1, y) || isOutside(x, y + 1) || isOutside(x, y - 1);
        if (boundary && !on.has(i)) problems++;
      }
    }
  }
  t.equal(problems, 0, `${traced} contours checked`);
});
