import { readFile } from 'node:fs/promises';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import type { GrayImage, RgbImage } from './types.js';

/**
 * Largest frame accepted, in pixels. 40 MP covers 8K UHD (33.2 MP) with room to spare; the cap exists
 * so that a crafted or corrupt header cannot make an edge device allocate gigabytes before failing.
 */
export const MAX_IMAGE_PIXELS = 40_000_000;
/**
 * jpeg-js counts its per-component planes as well as the output; 40 MP needs about 3x40 MB of planes
 * plus 120 MB of RGB output, so 512 MB leaves headroom without letting a bad file run away.
 */
const JPEG_MAX_MEMORY_MB = 512;

/** Mask pixels at or above this 8-bit luma are foreground (BRIEF §4: threshold masks at 128). */
export const MASK_THRESHOLD = 128;

export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';
  /** The file (or caller-supplied name) that could not be decoded. */
  readonly file: string;
  /** Why, without the file name. */
  readonly reason: string;

  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super(`${file}: cannot decode image: ${reason}`, options);
    this.file = file;
    this.reason = reason;
  }
}

export type ImageFormat = 'png' | 'jpeg';

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  if (bytes.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic[i]) return false;
  return true;
}

/** Format from the leading bytes; file extensions lie (a .png that is really a JPEG is common). */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, PNG_MAGIC)) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  return undefined;
}

/** Names formats we recognise but do not decode, so the error says more than "unknown". */
function describeUnsupported(bytes: Uint8Array): string {
  const ascii = (start: number, len: number): string =>
    String.fromCharCode(...bytes.subarray(start, start + len));
  if (ascii(0, 4) === 'GIF8') return 'unsupported format GIF (only JPEG and PNG are supported)';
  if (ascii(0, 2) === 'BM') return 'unsupported format BMP (only JPEG and PNG are supported)';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') {
    return 'unsupported format WebP (only JPEG and PNG are supported)';
  }
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') {
    return 'unsupported format TIFF (only JPEG and PNG are supported)';
  }
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `not a JPEG or PNG file (first bytes: ${head})`;
}

function checkPixelCount(name: string, width: number, height: number): void {
  if (!(width > 0 && height > 0)) {
    throw new ImageDecodeError(name, `invalid dimensions ${width}x${height}`);
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new ImageDecodeError(
      name,
      `${width}x${height} exceeds the limit of ${MAX_IMAGE_PIXELS / 1e6} megapixels`,
    );
  }
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function decodeJpeg(bytes: Uint8Array, name: string): RgbImage {
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      // Strict: a medical frame with silently skipped blocks is worse than an error.
      tolerantDecoding: false,
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
      maxMemoryUsageInMB: JPEG_MAX_MEMORY_MB,
    });
  } catch (err) {
    throw new ImageDecodeError(name, `corrupt or truncated JPEG (${reasonOf(err)})`, { cause: err });
  }
  const { width, height, data } = decoded;
  checkPixelCount(name, width, height);
  if (data.length !== width * height * 3) {
    throw new ImageDecodeError(name, `JPEG decoder returned ${data.length} bytes for ${width}x${height}`);
  }
  return { width, height, data };
}

/** Reads width/height from IHDR so the size cap applies before pngjs allocates anything. */
function pngHeaderSize(bytes: Uint8Array, name: string): { width: number; height: number } {
  // Signature (8) + chunk length (4) + "IHDR" (4) + width (4) + height (4).
  if (bytes.length < 24) throw new ImageDecodeError(name, `truncated PNG (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = String.fromCharCode(...bytes.subarray(12, 16));
  if (type !== 'IHDR') throw new ImageDecodeError(name, `corrupt PNG (first chunk is "${type}", not IHDR)`);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

function decodePng(bytes: Uint8Array, name: string): RgbImage {
  const header = pngHeaderSize(bytes, name);
  checkPixelCount(name, header.width, header.height);
  let png: { width: number; height: number; data: Buffer };
  try {
    // pngjs expands grey, grey+alpha, palette and 1/2/4/16-bit input to 8-bit RGBA.
    png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new ImageDecodeError(name, `corrupt or truncated PNG (${reasonOf(err)})`, { cause: err });
  }
  const { width, height, data } = png;
  const n = width * height;
  if (data.length !== n * 4) {
    throw new ImageDecodeError(name, `PNG decoder returned ${data.length} bytes for ${width}x${height} RGBA`);
  }
  // Alpha is dropped rather than composited, as PIL's convert('RGB') does.
  const rgb = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n * 4; i += 4, j += 3) {
    rgb[j] = data[i];
    rgb[j + 1] = data[i + 1];
    rgb[j + 2] = data[i + 2];
  }
  return { width, height, data: rgb };
}

/**
 * Decodes a JPEG or PNG (chosen by magic bytes) to 8-bit RGB. `name` is only used in errors.
 * Throws ImageDecodeError for empty, corrupt, truncated, oversized or unsupported input.
 */
export function decodeImage(bytes: Uint8Array, name: string): RgbImage {
  if (bytes.length === 0) throw new ImageDecodeError(name, 'empty file (0 bytes)');
  const format = sniffFormat(bytes);
  if (format === 'jpeg') return decodeJpeg(bytes, name);
  if (format === 'png') return decodePng(bytes, name);
  throw new ImageDecodeError(name, describeUnsupported(bytes));
}

/**
 * Binarises an RGB image: 1 where the 8-bit luma is >= MASK_THRESHOLD. Luma is PIL's convert('L')
 * in fixed point, which equals the channel value exactly for grey input, so grey masks threshold on
 * their one channel and colour (JPEG) masks on the same value a Python pipeline would see.
 */
export function binarizeMask(img: RgbImage): GrayImage {
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  const src = img.data;
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    const luma = (src[j] * 19595 + src[j + 1] * 38470 + src[j + 2] * 7471 + 0x8000) >>> 16;
    out[i] = luma >= MASK_THRESHOLD ? 1 : 0;
  }
  return { width: img.width, height: img.height, data: out };
}

/** Decodes a mask image to values 0/1 (see binarizeMask). */
export function decodeMask(bytes: Uint8Array, name: string): GrayImage {
  return binarizeMask(decodeImage(bytes, name));
}

/** File-system errors (missing file, permissions) propagate unchanged; they already name the path. */
export async function readImageFile(path: string): Promise<RgbImage> {
  return decodeImage(await readFile(path), path);
}

export async function readMaskFile(path: string): Promise<GrayImage> {
  return decodeMask(await readFile(path), path);
}
