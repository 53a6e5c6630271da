/**
 * Logits -> probabilities -> binary masks, at model size and at frame size.
 *
 * Thresholding is always done on probabilities, never on logits with the equivalent cut
 * logit > ln(t / (1 - t)). That cut is exact only in real arithmetic: the float32 sigmoid rounds, so a
 * logit a few ulps above ln(t/(1-t)) can give a probability that equals t and is therefore background,
 * and the two masks would disagree on those pixels. The probabilities are needed anyway (frame-size
 * masks are thresholded after resizing the probability map, and components report mean probability),
 * so the shortcut would save nothing.
 */
import { resizeProbBilinear, type LetterboxGeometry, type Size } from '../../image/preprocess.js';
import { assertDims, type GrayImage } from '../../image/types.js';
import { skipNonZeros, skipZeros, wordView } from './scan.js';

export const DEFAULT_THRESHOLD = 0.5;

/**
 * Numerically stable logistic function: exp is only ever evaluated at a non-positive argument, so it
 * cannot overflow (sigmoid(-1000) is 0, not NaN from Infinity/Infinity). NaN maps to 0 so that a broken
 * model output never becomes foreground and never turns a mean probability into NaN (JSON null).
 */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  if (x < 0) {
    const e = Math.exp(x);
    return e / (1 + e);
  }
  return 0;
}

/**
 * Writes sigmoid(logits[i]) into `out` (allocated when absent; may be `logits` itself for in-place use)
 * and returns it. Passing the same `out` every frame avoids a per-frame allocation.
 */
export function sigmoidInto(logits: Float32Array, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(logits.length);
  if (dst.length !== logits.length) {
    throw new RangeError(`sigmoidInto: output has ${dst.length} values, expected ${logits.length}`);
  }
  for (let i = 0; i < logits.length; i++) dst[i] = sigmoid(logits[i]);
  return dst;
}

export function assertThreshold(threshold: number): void {
  if (!(threshold >= 0 && threshold <= 1)) {
    throw new RangeError(`threshold must be a number in [0, 1], got ${threshold}`);
  }
}

/** mask[i] = prob[i] > threshold ? 1 : 0 (strict, so 0.5 exactly is background at the default 0.5). */
export function thresholdMask(
  prob: Float32Array,
  width: number,
  height: number,
  threshold = DEFAULT_THRESHOLD,
  out?: Uint8Array,
): GrayImage {
  assertDims(width, height, 'thresholdMask');
  assertThreshold(threshold);
  const n = width * height;
  if (prob.length !== n) {
    throw new RangeError(`thresholdMask: input has ${prob.length} values, expected ${width}x${height}`);
  }
  const data = out ?? new Uint8Array(n);
  if (data.length !== n) throw new RangeError(`thresholdMask: output has ${data.length} bytes, expected ${n}`);
  for (let i = 0; i < n; i++) data[i] = prob[i] > threshold ? 1 : 0;
  return { width, height, data };
}

/** Throws unless the content rectangle is non-empty, integral and inside the model-size map. */
export function assertLetterbox(g: LetterboxGeometry, model: Size): void {
  const ints = [g.newW, g.newH, g.ox, g.oy].every(Number.isInteger);
  if (!ints || g.newW < 1 || g.newH < 1 || g.ox < 0 || g.oy < 0 || g.ox + g.newW > model.width || g.oy + g.newH > model.height) {
    throw new RangeError(
      `letterbox content rect ${g.newW}x${g.newH} at (${g.ox}, ${g.oy}) does not fit the ${model.width}x${model.height} model output`,
    );
  }
}

/**
 * Brings a model-size probability map to the frame: with `letterbox`, the content rectangle is cut out
 * first (the padding never reaches the frame); then it is resized bilinearly with resizeProbBilinear.
 * For the geometry letterboxGeometry(frame, model) this equals letterboxInverse bit for bit; taking the
 * geometry from the caller means the one that was used for preprocessing is the one undone here.
 */
export function probabilityToFrame(
  prob: Float32Array,
  model: Size,
  frame: Size,
  letterbox?: LetterboxGeometry,
): Float32Array {
  assertDims(model.width, model.height, 'probabilityToFrame model');
  assertDims(frame.width, frame.height, 'probabilityToFrame frame');
  if (prob.length !== model.width * model.height) {
    throw new RangeError(`probabilityToFrame: input has ${prob.length} values, expected ${model.width}x${model.height}`);
  }
  if (!letterbox) return resizeProbBilinear(prob, model.width, model.height, frame.width, frame.height);
  assertLetterbox(letterbox, model);
  const { newW, newH, ox, oy } = letterbox;
  let content = prob;
  if (newW !== model.width || newH !== model.height) {
    content = new Float32Array(newW * newH);
    for (let y = 0; y < newH; y++) {
      const from = (oy + y) * model.width + ox;
      content.set(prob.subarray(from, from + newW), y * newW);
    }
  }
  return resizeProbBilinear(content, newW, newH, frame.width, frame.height);
}

/** Fraction of pixels that are foreground (non-zero), in [0, 1]. */
export function coverage(mask: GrayImage): number {
  const d = mask.data;
  const n = d.length;
  const w32 = wordView(d);
  let fg = 0;
  let p = 0;
  while (p < n) {
    const a = skipZeros(d, w32, p, n);
    p = skipNonZeros(d, w32, a, n);
    fg += p - a;
  }
  return n === 0 ? 0 : fg / n;
}
