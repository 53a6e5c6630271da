/**
 * Greyscale or colour data. Decides which stress shifts a release runs (src/eval/stress.ts) and which
 * field augmentation a new training run uses (src/train/augment-field.ts): ultrasound frames are
 * stored as RGB PNGs with R = G = B, and hue, saturation or specular highlights mean nothing there.
 */
import { readImageFile } from '../image/decode.js';
import type { RgbImage } from '../image/types.js';
import { spreadSample } from '../model/precision/images.js';

export type Modality = 'colour' | 'grey';

/** True when every pixel has R = G = B (a greyscale image, however it was stored). */
export function isGrey(img: RgbImage): boolean {
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
  return true;
}

/**
 * Greyscale or colour data, from a spread sample of the images: grey when at least 90 % have
 * R = G = B everywhere (BUSI: 632 of 647 images; the rest carry coloured markers).
 */
export async function detectModality(pairs: readonly { readonly image: string }[]): Promise<{ modality: Modality; sampled: number; grey: number }> {
  const sample = spreadSample(pairs, Math.min(32, pairs.length));
  let grey = 0;
  for (const p of sample) if (isGrey(await readImageFile(p.image))) grey++;
  return { modality: grey >= 0.9 * sample.length ? 'grey' : 'colour', sampled: sample.length, grey };
}
