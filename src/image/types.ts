/** An 8-bit RGB image, row-major, channels interleaved (R, G, B per pixel); data.length = width*height*3. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** An 8-bit single-channel image, row-major; data.length = width*height. Masks hold only 0 and 1. */
export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Throws a RangeError naming `what` unless the image's fields are consistent. */
export function assertRgbImage(img: RgbImage, what = 'image'): void {
  assertDims(img.width, img.height, what);
  if (img.data.length !== img.width * img.height * 3) {
    throw new RangeError(
      `${what}: RGB data has ${img.data.length} bytes, expected ${img.width}x${img.height}x3 = ${img.width * img.height * 3}`,
    );
  }
}

export function assertGrayImage(img: GrayImage, what = 'image'): void {
  assertDims(img.width, img.height, what);
  if (img.data.length !== img.width * img.height) {
    throw new RangeError(
      `${what}: gray data has ${img.data.length} bytes, expected ${img.width}x${img.height} = ${img.width * img.height}`,
    );
  }
}

export function assertDims(width: number, height: number, what = 'size'): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`${what}: width and height must be positive integers, got ${width}x${height}`);
  }
}
