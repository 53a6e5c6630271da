/**
 * The size of a JPEG from its frame header (SOFn), without decoding it: sources hand MJPEG frames to
 * the native runtime undecoded (JPEG_DECODE in src/model/preprocessing.ts) and need only their size,
 * to check it against the frame-size limit before anything is allocated and to size the masks.
 * Reads the marker segments up to SOF only (a few hundred bytes); never the entropy-coded data.
 */
export interface JpegSize {
  width: number;
  height: number;
}

/** Throws an Error saying what is wrong with the header; `name` (file or frame id) leads the message. */
export function jpegSize(bytes: Uint8Array, name: string): JpegSize {
  const n = bytes.length;
  if (n < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new Error(`${name}: not a JPEG (no SOI marker at the start)`);
  let i = 2;
  while (i + 4 <= n) {
    if (bytes[i] !== 0xff) throw new Error(`${name}: JPEG header is corrupt (no marker at byte ${i})`);
    let m = bytes[i + 1];
    // 0xFF fill bytes may precede a marker.
    while (m === 0xff && i + 2 < n) m = bytes[++i + 1];
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
      i += 2;
      continue;
    }
    if (m === 0xd9 || m === 0xda) break; // EOI or scan data before any frame header
    const len = (bytes[i + 2] << 8) | bytes[i + 3];
    if (len < 2) throw new Error(`${name}: JPEG header is corrupt (segment length ${len} at byte ${i})`);
    const sof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (sof) {
      if (i + 9 > n) break;
      const height = (bytes[i + 5] << 8) | bytes[i + 6];
      const width = (bytes[i + 7] << 8) | bytes[i + 8];
      if (width === 0 || height === 0) throw new Error(`${name}: JPEG frame header gives a size of ${width}x${height}`);
      return { width, height };
    }
    i += 2 + len;
  }
  throw new Error(`${name}: JPEG has no frame header (SOF) before ${i >= n ? 'its end' : 'its scan data'}`);
}

/** Where a JPEG that starts (SOI) at `start` of `b` ends, as far as the bytes so far tell. */
export type JpegExtent =
  /** The JPEG is b[start, end): its EOI was found. */
  | { kind: 'end'; end: number }
  /** Another JPEG starts (SOI) at `at` before this one ended: this one was cut off. */
  | { kind: 'cut'; at: number }
  /** Not JPEG structure at `at` (no marker where one must be). */
  | { kind: 'corrupt'; at: number }
  /** The bytes end before the JPEG does. */
  | { kind: 'more' };

/**
 * Follows the marker segments of the JPEG at `start` (skipping each by its length, so an EXIF
 * thumbnail's own SOI/EOI inside APP1 is not mistaken for the frame's) and the entropy-coded data
 * of each scan (where 0xFF is always followed by 0x00 or a restart marker) to its EOI. Costs one
 * pass over the compressed bytes, in Buffer.indexOf (native) steps from one 0xFF to the next.
 */
export function jpegExtent(b: Buffer, start: number): JpegExtent {
  const n = b.length;
  let i = start + 2;
  for (;;) {
    if (i + 2 > n) return { kind: 'more' };
    if (b[i] !== 0xff) return { kind: 'corrupt', at: i };
    const m = b[i + 1];
    if (m === 0xff) {
      i++; // fill byte before a marker
      continue;
    }
    if (m === 0xd9) return { kind: 'end', end: i + 2 };
    if (m === 0xd8) return { kind: 'cut', at: i };
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      i += 2;
      continue;
    }
    if (i + 4 > n) return { kind: 'more' };
    const segmentEnd = i + 2 + ((b[i + 2] << 8) | b[i + 3]);
    if (segmentEnd > n) return { kind: 'more' };
    if (m !== 0xda) {
      i = segmentEnd;
      continue;
    }
    // Entropy-coded data of the scan: up to the first 0xFF that starts a marker other than RSTn.
    let j = segmentEnd;
    for (;;) {
      const k = b.indexOf(0xff, j);
      if (k < 0 || k + 1 >= n) return { kind: 'more' };
      const next = b[k + 1];
      if (next === 0x00 || (next >= 0xd0 && next <= 0xd7) || next === 0xff) {
        j = k + 1;
        continue;
      }
      i = k;
      break;
    }
  }
}
