/**
 * Agreement of a converted model (fp16, int8) with its float32 reference on real images, and of
 * both with the ground-truth masks when there are any. Masks are logit > 0 (sigmoid > 0.5) at the
 * model's resolution; ground truth is resized to it by nearest neighbour. Empty-mask rule: two
 * empty masks have Dice 1. The model-update self-test reuses this on a candidate model.
 */
import type { Model } from '../ir.js';
import { readImageFile, readMaskFile } from '../../image/decode.js';
import { preprocessRgb, resizeMaskNearest } from '../../image/preprocess.js';
import type { RgbImage } from '../../image/types.js';
import { readOnnx } from '../onnx/read.js';
import { FloatSession, inputDims, modelBytes, type ModelSource, type SessionOptions } from './ort.js';

export interface CheckPair {
  readonly stem: string;
  readonly image: string;
  /** Ground-truth mask file; absent for unlabelled images. */
  readonly mask?: string;
}

export interface ImageCheck {
  readonly stem: string;
  readonly logitMaxAbsError: number;
  readonly logitMeanAbsError: number;
  readonly maskDiceAgreement: number;
  readonly diceModel?: number;
  readonly diceReference?: number;
}

export interface Summary {
  readonly mean: number;
  readonly min: number;
  readonly max: number;
}

export interface CheckReport {
  readonly images: number;
  readonly threshold: { readonly logit: number };
  readonly logitMaxAbsError: number;
  readonly logitMeanAbsError: number;
  readonly maskDiceAgreement: Summary;
  /** Per-image Dice against ground truth, for images with a mask (null when none had one). */
  readonly diceVsTruth: { readonly model: Summary; readonly reference: Summary; readonly images: number } | null;
  readonly perImage: readonly ImageCheck[];
}

export interface CheckOptions extends SessionOptions {
  readonly log?: (line: string) => void;
  /** Applied to each decoded image before preprocessing (stress tests, src/eval/stress.ts). */
  readonly transform?: (image: RgbImage, stem: string) => RgbImage;
}

/** Dice of two binary masks (nonzero = foreground); two empty masks score 1. */
export function dice(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`dice: masks have ${a.length} and ${b.length} pixels`);
  let inter = 0;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] !== 0 ? 1 : 0;
    const y = b[i] !== 0 ? 1 : 0;
    inter += x & y;
    sa += x;
    sb += y;
  }
  return sa + sb === 0 ? 1 : (2 * inter) / (sa + sb);
}

export function maskOf(logits: Float32Array, threshold = 0): Uint8Array {
  return Uint8Array.from(logits, (v) => (v > threshold ? 1 : 0));
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { mean: NaN, min: NaN, max: NaN };
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, min: Math.min(...values), max: Math.max(...values) };
}

function asModel(m: ModelSource, what: string): Model {
  return m instanceof Uint8Array ? readOnnx(m, what) : m;
}

export async function checkAgainstReference(
  model: ModelSource,
  reference: ModelSource,
  pairs: readonly CheckPair[],
  options: CheckOptions = {},
): Promise<CheckReport> {
  const [report] = await checkModelsAgainstReference([model], reference, pairs, options);
  return report;
}

/**
 * Several models (say fp16 and int8) against one reference in one pass: each image is decoded,
 * transformed and run through the reference once, which is most of the work of a check (the
 * release's stress tests check every precision under every shift). Reports are in `models`' order.
 */
export async function checkModelsAgainstReference(
  models: readonly ModelSource[],
  reference: ModelSource,
  pairs: readonly CheckPair[],
  options: CheckOptions = {},
): Promise<CheckReport[]> {
  if (pairs.length === 0) throw new Error('check: no images given');
  if (models.length === 0) throw new Error('check: no models given');
  const log = options.log ?? (() => {});
  const refDims = inputDims(asModel(reference, 'reference'), 'reference');
  for (const [i, model] of models.entries()) {
    const what = models.length === 1 ? 'model' : `model ${i + 1}`;
    const dims = inputDims(asModel(model, what), what);
    if (dims.join('x') !== refDims.join('x')) {
      throw new Error(`check: ${what} input [${dims.join(', ')}] differs from reference input [${refDims.join(', ')}]`);
    }
  }
  const [, , height, width] = refDims;
  const sessions: FloatSession[] = [];
  // Every session is released even if one release fails, and a failure there never hides the check's own error.
  const releaseAll = async (): Promise<void> => {
    await Promise.allSettled(sessions.map((s) => s.release()));
  };
  try {
    sessions.push(await FloatSession.create(modelBytes(reference), refDims, options, 'reference'));
    for (const [i, model] of models.entries()) sessions.push(await FloatSession.create(modelBytes(model), refDims, options, models.length === 1 ? 'model' : `model ${i + 1}`));
  } catch (err) {
    await releaseAll();
    throw err;
  }
  const [ref, ...candidates] = sessions;
  const perImage: ImageCheck[][] = models.map(() => []);
  try {
    for (const [i, p] of pairs.entries()) {
      const decoded = await readImageFile(p.image);
      const x = preprocessRgb(options.transform ? options.transform(decoded, p.stem) : decoded, { width, height }, 'stretch');
      const yb = await ref.first(x);
      const mb = maskOf(yb);
      const truth = p.mask ? resizeMaskNearest(await readMaskFile(p.mask), width, height).data : undefined;
      for (const [m, session] of candidates.entries()) perImage[m].push(compareImage(p.stem, await session.first(x), yb, mb, truth));
      if ((i + 1) % 10 === 0 || i + 1 === pairs.length) log(`check: ${i + 1}/${pairs.length} images`);
    }
  } finally {
    await releaseAll();
  }
  return perImage.map(summarizeChecks);
}

/** One image: logit errors and mask agreement of `ya` against the reference's `yb` (mask `mb`), and both against the truth. */
function compareImage(stem: string, ya: Float32Array, yb: Float32Array, mb: Uint8Array, truth: Uint8Array | undefined): ImageCheck {
  let maxAbs = 0;
  let sumAbs = 0;
  for (let k = 0; k < ya.length; k++) {
    const d = Math.abs(ya[k] - yb[k]);
    // NaN sticks, so a model that produces NaN cannot look perfect.
    if (d > maxAbs || Number.isNaN(d)) maxAbs = d;
    sumAbs += d;
  }
  const ma = maskOf(ya);
  return {
    stem,
    logitMaxAbsError: maxAbs,
    logitMeanAbsError: sumAbs / ya.length,
    maskDiceAgreement: dice(ma, mb),
    diceModel: truth ? dice(ma, truth) : undefined,
    diceReference: truth ? dice(mb, truth) : undefined,
  };
}

function summarizeChecks(perImage: ImageCheck[]): CheckReport {
  const labelled = perImage.filter((r) => r.diceModel !== undefined);
  return {
    images: perImage.length,
    threshold: { logit: 0 },
    logitMaxAbsError: perImage.reduce((m, r) => (r.logitMaxAbsError > m || Number.isNaN(r.logitMaxAbsError) ? r.logitMaxAbsError : m), 0),
    logitMeanAbsError: perImage.reduce((s, r) => s + r.logitMeanAbsError, 0) / perImage.length,
    maskDiceAgreement: summarize(perImage.map((r) => r.maskDiceAgreement)),
    diceVsTruth:
      labelled.length === 0
        ? null
        : {
            model: summarize(labelled.map((r) => r.diceModel!)),
            reference: summarize(labelled.map((r) => r.diceReference!)),
            images: labelled.length,
          },
    perImage,
  };
}
