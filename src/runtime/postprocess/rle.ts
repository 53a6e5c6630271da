/**
 * Run-length encoding of a binary mask, COCO-style: alternating run lengths starting with a
 * background run (0 when the first pixel is foreground), summing to width*height.
 *
 * Order is ROW-major, unlike COCO's column-major. The counts of an HxW mask here are exactly COCO's
 * counts of the transposed WxH mask, so pycocotools reads them as
 * `mask_utils.decode({'size': [W, H], 'counts': s}).T` (note size [W, H], not [H, W]).
 */
import { assertDims, assertGrayImage, type GrayImage } from '../../image/types.js';
import { skipNonZeros, skipZeros, wordView } from './scan.js';

export interface Rle {
  width: number;
  height: number;
  counts: number[];
}

/** The same runs with counts in COCO's compressed string form (rleToString). */
export interface RleString {
  width: number;
  height: number;
  counts: string;
}

export function encodeRle(mask: GrayImage): Rle {
  assertGrayImage(mask, 'encodeRle');
  const d = mask.data;
  const n = d.length;
  const w32 = wordView(d);
  const counts: number[] = [];
  let p = 0;
  while (p < n) {
    const q = skipZeros(d, w32, p, n);
    counts.push(q - p);
    if (q === n) break;
    p = skipNonZeros(d, w32, q, n);
    counts.push(p - q);
  }
  return { width: mask.width, height: mask.height, counts };
}

/** Rebuilds the 0/1 mask; throws unless the counts are non-negative integers summing to width*height. */
export function decodeRle(rle: Rle | RleString): GrayImage {
  const { width, height } = rle;
  assertDims(width, height, 'decodeRle');
  const counts = typeof rle.counts === 'string' ? rleFromString(rle.counts) : rle.counts;
  const n = width * height;
  const data = new Uint8Array(n);
  let pos = 0;
  for (let k = 0; k < counts.length; k++) {
    const c = counts[k];
    if (!Number.isInteger(c) || c < 0 || pos + c > n) {
      throw new RangeError(`decodeRle: run ${k} (${c}) is invalid or runs past ${width}x${height}`);
    }
    if (k & 1) data.fill(1, pos, pos + c);
    pos += c;
  }
  if (pos !== n) throw new RangeError(`decodeRle: runs cover ${pos} pixels, expected ${width}x${height} = ${n}`);
  return { width, height, data };
}

/**
 * COCO's compressed string (maskApi.c rleToString): from the fourth count on, each count is stored as
 * the difference to the count two before it; every value is then written as 5-bit little-endian
 * groups, each as the character 48 + group, with 0x20 marking "more groups follow" and 0x10 of the
 * last group giving the sign. Arithmetic is done with floor division rather than >>, which would
 * truncate beyond 32 bits.
 */
export function rleToString(counts: readonly number[]): string {
  let s = '';
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (!Number.isInteger(x) || x < 0) throw new RangeError(`rleToString: count ${i} (${x}) is not a non-negative integer`);
    if (i > 2) x -= counts[i - 2];
    for (;;) {
      const q = Math.floor(x / 32);
      let c = x - q * 32;
      x = q;
      const more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
      if (!more) break;
    }
  }
  return s;
}

/** Inverse of rleToString (maskApi.c rleFrString); throws on characters outside '0'..'o' or a truncated value. */
export function rleFromString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let scale = 1;
    for (;;) {
      if (p >= s.length) throw new RangeError('rleFromString: string ends inside a value');
      const c = s.charCodeAt(p++) - 48;
      if (c < 0 || c > 63) throw new RangeError(`rleFromString: invalid character at ${p - 1}`);
      x += (c & 0x1f) * scale;
      scale *= 32;
      if (!(c & 0x20)) {
        if (c & 0x10) x -= scale;
        break;
      }
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}
