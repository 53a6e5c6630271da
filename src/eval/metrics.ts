/**
 * Segmentation metrics of binary masks, per image and pooled.
 *
 * The paper's code pooled IoU/Dice over each batch, so its numbers moved with the batch size. Here a
 * metric is either computed per image (then summarised as mean ± std over images) or pooled over
 * every pixel of every image (counts summed first, ratio taken once); both are reported, never mixed.
 *
 * Empty-mask rule (EMPTY_MASK_RULE): a ratio whose denominator is 0 is 1 when the two sets it compares
 * are both empty and 0 otherwise. Concretely: empty truth and empty prediction give Dice, IoU,
 * precision and recall 1; an empty prediction against a non-empty truth gives precision 0 (and recall
 * 0); a non-empty prediction against an empty truth gives recall 0 (and precision 0). Specificity is
 * the same rule on the backgrounds: a full-frame truth with a full-frame prediction has specificity 1,
 * a full-frame truth with any predicted background has 0. HD95 is undefined (null) when either mask
 * is empty; such images are counted, not averaged.
 */

export const EMPTY_MASK_RULE =
  'a ratio with a zero denominator is 1 when both masks are empty and 0 otherwise: empty truth and empty ' +
  'prediction give Dice, IoU, precision and recall 1; an empty prediction of a non-empty truth gives precision 0, ' +
  'a non-empty prediction of an empty truth gives recall 0; specificity applies the same rule to the backgrounds ' +
  '(full-frame truth and full-frame prediction give 1); HD95 is null when either mask is empty and such images are ' +
  'counted, not averaged';

/** Pixel counts of a prediction against a truth (nonzero = foreground). */
export interface Confusion {
  readonly tp: number;
  readonly fp: number;
  readonly fn: number;
  readonly tn: number;
}

export interface Scores {
  readonly dice: number;
  readonly iou: number;
  readonly precision: number;
  readonly recall: number;
  readonly specificity: number;
}

export function confusion(pred: Uint8Array, truth: Uint8Array): Confusion {
  if (pred.length !== truth.length) {
    throw new RangeError(`confusion: prediction has ${pred.length} pixels, truth has ${truth.length}`);
  }
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i] !== 0;
    const t = truth[i] !== 0;
    if (p) {
      if (t) tp++;
      else fp++;
    } else if (t) fn++;
  }
  return { tp, fp, fn, tn: pred.length - tp - fp - fn };
}

/** num/den, or the empty-mask rule's value when den is 0 (`bothEmpty` says whether both compared sets are empty). */
function ratio(num: number, den: number, bothEmpty: boolean): number {
  if (den === 0) return bothEmpty ? 1 : 0;
  return num / den;
}

export function scores(c: Confusion): Scores {
  const { tp, fp, fn, tn } = c;
  return {
    dice: ratio(2 * tp, 2 * tp + fp + fn, true),
    iou: ratio(tp, tp + fp + fn, true),
    // tp + fp = 0: the prediction is empty; the truth is empty too exactly when fn = 0.
    precision: ratio(tp, tp + fp, fn === 0),
    // tp + fn = 0: the truth is empty; the prediction is empty too exactly when fp = 0.
    recall: ratio(tp, tp + fn, fp === 0),
    // tn + fp = 0: the truth has no background; the prediction has none either exactly when fn = 0.
    specificity: ratio(tn, tn + fp, fn === 0),
  };
}

export function addConfusion(a: Confusion, b: Confusion): Confusion {
  return { tp: a.tp + b.tp, fp: a.fp + b.fp, fn: a.fn + b.fn, tn: a.tn + b.tn };
}

export const ZERO_CONFUSION: Confusion = Object.freeze({ tp: 0, fp: 0, fn: 0, tn: 0 });

// ---------------------------------------------------------------------------------------------------
// HD95

/**
 * Boundary pixels of a mask: foreground pixels with a 4-connected neighbour that is background or
 * outside the image. This is medpy's `mask ^ binary_erosion(mask)` with the cross structuring element
 * and scipy's default border value 0, so a one-pixel mask is its own boundary.
 */
export function boundary(mask: Uint8Array, width: number, height: number): Uint8Array {
  checkDims(mask, width, height, 'boundary');
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (mask[i] === 0) continue;
      const interior =
        x > 0 && x < width - 1 && y > 0 && y < height - 1 &&
        mask[i - 1] !== 0 && mask[i + 1] !== 0 && mask[i - width] !== 0 && mask[i + width] !== 0;
      if (!interior) out[i] = 1;
    }
  }
  return out;
}

/**
 * Felzenszwalb–Huttenlocher 1D squared distance transform of f[0..n) (read with `stride` from `off`),
 * written back in place. v, z and tmp are scratch of length n, n + 1 and n.
 */
function edt1d(
  f: Float64Array,
  off: number,
  stride: number,
  n: number,
  v: Int32Array,
  z: Float64Array,
  tmp: Float64Array,
): void {
  for (let q = 0; q < n; q++) tmp[q] = f[off + q * stride];
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    let s: number;
    for (;;) {
      const p = v[k];
      s = (tmp[q] + q * q - (tmp[p] + p * p)) / (2 * q - 2 * p);
      // z[0] is -Infinity, so this stops at k = 0 at the latest.
      if (s > z[k]) break;
      k--;
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1] < q) k++;
    const d = q - v[k];
    f[off + q * stride] = d * d + tmp[v[k]];
  }
}

