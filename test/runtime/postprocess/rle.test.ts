import t from 'tap';
import { mulberry32 } from '../../../src/data/random.js';
import { decodeRle, encodeRle, rleFromString, rleToString } from '../../../src/runtime/postprocess/rle.js';
import { firstDifference, maskFrom } from './fixtures/masks.js';

t.test('hand-computed row-major counts start with a background run', async (t) => {
  t.same(encodeRle(maskFrom(['..', '..'])), { width: 2, height: 2, counts: [4] }, 'empty');
  t.same(encodeRle(maskFrom(['##', '##'])).counts, [0, 4], 'full');
  t.same(encodeRle(maskFrom(['...', '.#.'])).counts, [4, 1, 1], 'one pixel');
  t.same(encodeRle(maskFrom(['.##', '#..'])).counts, [1, 3, 2], 'runs continue across rows');
  t.same(encodeRle(maskFrom(['.##', '.#.'])).counts, [1, 2, 1, 1, 1]);
  t.same(encodeRle(maskFrom(['#.', '.#'])).counts, [0, 1, 2, 1]);
});

t.test('COCO compressed strings', async (t) => {
  t.equal(rleToString([0, 4]), '04');
  t.equal(rleToString([1, 2, 1, 2]), '1210', 'the fourth count is stored as 2 - 2');
  t.equal(rleToString([10, 3, 1, 1]), ':31N', 'negative difference -2: group 30 with the sign bit');
  t.equal(rleToString([100]), 'T3', '100 = 4 + 3*32, continuation bit on the first group');
  t.equal(rleToString([16]), '`0', '16 needs a second group so that it does not read as negative');
  for (const s of ['04', '1210', ':31N', 'T3', '`0']) t.equal(rleToString(rleFromString(s)), s);
  t.same(rleFromString(':31N'), [10, 3, 1, 1]);
  t.same(rleFromString(''), []);
  t.throws(() => rleFromString('T'), RangeError, 'ends inside a value');
  t.throws(() => rleFromString('1 2'), RangeError, 'invalid character');
  t.throws(() => rleToString([1, -2]), RangeError);
  const big = [2 ** 40, 3, 2 ** 40 + 7, 0, 1];
  t.same(rleFromString(rleToString(big)), big, 'beyond 32 bits');
});

t.test('round trip on seeded random masks', async (t) => {
  const rng = mulberry32(20261125);
  for (let trial = 0; trial < 200; trial++) {
    const width = 1 + Math.floor(rng() * 64);
    const height = 1 + Math.floor(rng() * 64);
    // Odd trials use an unaligned view, which the word-wise run scan must handle.
    const data = new Uint8Array(width * height + 1).subarray(trial & 1, width * height + (trial & 1));
    // Mix i.i.d. noise with runs so both short and long counts occur.
    const pFlip = rng() < 0.5 ? rng() : rng() * 0.05;
    let v = rng() < 0.5 ? 1 : 0;
    for (let i = 0; i < data.length; i++) {
      if (rng() < pFlip) v ^= 1;
      data[i] = v;
    }
    const mask = { width, height, data };
    const rle = encodeRle(mask);
    t.equal(rle.counts.reduce((a, b) => a + b, 0), width * height);
    t.ok(rle.counts.slice(1).every((c) => c > 0), 'only the first run may be empty');
    t.equal(firstDifference(decodeRle(rle).data, data), -1, `trial ${trial} counts`);
    const s = rleToString(rle.counts);
    t.same(rleFromString(s), rle.counts);
    t.equal(firstDifference(decodeRle({ width, height, counts: s }).data, data), -1, `trial ${trial} string`);
  }
});

t.test('decodeRle validates counts', async (t) => {
  t.throws(() => decodeRle({ width: 2, height: 2, counts: [1, 2] }), RangeError, 'too short');
  t.throws(() => decodeRle({ width: 2, height: 2, counts: [3, 2] }), RangeError, 'too long');
  t.throws(() => decodeRle({ width: 2, height: 2, counts: [1, -1, 4] }), RangeError, 'negative');
  t.throws(() => decodeRle({ width: 2, height: 2, counts: [1.5, 2.5] }), RangeError, 'fractional');
  t.same(Array.from(decodeRle({ width: 2, height: 2, counts: [0, 0, 1, 3] }).data), [0, 1, 1, 1], 'empty runs allowed');
});
