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
