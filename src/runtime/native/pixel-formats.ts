/**
 * Camera pixel formats the native preprocessor accepts, and the TypeScript reference of its
 * conversion to RGB24. native/core/preprocess.cc implements exactly this arithmetic; the tests
 * compare the two byte for byte.
 *
 * YUV (YUYV, NV12) is BT.601 limited range ("studio swing": Y in 16..235, U/V in 16..240),
 * converted with the classic 8-bit fixed-point integer formula:
 *
 *   C = Y - 16, D = U - 128, E = V - 128
 *   R = clamp((298*C + 409*E + 128) >> 8)
 *   G = clamp((298*C - 100*D - 208*E + 128) >> 8)
 *   B = clamp((298*C + 516*D + 128) >> 8)
 *
 * where `>>` is an arithmetic shift and clamp() limits to 0..255. GREY is taken as full-range
 * luminance (R = G = B = value). RGBA drops alpha. Frames are tightly packed (no row padding).
 */

/** Uncompressed formats: a frame is a fixed number of bytes for its size (frameByteLength). */
export const PIXEL_FORMATS = ['YUYV', 'NV12', 'GREY', 'RGB24', 'RGBA'] as const;
export type RawPixelFormat = (typeof PIXEL_FORMATS)[number];
/**
 * Every frame format the native runtime takes. MJPEG: one complete JPEG per frame (V4L2 MJPG, a
 * frame of a .mjpeg file, a .jpg file), decoded natively by the decode step of the preprocessing
 * definition (JPEG_DECODE in src/model/preprocessing.ts); width and height are its header's.
 */
export type PixelFormat = RawPixelFormat | 'MJPEG';

export function isRawPixelFormat(value: string): value is RawPixelFormat {
  return (PIXEL_FORMATS as readonly string[]).includes(value);
}

export function isPixelFormat(value: string): value is PixelFormat {
  return value === 'MJPEG' || isRawPixelFormat(value);
}

/** Byte length of a tightly packed frame; throws for sizes the format cannot represent and for MJPEG. */
export function frameByteLength(format: PixelFormat, width: number, height: number): number {
  if (format === 'MJPEG') throw new RangeError('MJPEG frames have no fixed byte length');
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${format} frame must have a positive integer size, got ${width}x${height}`);
  }
  if (width > 65536 || height > 65536) {
    throw new RangeError(`${format} frame size ${width}x${height} exceeds 65536x65536`);
  }
  const pixels = width * height;
  switch (format) {
    case 'YUYV':
      if (width % 2 !== 0) throw new RangeError(`YUYV frame width must be even, got ${width}`);
      return pixels * 2;
    case 'NV12':
      if (width % 2 !== 0 || height % 2 !== 0) {
        throw new RangeError(`NV12 frame width and height must be even, got ${width}x${height}`);
      }
      return pixels + pixels / 2;
    case 'GREY':
      return pixels;
    case 'RGB24':
      return pixels * 3;
    case 'RGBA':
      return pixels * 4;
  }
}

function clampShift(x: number): number {
  if (x <= 0) return 0;
  const v = x >> 8;
  return v > 255 ? 255 : v;
}

/** One BT.601 limited-range YUV sample to RGB, written at rgb[o..o+2]. */
export function yuvToRgb(y: number, u: number, v: number, rgb: Uint8Array, o: number): void {
  const c = 298 * (y - 16);
  const d = u - 128;
  const e = v - 128;
  rgb[o] = clampShift(c + 409 * e + 128);
  rgb[o + 1] = clampShift(c - 100 * d - 208 * e + 128);
  rgb[o + 2] = clampShift(c + 516 * d + 128);
}

/** Reference conversion of an uncompressed frame to interleaved RGB24 (MJPEG: decodeJpegFrame in runtime.ts). */
export function toRgb(frame: Uint8Array, width: number, height: number, format: RawPixelFormat): Uint8Array {
  const expected = frameByteLength(format, width, height);
  if (frame.byteLength !== expected) {
    throw new RangeError(
      `${frame.byteLength < expected ? 'truncated' : 'oversized'} ${format} frame: ${width}x${height} ${format} ` +
        `needs ${expected} bytes, got ${frame.byteLength}`,
    );
  }
  const pixels = width * height;
  const rgb = new Uint8Array(pixels * 3);
  switch (format) {
    case 'RGB24':
      rgb.set(frame);
      break;
    case 'RGBA':
      for (let i = 0; i < pixels; i++) {
        rgb[i * 3] = frame[i * 4];
        rgb[i * 3 + 1] = frame[i * 4 + 1];
        rgb[i * 3 + 2] = frame[i * 4 + 2];
      }
      break;
    case 'GREY':
      for (let i = 0; i < pixels; i++) rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = frame[i];
      break;
    case 'YUYV':
      for (let i = 0; i < pixels; i += 2) {
        const p = i * 2;
        yuvToRgb(frame[p], frame[p + 1], frame[p + 3], rgb, i * 3);
        yuvToRgb(frame[p + 2], frame[p + 1], frame[p + 3], rgb, (i + 1) * 3);
      }
      break;
    case 'NV12':
      for (let y = 0; y < height; y++) {
        const uvRow = pixels + (y >> 1) * width;
        for (let x = 0; x < width; x++) {
          const c = uvRow + (x >> 1) * 2;
          yuvToRgb(frame[y * width + x], frame[c], frame[c + 1], rgb, (y * width + x) * 3);
        }
      }
      break;
  }
  return rgb;
}
