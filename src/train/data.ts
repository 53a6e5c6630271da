/**
 * Training samples: decoded with the shared decoders, inputs through preprocessRgb (the exact
 * preprocessing deployment uses), masks with resizeMaskNearest, then augmented in NHWC.
 */
import type { Pair } from '../data/dataset.js';
import type { Rng } from '../data/random.js';
import { readImageFile, readMaskFile } from '../image/decode.js';
import { preprocessRgb, resizeMaskNearest } from '../image/preprocess.js';
import { PREPROCESSING } from '../model/preprocessing.js';
import { applyField, drawField, drawUltrasound, FIELD_DESCRIPTION, ULTRASOUND_DESCRIPTION } from './augment-field.js';
import { nchwToNhwc } from './model.js';

export interface Sample {
  /** size·size·3, NHWC, normalised. */
  readonly image: Float32Array;
  /** size·size, 0 or 1. */
  readonly mask: Float32Array;
}

export async function loadSample(pair: Pair, size: number): Promise<Sample> {
  const rgb = preprocessRgb(await readImageFile(pair.image), { width: size, height: size });
  const mask = resizeMaskNearest(await readMaskFile(pair.mask), size, size);
  return { image: nchwToNhwc(rgb, 1, 3, size, size), mask: Float32Array.from(mask.data) };
}

/** Decoded samples kept in memory up to a byte budget (Kvasir at 256² is ~0.55 GB for 640 images). */
export class SampleCache {
  private readonly cache = new Map<string, Sample>();
  private bytes = 0;

  constructor(
    private readonly size: number,
    private readonly budgetBytes = 1 << 30,
  ) {}

  async get(pair: Pair): Promise<Sample> {
    const hit = this.cache.get(pair.stem);
    if (hit !== undefined) return hit;
    const s = await loadSample(pair, this.size);
    const cost = (s.image.length + s.mask.length) * 4;
    if (this.bytes + cost <= this.budgetBytes) {
      this.cache.set(pair.stem, s);
      this.bytes += cost;
    }
    return s;
  }
}

/**
 * 'basic': the paper's rot90, flips and brightness/contrast. 'field': basic, then what differs between
 * one centre's equipment and another's (augment-field.ts); 'ultrasound': basic, then the same for
 * ultrasound machines. A run records its profile (state.json), and runs written before profiles
 * existed are 'basic'.
 */
export type AugmentProfile = 'basic' | 'field' | 'ultrasound';
export const AUGMENT_PROFILES: readonly AugmentProfile[] = ['basic', 'field', 'ultrasound'];

export function describeAugmentation(profile: AugmentProfile): string {
  const basic = 'rot90, flips, brightness/contrast';
  return profile === 'field' ? `${basic}; ${FIELD_DESCRIPTION}` : profile === 'ultrasound' ? `${basic}; ${ULTRASOUND_DESCRIPTION}` : basic;
}

export interface AugmentOptions {
  /** Default 'basic'. */
  readonly profile?: AugmentProfile;
  /** Probability of each flip and of the brightness/contrast jitter (default 0.5). */
  readonly p?: number;
  /** Brightness offset and contrast factor ranges, ±, on [0, 1] pixel values (default 0.2 each). */
  readonly brightness?: number;
  readonly contrast?: number;
}

/**
 * RandomRotate90 (k ∈ 0..3), horizontal and vertical flips, and brightness/contrast jitter
 * (v' = clamp(α·v + β, 0, 1) on un-normalised pixels, then renormalised), all drawn from `rng`.
 * Image and mask get the same geometry. Square samples only (rot90 keeps the shape).
 */
export function augment(s: Sample, size: number, rng: Rng, o: AugmentOptions = {}): Sample {
  const p = o.p ?? 0.5;
  const k = Math.floor(rng() * 4);
  const flipH = rng() < p;
  const flipV = rng() < p;
  const jitter = rng() < p;
  const alpha = 1 + (rng() * 2 - 1) * (o.contrast ?? 0.2);
  const beta = (rng() * 2 - 1) * (o.brightness ?? 0.2);
  const image = new Float32Array(s.image.length);
  const mask = new Float32Array(s.mask.length);
  const last = size - 1;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      // Output (x, y) takes the source pixel the inverse transform maps it to.
      let u = flipH ? last - x : x;
      const v0 = flipV ? last - y : y;
      let v = v0;
      for (let r = 0; r < k; r++) {
        const t = u;
        u = last - v;
        v = t;
      }
      const src = v * size + u;
      const dst = y * size + x;
      mask[dst] = s.mask[src];
      for (let c = 0; c < 3; c++) image[dst * 3 + c] = s.image[src * 3 + c];
    }
  }
  if (jitter) {
    const { mean, std } = PREPROCESSING;
    for (let i = 0; i < image.length; i++) {
      const c = i % 3;
      const px = Math.min(1, Math.max(0, alpha * (image[i] * std[c] + mean[c]) + beta));
      image[i] = (px - mean[c]) / std[c];
    }
  }
  if (o.profile === 'field') applyField(image, mask, size, drawField(rng, size));
  else if (o.profile === 'ultrasound') applyField(image, mask, size, drawUltrasound(rng));
  return { image, mask };
}

/** Concatenates samples into one NHWC batch and its [N,H,W,1] mask. */
export function stackBatch(samples: readonly Sample[]): { x: Float32Array; y: Float32Array } {
  const per = samples[0].image.length;
  const perMask = samples[0].mask.length;
  const x = new Float32Array(per * samples.length);
  const y = new Float32Array(perMask * samples.length);
  samples.forEach((s, i) => {
    x.set(s.image, i * per);
    y.set(s.mask, i * perMask);
  });
  return { x, y };
}
