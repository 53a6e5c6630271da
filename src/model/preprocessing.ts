/**
 * The one definition of LV-UNet input preprocessing. The toolchain writes it into ONNX metadata and
 * manifests, the native runtime receives these numbers from TS (it never hard-codes its own), and the
 * trainer normalises with them. The paper's code normalised twice and fed BGR; this is RGB, once.
 */
export const IMAGENET_MEAN_RGB = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD_RGB = [0.229, 0.224, 0.225] as const;

export interface Preprocessing {
  /** Channel order of the model input. */
  readonly colorOrder: 'RGB';
  /** Memory layout of the model input tensor. */
  readonly layout: 'NCHW';
  /** Pixel values are divided by this before normalisation (8-bit input → [0, 1]). */
  readonly scale: number;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
  /** How a frame of another size reaches the model size. */
  readonly resize: 'bilinear';
}

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
