import t from 'tap';
import { mulberry32 } from '../../../src/data/random.js';
import { decodeRle, encodeRle, rleFromCounts, rleFromString, rleToString } from '../../../src/runtime/postprocess/rle.js';
import { native } from '../native/fixtures/native.js';
import { firstDifference, maskFrom } from './fixtures/masks.js';
import { same } from '../../helpers/same.js';

/**
 * An independent decoder written from pycocotools' maskApi.c, not from our encoder:
 *
 *   rleFrString: per value, x |= (c & 0x1f) << 5*k for each char c - 48, while c & 0x20; then if the
 *   last char has 0x10, x |= -1 << 5*k (sign extension); from the fourth value on (m > 2),
 *   x += cnts[m-2].
 *   rleDecode: v = 0; for each count, write v count times into M, then v = !v; M is h x w in
 *   column-major (Fortran) order, so the pixel (y, x) is M[x*h + y].
 *
 * Returns the mask as row-major rows of 0/1, so the assertions read like the picture.
 */
function cocoDecode(rle: { size: [number, number]; counts: string | number[] }): number[][] {
  const [h, w] = rle.size;
  let cnts: number[];
  if (typeof rle.counts === 'string') {
    cnts = [];
    const s = rle.counts;
    let p = 0;
    while (p < s.length) {
      let x = 0;
      let k = 0;
      let more = true;
      while (more) {
        const c = s.charCodeAt(p) - 48;
        x += (c & 0x1f) * 2 ** (5 * k); // |= on disjoint bits; no 32-bit shifts in JS
        more = (c & 0x20) !== 0;
        p++;
        k++;
        if (!more && c & 0x10) x -= 2 ** (5 * k); // x |= -1 << 5k for a value below 2^(5k)
      }
      if (cnts.length > 2) x += cnts[cnts.length - 2];
      cnts.push(x);
    }
  } else {
    cnts = rle.counts;
  }
  const M = new Array<number>(h * w).fill(-1);
  let i = 0;
  let v = 0;
  for (const c of cnts) {
    for (let k = 0; k < c; k++) M[i++] = v;
    v = v ? 0 : 1;
  }
  if (i !== h * w) throw new Error(`counts cover ${i} pixels, not ${h}x${w}`);
  const rows: number[][] = [];
  for (let y = 0; y < h; y++) {
    const row: number[] = [];
    for (let x = 0; x < w; x++) row.push(M[x * h + y]);
    rows.push(row);
  }
  return rows;
}

const rowsOf = (mask: { width: number; height: number; data: Uint8Array }): number[][] =>
  Array.from({ length: mask.height }, (_, y) => Array.from(mask.data.subarray(y * mask.width, (y + 1) * mask.width)));

t.test('hand-computed COCO counts: column-major, starting with a background run, size [h, w]', async (t) => {
  same(t, encodeRle(maskFrom(['...', '...'])), { size: [2, 3], counts: [6] }, 'empty');
  same(t, encodeRle(maskFrom(['###', '###'])).counts, [0, 6], 'full');
  // Column-major: (0,0) (1,0) | (0,1) (1,1) | (0,2) (1,2)
  same(t, encodeRle(maskFrom(['...', '.#.'])).counts, [3, 1, 2], 'one pixel: 3rd in column order');
  same(t, encodeRle(maskFrom(['##.', '...'])).counts, [0, 1, 1, 1, 3], 'a row run is split by columns');
  same(t, encodeRle(maskFrom(['#..', '#..'])).counts, [0, 2, 4], 'a column run stays one run');
  same(t, encodeRle(maskFrom(['.#', '.#', '#.'])).counts, [2, 3, 1], 'runs continue from one column into the next');
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

t.test('the maskApi.c decoder reads our counts and strings back as the mask', async (t) => {
  const pictures = [['...', '.#.'], ['##.', '...'], ['.#', '.#', '#.'], ['#.......', '.#......', '........', '....###.', '....###.', '........']];
  for (const rows of pictures) {
    const mask = maskFrom(rows);
    const rle = encodeRle(mask);
    same(t, cocoDecode(rle), rowsOf(mask), `counts: ${rows.join('/')}`);
    same(t, cocoDecode({ size: rle.size, counts: rleToString(rle.counts) }), rowsOf(mask), `string: ${rows.join('/')}`);
  }
  const rng = mulberry32(20261203);
  for (let trial = 0; trial < 100; trial++) {
    const width = 1 + Math.floor(rng() * 40);
    const height = 1 + Math.floor(rng() * 40);
    const data = new Uint8Array(width * height);
    const pFlip = rng() < 0.5 ? rng() : rng() * 0.05;
    let v = rng() < 0.5 ? 1 : 0;
    for (let i = 0; i < data.length; i++) {
      if (rng() < pFlip) v ^= 1;
      data[i] = v;
    }
    const mask = { width, height, data };
    const rle = encodeRle(mask);
    same(t, cocoDecode({ size: rle.size, counts: rleToString(rle.counts) }), rowsOf(mask), `trial ${trial} (${width}x${height})`);
  }
});

t.test('round trip on seeded random masks', async (t) => {
  const rng = mulberry32(20261125);
  for (let trial = 0; trial < 200; trial++) {
    const width = 1 + Math.floor(rng() * 64);
    const height = 1 + Math.floor(rng() * 64);
    const data = new Uint8Array(width * height + 1).subarray(trial & 1, width * height + (trial & 1));
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
    same(t, rleFromString(s), rle.counts);
    t.equal(firstDifference(decodeRle({ size: rle.size, counts: s }).data, data), -1, `trial ${trial} string`);
  }
});

t.test('decodeRle and rleFromCounts validate counts', async (t) => {
  t.throws(() => decodeRle({ size: [2, 2], counts: [1, 2] }), RangeError, 'too short');
  t.throws(() => decodeRle({ size: [2, 2], counts: [3, 2] }), RangeError, 'too long');
  t.throws(() => decodeRle({ size: [2, 2], counts: [1, -1, 4] }), RangeError, 'negative');
  t.throws(() => decodeRle({ size: [2, 2], counts: [1.5, 2.5] }), RangeError, 'fractional');
  same(t, Array.from(decodeRle({ size: [2, 2], counts: [0, 0, 1, 3] }).data), [0, 1, 1, 1], 'empty runs allowed; column-major');
  t.throws(() => rleFromCounts(Uint32Array.of(1, 2), 2, 2), /cover 3 pixels, expected 2x2/);
  same(t, rleFromCounts(Uint32Array.of(1, 3), 2, 2), { size: [2, 2], counts: [1, 3] });
});

const { binding, skip } = native();

t.test('native counts (the pipeline computes them off the JS thread) equal the TS reference', { skip }, async (t) => {
  const rng = mulberry32(7);
  // Widths around the native 64-column block, and a frame-size mask.
  const sizes: [number, number][] = [[1, 1], [63, 5], [64, 7], [65, 9], [130, 33], [1920, 1080]];
  for (const [width, height] of sizes) {
    const data = new Uint8Array(width * height);
    let v = 0;
    for (let i = 0; i < data.length; i++) {
      if (rng() < 0.01) v ^= 1;
      data[i] = v;
    }
    const counts = binding!.cocoRle(data, width, height);
    const ref = encodeRle({ width, height, data });
    t.equal(firstDifference(counts, ref.counts), -1, `${width}x${height}: ${ref.counts.length} runs`);
  }
  t.throws(() => binding!.cocoRle(new Uint8Array(5), 2, 2), { code: 'ERR_INVALID_ARGUMENT', message: /5 bytes is not 2x2/ });
});
