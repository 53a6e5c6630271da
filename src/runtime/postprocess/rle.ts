/**
 * Run-length encoding of a binary mask exactly as COCO (pycocotools' maskApi.c rleEncode) does it:
 * pixels in COLUMN-major (Fortran) order, i.e. down the first column, then down the second, ...;
 * alternating run lengths starting with a run of background (0 when the first pixel is foreground),
 * summing to height*width; `size` is [height, width]. So `pycocotools.mask.decode(rle)` (after
 * `rle['counts'] = rle['counts'].encode()` for the string form) gives the mask as an HxW array.
 *
 * The pipeline computes the counts natively, off the JS thread (cocoRleCounts in
 * native/core/postprocess.cc); encodeRle here is the TypeScript reference of the same counts.
 */
import { assertDims, assertGrayImage, type GrayImage } from '../../image/types.js';
import type { Rle, RleString } from '../../schemas/result.js';

// The wire shape (result@1's `rle`) is defined once in src/schemas/result.ts: `size` [height, width]
// as COCO writes it; `counts` numbers (Rle) or COCO's compressed string (RleString, rleToString).
export type { Rle, RleString };

/** COCO counts of a 0/1 mask (row-major bytes): the reference of the native cocoRleCounts. */
export function encodeRle(mask: GrayImage): Rle {
  assertGrayImage(mask, 'encodeRle');
  const { width: w, height: h, data: d } = mask;
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < w; x++) {
    for (let i = x, end = x + h * w; i < end; i += w) {
      const v = d[i] !== 0 ? 1 : 0;
      if (v !== current) {
        counts.push(run);
        run = 0;
        current = v;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [h, w], counts };
}

/** An Rle from counts computed elsewhere (the native job), checked to cover width*height pixels. */
export function rleFromCounts(counts: ArrayLike<number>, width: number, height: number): Rle {
  assertDims(width, height, 'rleFromCounts');
  let sum = 0;
  for (let i = 0; i < counts.length; i++) sum += counts[i];
  if (sum !== width * height) throw new RangeError(`rleFromCounts: runs cover ${sum} pixels, expected ${width}x${height} = ${width * height}`);
  return { size: [height, width], counts: Array.from(counts) };
}

/** Rebuilds the 0/1 mask (row-major bytes); throws unless the counts are non-negative integers summing to height*width. */
export function decodeRle(rle: Rle | RleString): GrayImage {
  const [height, width] = rle.size;
  assertDims(width, height, 'decodeRle');
  const counts = typeof rle.counts === 'string' ? rleFromString(rle.counts) : rle.counts;
  const n = width * height;
  const data = new Uint8Array(n);
  let pos = 0;
  for (let k = 0; k < counts.length; k++) {
    const c = counts[k];
    if (!Number.isInteger(c) || c < 0 || pos + c > n) {
      throw new RangeError(`decodeRle: run ${k} (${c}) is invalid or runs past ${height}x${width}`);
    }
    if (k & 1) {
      // Column-major position p is pixel (x = floor(p / height), y = p % height).
      for (let p = pos; p < pos + c; p++) data[(p % height) * width + Math.floor(p / height)] = 1;
    }
    pos += c;
  }
  if (pos !== n) throw new RangeError(`decodeRle: runs cover ${pos} pixels, expected ${height}x${width} = ${n}`);
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
