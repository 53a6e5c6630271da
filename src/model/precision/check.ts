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
  if (pairs.length === 0) throw new Error('check: no images given');
  const log = options.log ?? (() => {});
  const dims = inputDims(asModel(model, 'model'), 'model');
  const refDims = inputDims(asModel(reference, 'reference'), 'reference');
  if (dims.join('x') !== refDims.join('x')) {
    throw new Error(`check: model input [${dims.join(', ')}] differs from reference input [${refDims.join(', ')}]`);
  }
  const [, , height, width] = dims;
  const a = await FloatSession.create(modelBytes(model), dims, options, 'model');
  const b = await FloatSession.create(modelBytes(reference), dims, options, 'reference').catch(async (err: unknown) => {
    await a.release();
    throw err;
  });
  const perImage: ImageCheck[] = [];
  try {
    for (const [i, p] of pairs.entries()) {
      const decoded = await readImageFile(p.image);
      const x = preprocessRgb(options.transform ? options.transform(decoded, p.stem) : decoded, { width, height }, 'stretch');
      const ya = await a.first(x);
      const yb = await b.first(x);
      let maxAbs = 0;
      let sumAbs = 0;
      for (let k = 0; k < ya.length; k++) {
        const d = Math.abs(ya[k] - yb[k]);
        // NaN sticks, so a model that produces NaN cannot look perfect.
        if (d > maxAbs || Number.isNaN(d)) maxAbs = d;
        sumAbs += d;
      }
      const ma = maskOf(ya);
      const mb = maskOf(yb);
      let diceModel: number | undefined;
      let diceReference: number | undefined;
      if (p.mask) {
        const truth = resizeMaskNearest(await readMaskFile(p.mask), width, height).data;
        diceModel = dice(ma, truth);
        diceReference = dice(mb, truth);
      }
      perImage.push({ stem: p.stem, logitMaxAbsError: maxAbs, logitMeanAbsError: sumAbs / ya.length, maskDiceAgreement: dice(ma, mb), diceModel, diceReference });
      if ((i + 1) % 10 === 0 || i + 1 === pairs.length) log(`check: ${i + 1}/${pairs.length} images`);
    }
  } finally {
    await a.release();
    await b.release();
  }
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
