/**
 * The one definition of LV-UNet input preprocessing. The toolchain writes it into ONNX metadata and
 * manifests, the native runtime receives these numbers from TS (it never hard-codes its own), and the
 * trainer normalises with them. The paper's code normalised twice and fed BGR; this is RGB, once.
 */
// The shape of the record (what a manifest's input.preprocessing holds) is defined in src/schemas/manifest.ts.
import type { Preprocessing } from '../schemas/manifest.js';
export type { Preprocessing };

export const IMAGENET_MEAN_RGB = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD_RGB = [0.229, 0.224, 0.225] as const;


export const PREPROCESSING: Preprocessing = {
  colorOrder: 'RGB',
  layout: 'NCHW',
  scale: 255,
  mean: [...IMAGENET_MEAN_RGB],
  std: [...IMAGENET_STD_RGB],
  resize: 'bilinear',
};

/** Normalise one 8-bit channel value of channel c exactly as every path must. */
export function normalizeValue(v: number, c: 0 | 1 | 2): number {
  return (v / PREPROCESSING.scale - PREPROCESSING.mean[c]) / PREPROCESSING.std[c];
}

/**
 * The decode step, for frames that arrive as JPEG (V4L2 MJPG, `.mjpeg` files, JPEG images in a
 * folder): they are decoded by libjpeg-turbo (TurboJPEG API, accurate integer IDCT, fancy
 * upsampling, RGB output) with DCT-domain scaling to the smallest factor num/8 (num = 1..8) whose
 * scaled size, ceil(dim * num / 8) on each axis, is still at least the model input on both axes
 * (8/8, the full size, when no smaller one is). The resize and normalisation above then start from
 * that decoded image, and masks map back to the frame through it (its letterbox rectangle).
 * Implemented once, natively (native/core/jpeg_decode.cc); the TypeScript reference path calls the
 * same decoder (decodeJpegFrame in src/runtime/native/runtime.ts) rather than jpeg-js, whose IDCT
 * neither scales nor rounds like libjpeg-turbo's. PNG images are decoded losslessly, at full size.
 */
export const JPEG_DECODE = {
  decoder: 'libjpeg-turbo',
  idct: 'accurate-integer',
  scaling: 'smallest num/8 >= model input',
} as const;

/** The numerator of the num/8 DCT scale JPEG_DECODE picks for a width x height JPEG. */
export function jpegDecodeScale(width: number, height: number, modelWidth: number, modelHeight: number): number {
  for (let num = 1; num < 8; num++) {
    if (Math.ceil((width * num) / 8) >= modelWidth && Math.ceil((height * num) / 8) >= modelHeight) return num;
  }
  return 8;
}

/** Size of the image JPEG_DECODE produces for a width x height JPEG and a model input size. */
export function jpegDecodedSize(width: number, height: number, modelWidth: number, modelHeight: number): { width: number; height: number } {
  const num = jpegDecodeScale(width, height, modelWidth, modelHeight);
  return { width: Math.ceil((width * num) / 8), height: Math.ceil((height * num) / 8) };
}
