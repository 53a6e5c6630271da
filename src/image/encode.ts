import pngjs from 'pngjs';
import type { PNG } from 'pngjs';
import { assertGrayImage, assertRgbImage, type GrayImage, type RgbImage } from './types.js';

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
