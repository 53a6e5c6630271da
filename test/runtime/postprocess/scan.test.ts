import t from 'tap';
import { mulberry32 } from '../../../src/data/random.js';
import { skipNonZeros, skipZeros, wordView } from '../../../src/runtime/postprocess/scan.js';

function naive(d: Uint8Array, from: number, end: number, zero: boolean): number {
  let i = from;
  while (i < end && (d[i] === 0) === zero) i++;
  return i;
}

t.test('word scans agree with byte scans, aligned or not, for any bounds', async (t) => {
  const rng = mulberry32(7);
  let bad = 0;
  let checks = 0;
  for (let trial = 0; trial < 300; trial++) {
    const len = 1 + Math.floor(rng() * 70);
    const buf = new Uint8Array(len + 3);
    const density = rng() < 0.3 ? 0.02 : rng() < 0.5 ? 0.98 : rng();
    for (let i = 0; i < buf.length; i++) buf[i] = rng() < density ? 1 + Math.floor(rng() * 255) : 0;
    const shift = trial % 4;
    const d = buf.subarray(shift, shift + len);
    t.equal(wordView(d) === null, shift !== 0, 'a view only when 4-aligned');
    const w32 = wordView(d);
    for (let k = 0; k < 20; k++) {
      const from = Math.floor(rng() * (len + 1));
      const end = from + Math.floor(rng() * (len - from + 1));
      checks++;
      if (skipZeros(d, w32, from, end) !== naive(d, from, end, true)) bad++;
      if (skipNonZeros(d, w32, from, end) !== naive(d, from, end, false)) bad++;
      if (skipZeros(d, null, from, end) !== naive(d, from, end, true)) bad++;
    }
  }
  t.equal(bad, 0, `${checks} random ranges`);
  // Bytes like 0x80 and 0x01 next to zeros are where a wrong zero-byte test would slip.
  const d = Uint8Array.from([0x80, 0x01, 0xff, 0x7f, 0x80, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01]);
  t.equal(skipNonZeros(d, wordView(d), 0, d.length), 5);
  t.equal(skipNonZeros(d, wordView(d), 6, d.length), d.length);
  t.equal(skipZeros(d, wordView(d), 5, 6), 6);
});
