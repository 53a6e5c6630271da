import t from 'tap';
import { normalizeValue } from '../../src/model/preprocessing.js';
import {
  letterboxGeometry,
  letterboxInverse,
  preprocessRgb,
  resizeMaskNearest,
  resizeProbBilinear,
} from '../../src/image/preprocess.js';
import type { RgbImage } from '../../src/image/types.js';
import { same } from '../helpers/same.js';

/** An RGB image whose G is 255 - R and B is a constant, from a grid of R values (rows). */
function rgbFromR(rows: number[][], b = 7): RgbImage {
  const height = rows.length;
  const width = rows[0].length;
  const data = new Uint8Array(width * height * 3);
  rows.flat().forEach((r, i) => {
    data[i * 3] = r;
    data[i * 3 + 1] = 255 - r;
    data[i * 3 + 2] = b;
  });
  return { width, height, data };
}

/** The expected NCHW tensor from hand-computed raw (unnormalised) R values; 'pad' is a 0 output. */
function expectedFromRawR(raw: (number | 'pad')[][], b = 7): number[] {
  const plane = raw.flat();
  const ch = (c: 0 | 1 | 2, f: (v: number) => number): number[] =>
    plane.map((v) => (v === 'pad' ? 0 : Math.fround(normalizeValue(f(v), c))));
  return [...ch(0, (v) => v), ...ch(1, (v) => 255 - v), ...ch(2, () => b)];
}

// 2x2 source: R = [[0, 100], [200, 40]]. For 2 -> 4 the sample positions are
// s = (k + 0.5) * 2 / 4 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
const SRC_2x2 = [
  [0, 100],
  [200, 40],
];
const UP_4x4 = [
  [0, 25, 75, 100],
  [50, 58.75, 76.25, 85],
  [150, 126.25, 78.75, 55],
  [200, 160, 80, 40],
];

t.test('stretch 2x2 -> 4x4 matches hand-computed bilinear values exactly', async (t) => {
  const out = preprocessRgb(rgbFromR(SRC_2x2), { width: 4, height: 4 });
  t.equal(out.length, 3 * 16);
  same(t, Array.from(out), expectedFromRawR(UP_4x4));
  same(t, Array.from(preprocessRgb(rgbFromR(SRC_2x2), { width: 4, height: 4 }, 'stretch')), Array.from(out));
});

t.test('stretch 4x4 -> 2x2 and non-square sizes', async (t) => {
  // s = (k + 0.5) * 4 / 2 - 0.5 = 0.5, 2.5: the mean of each 2x2 block.
  const src = rgbFromR([
    [0, 10, 20, 30],
    [40, 50, 60, 70],
    [80, 90, 100, 110],
    [120, 130, 140, 150],
  ]);
  same(t, Array.from(preprocessRgb(src, { width: 2, height: 2 })), expectedFromRawR([[25, 45], [105, 125]]));
  // Width 4 -> 2 (s = 0.5, 2.5), height 4 -> 1 (s = 1.5).
  same(t, Array.from(preprocessRgb(src, { width: 2, height: 1 })), expectedFromRawR([[65, 85]]));
});

t.test('identity size copies normalised pixels', async (t) => {
  const w = 5, h = 3;
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 53 + 11) & 255;
  const out = preprocessRgb({ width: w, height: h, data }, { width: w, height: h });
  const expected: number[] = [];
  for (const c of [0, 1, 2] as const) {
    for (let p = 0; p < w * h; p++) expected.push(Math.fround(normalizeValue(data[p * 3 + c], c)));
  }
  same(t, Array.from(out), expected);
});

t.test('letterbox geometry', async (t) => {
  t.same(letterboxGeometry(1920, 1080, 256, 256), { scale: 256 / 1920, newW: 256, newH: 144, ox: 0, oy: 56 });
  t.same(letterboxGeometry(1, 2, 4, 4), { scale: 2, newW: 2, newH: 4, ox: 1, oy: 0 });
  t.same(letterboxGeometry(3, 1, 4, 4), { scale: 4 / 3, newW: 4, newH: 1, ox: 0, oy: 1 });
});

t.test('letterbox pads with 0 and resamples the content rectangle', async (t) => {
  // 4x2 into 4x4: scale 1, content rows 1-2 are the source itself, rows 0 and 3 are padding.
  const wide = [
    [0, 10, 20, 30],
    [40, 50, 60, 70],
  ];
  const pad: 'pad'[] = ['pad', 'pad', 'pad', 'pad'];
  t.same(
    Array.from(preprocessRgb(rgbFromR(wide), { width: 4, height: 4 }, 'letterbox')),
    expectedFromRawR([pad, ...wide, pad]),
  );

  // 2x1 into 4x4: scale 2, content 4x2 at oy = 1; vertically every sample clamps to the one row.
  t.same(
    Array.from(preprocessRgb(rgbFromR([[0, 100]]), { width: 4, height: 4 }, 'letterbox')),
    expectedFromRawR([pad, [0, 25, 75, 100], [0, 25, 75, 100], pad]),
  );

  // 1x2 into 4x4: scale 2, content 2x4 at ox = 1; columns 0 and 3 are padding.
  // Vertical s = (k + 0.5) * 2 / 4 - 0.5 as in the 2 -> 4 case.
  t.same(
    Array.from(preprocessRgb(rgbFromR([[0], [200]]), { width: 4, height: 4 }, 'letterbox')),
    expectedFromRawR([
      ['pad', 0, 0, 'pad'],
      ['pad', 50, 50, 'pad'],
      ['pad', 150, 150, 'pad'],
      ['pad', 200, 200, 'pad'],
    ]),
  );

  // Same aspect ratio: letterbox equals stretch.
  t.same(
    Array.from(preprocessRgb(rgbFromR(SRC_2x2), { width: 4, height: 4 }, 'letterbox')),
    expectedFromRawR(UP_4x4),
  );
});