/**
 * Exact squared Euclidean distance from every pixel to the nearest nonzero pixel of `features`
 * (two separable 1D passes: columns, then rows). Without features every value is at least
 * width² + height², more than any real squared distance in the image.
 */
export function squaredDistanceTransform(features: Uint8Array, width: number, height: number): Float64Array {
  checkDims(features, width, height, 'squaredDistanceTransform');
  // Larger than any squared distance inside the image, and small enough that every sum the transform
  // forms is an integer below 2^53: the envelope arithmetic stays exact (1e20, say, would swallow q²).
  const far = width * width + height * height;
  const f = new Float64Array(width * height);
  for (let i = 0; i < f.length; i++) f[i] = features[i] !== 0 ? 0 : far;
  const n = Math.max(width, height);
  const v = new Int32Array(n);
  const z = new Float64Array(n + 1);
  const tmp = new Float64Array(n);
  for (let x = 0; x < width; x++) edt1d(f, x, width, height, v, z, tmp);
  for (let y = 0; y < height; y++) edt1d(f, y * width, 1, width, v, z, tmp);
  return f;
}

/** Distances from each nonzero pixel of `from` to the nearest nonzero pixel of `to`. */
function directedDistances(from: Uint8Array, to: Uint8Array, width: number, height: number, out: number[]): void {
  const d2 = squaredDistanceTransform(to, width, height);
  for (let i = 0; i < from.length; i++) if (from[i] !== 0) out.push(Math.sqrt(d2[i]));
}

/** numpy's default percentile (linear interpolation between closest ranks) of ascending `sorted`. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = (p / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const frac = pos - lo;
  return frac === 0 ? sorted[lo] : sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

/**
 * 95th-percentile symmetric Hausdorff distance in pixels, as medpy's hd95: the boundary pixels of each
 * mask, their distances to the other mask's boundary, and the 95th percentile of the union of both
 * directed sets. (MONAI's compute_hausdorff_distance takes the larger of the two directed 95th
 * percentiles instead, which is never smaller.) Null when either mask is empty.
 */
export function hd95(pred: Uint8Array, truth: Uint8Array, width: number, height: number): number | null {
  checkDims(pred, width, height, 'hd95 prediction');
  checkDims(truth, width, height, 'hd95 truth');
  if (!pred.some((v) => v !== 0) || !truth.some((v) => v !== 0)) return null;
  const bp = boundary(pred, width, height);
  const bt = boundary(truth, width, height);
  const all: number[] = [];
  directedDistances(bp, bt, width, height, all);
  directedDistances(bt, bp, width, height, all);
  const sorted = Float64Array.from(all).sort();
  return percentile(sorted, 95);
}

function checkDims(mask: Uint8Array, width: number, height: number, what: string): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`${what}: invalid size ${width}x${height}`);
  }
  if (mask.length !== width * height) {
    throw new RangeError(`${what}: mask has ${mask.length} pixels, expected ${width}x${height}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Per-image metrics and aggregation

export interface ImageMetrics extends Scores {
  readonly counts: Confusion;
  /** Pixels; null when the prediction or the truth is empty. */
  readonly hd95: number | null;
}

export function imageMetrics(pred: Uint8Array, truth: Uint8Array, width: number, height: number): ImageMetrics {
  const counts = confusion(pred, truth);
  return { counts, ...scores(counts), hd95: hd95(pred, truth, width, height) };
}

/** Mean and standard deviation over images; std is the population one (divide by n, numpy's default). */
export interface Stat {
  readonly mean: number;
  readonly std: number;
  /** Images that contributed. */
  readonly n: number;
}

export function meanStd(values: readonly number[]): Stat {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  // Two-pass: subtracting the mean first keeps the variance of values near 1 (Dice) exact to the last bits.
  let ss = 0;
  for (const v of values) ss += (v - mean) * (v - mean);
  return { mean, std: Math.sqrt(ss / n), n };
}

export const METRIC_NAMES = ['dice', 'iou', 'precision', 'recall', 'specificity'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

export interface Aggregate {
  readonly images: number;
  /** Each metric's mean ± std over images. */
  readonly perImage: Record<MetricName, Stat>;
  /** HD95 over the images where it is defined; `undefined` counts the others. */
  readonly hd95: Stat & { readonly undefined: number };
  /** Metrics of the summed counts of all images (HD95 has no pooled form). */
  readonly pooled: Scores & { readonly counts: Confusion };
  /** Images whose truth / prediction / both are empty. */
  readonly empty: { readonly truth: number; readonly prediction: number; readonly both: number };
}

export function aggregate(rows: readonly ImageMetrics[]): Aggregate {
  const perImage = {} as Record<MetricName, Stat>;
  for (const name of METRIC_NAMES) perImage[name] = meanStd(rows.map((r) => r[name]));
  const defined = rows.flatMap((r) => (r.hd95 === null ? [] : [r.hd95]));
  const counts = rows.reduce((acc, r) => addConfusion(acc, r.counts), ZERO_CONFUSION);
  let truth = 0;
  let prediction = 0;
  let both = 0;
  for (const { counts: c } of rows) {
    const t = c.tp + c.fn === 0;
    const p = c.tp + c.fp === 0;
    if (t) truth++;
    if (p) prediction++;
    if (t && p) both++;
  }
  return {
    images: rows.length,
    perImage,
    hd95: { ...meanStd(defined), undefined: rows.length - defined.length },
    pooled: { ...scores(counts), counts },
    empty: { truth, prediction, both },
  };
}
