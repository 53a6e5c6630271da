import { promisify } from 'node:util';
import { crc32, deflate } from 'node:zlib';
import pngjs from 'pngjs';
import type { PNG } from 'pngjs';
import { assertGrayImage, assertRgbImage, type GrayImage, type RgbImage } from './types.js';

const deflateAsync = promisify(deflate);

/** A PNG object over the caller's pixels; constructing it with a size would allocate an unused RGBA buffer. */
function wrap(img: { width: number; height: number; data: Uint8Array }): PNG {
  const png = new pngjs.PNG();
  png.width = img.width;
  png.height = img.height;
  png.data = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  return png;
}

/** Writes the bytes as an 8-bit greyscale PNG, unchanged (a 0/1 mask stays 0/1: see encodeMaskPng). */
export function encodePngGray(img: GrayImage): Buffer {
  assertGrayImage(img, 'encodePngGray');
  return pngjs.PNG.sync.write(wrap(img), { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
}

export function encodePngRgb(img: RgbImage): Buffer {
  assertRgbImage(img, 'encodePngRgb');
  return pngjs.PNG.sync.write(wrap(img), { colorType: 2, inputColorType: 2, inputHasAlpha: false, bitDepth: 8 });
}

/**
 * Encodes a 0/1 mask as 0/255 so that it is visible in viewers and decodeMask (threshold 128) reads
 * it back unchanged; encodePngGray of a 0/1 mask would decode as all background.
 */
export function encodeMaskPng(mask: GrayImage): Buffer {
  assertGrayImage(mask, 'encodeMaskPng');
  const out = new Uint8Array(mask.data.length);
  for (let i = 0; i < out.length; i++) out[i] = mask.data[i] ? 255 : 0;
  return encodePngGray({ width: mask.width, height: mask.height, data: out });
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Palette index 0 is black, 1 is white: a 0/1 mask is stored as it is and viewed as 0/255. */
const MASK_PALETTE = new Uint8Array([0, 0, 0, 255, 255, 255]);

/**
 * A 0/1 mask as an 8-bit palette PNG whose two colours are black and white, so that it looks and
 * decodes (decodeMask) like encodeMaskPng's 0/255 greyscale, but the mask bytes go in as they are.
 * The JS thread only copies rows behind their filter bytes (memcpy) and checksums the compressed
 * data (small); deflate, the cost that grows with the frame, runs on the libuv thread pool. Values
 * other than 0 and 1 are out of the palette: only pass masks.
 */
export async function encodeMaskPngAsync(mask: GrayImage): Promise<Buffer> {
  assertGrayImage(mask, 'encodeMaskPngAsync');
  return encodeIndexedPngAsync(mask, MASK_PALETTE);
}

/**
 * An 8-bit palette PNG of per-pixel palette indices (encodeMaskPngAsync, the live view's overlay
 * layer). `palette`: RGB triples; `alpha` (tRNS): one opacity per leading palette entry, the rest
 * opaque. As in encodeMaskPngAsync, only the row copy and checksums run on the JS thread, deflate on
 * the libuv thread pool.
 */
export async function encodeIndexedPngAsync(img: GrayImage, palette: Uint8Array, alpha?: Uint8Array): Promise<Buffer> {
  assertGrayImage(img, 'encodeIndexedPngAsync');
  if (palette.length === 0 || palette.length % 3 !== 0 || palette.length > 768) throw new RangeError(`a PNG palette holds 1..256 RGB triples, got ${palette.length} bytes`);
  if (alpha && alpha.length > palette.length / 3) throw new RangeError(`${alpha.length} alpha values for ${palette.length / 3} palette entries`);
  const { width: w, height: h, data } = img;
  const filtered = Buffer.alloc(h * (w + 1)); // filter type 0 (None) leads each row
  for (let y = 0; y < h; y++) filtered.set(data.subarray(y * w, (y + 1) * w), y * (w + 1) + 1);
  const idat = await deflateAsync(filtered);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 3; // colour type: palette
  const chunks = [PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('PLTE', palette)];
  if (alpha) chunks.push(chunk('tRNS', alpha));
  chunks.push(chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0)));
  return Buffer.concat(chunks);
}