t.test('invalid arguments', async (t) => {
  t.throws(() => preprocessRgb({ width: 2, height: 2, data: new Uint8Array(11) }, { width: 4, height: 4 }), RangeError);
  t.throws(() => preprocessRgb(rgbFromR(SRC_2x2), { width: 0, height: 4 }), RangeError);
  t.throws(() => preprocessRgb(rgbFromR(SRC_2x2), { width: 2.5, height: 4 }), RangeError);
});

t.test('resizeMaskNearest', async (t) => {
  const mask = { width: 2, height: 2, data: Uint8Array.from([1, 0, 0, 1]) };
  t.same(
    Array.from(resizeMaskNearest(mask, 4, 4).data),
    [1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1],
  );
  // 4 -> 2 picks columns/rows floor((k + 0.5) * 2) = 1 and 3.
  const big = { width: 4, height: 4, data: Uint8Array.from({ length: 16 }, (_, i) => i) };
  same(t, Array.from(resizeMaskNearest(big, 2, 2).data), [5, 7, 13, 15]);
  // 3 -> 2: floor(0.75) = 0, floor(2.25) = 2.
  const three = { width: 3, height: 1, data: Uint8Array.from([4, 5, 6]) };
  same(t, Array.from(resizeMaskNearest(three, 2, 1).data), [4, 6]);
});

t.test('resizeProbBilinear uses the same bilinear formula', async (t) => {
  const prob = Float32Array.from(SRC_2x2.flat());
  same(t, Array.from(resizeProbBilinear(prob, 2, 2, 4, 4)), UP_4x4.flat());
  const id = Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
  same(t, Array.from(resizeProbBilinear(id, 3, 2, 3, 2)), Array.from(id));
  t.throws(() => resizeProbBilinear(prob, 3, 2, 4, 4), RangeError);
});

t.test('letterboxInverse crops the content rectangle and resizes it back', async (t) => {
  // 4x2 frame in a 4x4 model map: content is rows 1-2, scale 1, so the inverse is a crop.
  const model = Float32Array.from({ length: 16 }, (_, i) => i / 16);
  same(t, Array.from(letterboxInverse(model, 4, 4, 4, 2)), Array.from(model.subarray(4, 12)));
  // 1x2 frame: content columns 1-2 of each row; 2 -> 1 samples at s = 0.5, the mean of the two.
  const cols = Float32Array.from([9, 0.25, 0.75, 9, 9, 0.5, 1, 9, 9, 0, 0, 9, 9, 1, 1, 9]);
  // Rows 4 -> 2: s = 0.5 and 2.5, so each output row averages two content rows.
  const expected = [(0.5 + 0.75) / 2, (0 + 1) / 2];
  same(t, Array.from(letterboxInverse(cols, 4, 4, 1, 2)), expected);
});

t.test('a 1920x1080 frame reaches 256x256 with the right values (no fixed-size or aspect slip)', async (t) => {
  // A camera-sized, non-square frame: constant G and B planes, R rising left to right. Every output
  // G and B value is the normalised constant; R rises along each row and is the same on every row.
  const w = 1920, h = 1080;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = Math.floor((x * 256) / w);
      data[i + 1] = 100;
      data[i + 2] = 7;
    }
  }
  const out = preprocessRgb({ width: w, height: h, data }, { width: 256, height: 256 });
  t.equal(out.length, 3 * 256 * 256);
  const plane = 256 * 256;
  const g = Math.fround(normalizeValue(100, 1));
  const b = Math.fround(normalizeValue(7, 2));
  t.equal(out.subarray(plane, 2 * plane).findIndex((v) => v !== g), -1, 'G is constant');
  t.equal(out.subarray(2 * plane).findIndex((v) => v !== b), -1, 'B is constant');
  const row0 = Array.from(out.subarray(0, 256));
  t.ok(row0.every((v, x) => x === 0 || v >= row0[x - 1]), 'R rises along a row');
  t.ok(row0[255] - row0[0] > Math.fround(normalizeValue(250, 0)) - Math.fround(normalizeValue(5, 0)), 'R spans the whole frame width');
  for (const y of [1, 128, 255]) same(t, Array.from(out.subarray(y * 256, (y + 1) * 256)), row0, `row ${y} equals row 0`);
});
