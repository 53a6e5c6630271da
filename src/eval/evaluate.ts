/**
 * Evaluates one ONNX model on labelled image pairs, at two resolutions:
 * - model: the mask at the model's input size against the truth resized to it by nearest neighbour;
 * - native: the probability map resized bilinearly to the image's own size, thresholded there, against
 *   the truth as stored. This is what a deployed model is judged on, and Dice there differs from Dice
 *   at model size because both the truth and the prediction are resampled differently.
 * Foreground is sigmoid(logit) > 0.5 at both. Every image counts once: metrics are per image and pooled
 * over all pixels (see metrics.ts), never per batch.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Pair } from '../data/dataset.js';
import { readImageFile, readMaskFile } from '../image/decode.js';
import { encodeMaskPng, encodePngRgb } from '../image/encode.js';
import { composeOverlay, drawOverlay } from '../image/overlay.js';
import { preprocessRgb, resizeMaskNearest, type Size } from '../image/preprocess.js';
import type { RgbImage } from '../image/types.js';
import { PREPROCESSING } from '../model/preprocessing.js';
import { FloatSession } from '../model/precision/ort.js';
import { loadModel } from '../runtime/model-loader.js';
import { DEFAULT_THRESHOLD, probabilityToFrame, sigmoidInto, thresholdMask } from '../runtime/postprocess/probability.js';
import { aggregate, EMPTY_MASK_RULE, imageMetrics, type Aggregate, type ImageMetrics } from './metrics.js';

export type EvalPair = Pick<Pair, 'stem' | 'image' | 'mask'>;

export interface EvaluateOptions {
  /** Model input size; must equal the ONNX file's fixed input size when given (default: that size). */
  readonly size?: Size;
  /** ONNX Runtime intra-op threads (default 1). */
  readonly threads?: number;
  /** Writes each native-size predicted mask as `<dir>/<stem>.png` (0/255). */
  readonly saveMasksDir?: string;
  /**
   * Writes each image with the predicted mask (filled, outlined in red) and the ground truth
   * (outlined in green) drawn over it, at native size, as `<dir>/<stem>.png` (src/image/overlay.ts).
   */
  readonly saveOverlaysDir?: string;
  readonly onProgress?: (done: number, total: number, row: ImageRow) => void;
  /** Applied to each decoded image before anything else (stress tests, src/eval/stress.ts); the truth is unchanged. */
  readonly transform?: (image: RgbImage, stem: string) => RgbImage;
}

export interface ImageRow {
  readonly stem: string;
  /** Native image size. */
  readonly width: number;
  readonly height: number;
  readonly model: ImageMetrics;
  readonly native: ImageMetrics;
}

export interface ResolutionSummary extends Aggregate {
  /** 'model': at the model's input size; 'native': at each image's own size. */
  readonly resolution: 'model' | 'native';
  /** The model size for 'model'; null for 'native' (sizes vary by image). */
  readonly size: Size | null;
}

export interface EvaluationReport {
  readonly model: { readonly path: string; readonly sha256: string; readonly width: number; readonly height: number };
  readonly images: number;
  /** Foreground is sigmoid(logit) > probability (equivalently logit > 0). */
  readonly threshold: { readonly probability: number; readonly logit: number };
  readonly emptyMaskRule: string;
  readonly std: 'population';
  readonly hd95Units: 'pixels at the resolution evaluated';
  readonly summary: { readonly model: ResolutionSummary; readonly native: ResolutionSummary };
  readonly perImage: readonly ImageRow[];
}

function sameSize(a: Size, b: Size): boolean {
  return a.width === b.width && a.height === b.height;
}

export async function evaluate(
  modelPath: string,
  pairs: readonly EvalPair[],
  options: EvaluateOptions = {},
): Promise<EvaluationReport> {
  if (pairs.length === 0) throw new Error('evaluate: no image pairs given');
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 0) throw new RangeError(`evaluate: threads must be an integer >= 0, got ${threads}`);
  const loaded = loadModel(modelPath);
  // preprocessRgb normalises with the toolchain's constants; a model that expects others would be fed wrong input.
  const p = loaded.preprocessing;
  if (p.scale !== PREPROCESSING.scale || p.mean.some((m, i) => m !== PREPROCESSING.mean[i]) || p.std.some((s, i) => s !== PREPROCESSING.std[i])) {
    throw new Error(`${loaded.path}: its normalisation ${JSON.stringify(p)} is not the one this evaluator applies (${JSON.stringify(PREPROCESSING)})`);
  }
  const modelSize: Size = { width: loaded.width, height: loaded.height };
  if (options.size && !sameSize(options.size, modelSize)) {
    throw new Error(
      `${loaded.path}: input is fixed at ${modelSize.width}x${modelSize.height}, cannot evaluate at ${options.size.width}x${options.size.height}`,
    );
  }
  if (options.saveMasksDir !== undefined) mkdirSync(options.saveMasksDir, { recursive: true });
  if (options.saveOverlaysDir !== undefined) mkdirSync(options.saveOverlaysDir, { recursive: true });

  const { width: mw, height: mh } = modelSize;
  const session = await FloatSession.create(readFileSync(loaded.path), [1, 3, mh, mw], { optimization: 'all', threads }, loaded.path);
  const rows: ImageRow[] = [];
  const prob = new Float32Array(mw * mh);
  try {
    for (const [i, pair] of pairs.entries()) {
      const decoded = await readImageFile(pair.image);
      const image = options.transform ? options.transform(decoded, pair.stem) : decoded;
      const truth = await readMaskFile(pair.mask);
      if (truth.width !== image.width || truth.height !== image.height) {
        throw new Error(`${pair.mask}: mask is ${truth.width}x${truth.height} but its image ${pair.image} is ${image.width}x${image.height}`);
      }
      const logits = await session.first(preprocessRgb(image, modelSize, 'stretch'));
      if (logits.length !== prob.length) {
        throw new Error(`${loaded.path}: output has ${logits.length} values, expected one ${mw}x${mh} logit map`);
      }
      sigmoidInto(logits, prob);
      const predModel = thresholdMask(prob, mw, mh, DEFAULT_THRESHOLD);
      const truthModel = resizeMaskNearest(truth, mw, mh);
      const frame = { width: image.width, height: image.height };
      const predNative = thresholdMask(probabilityToFrame(prob, modelSize, frame), frame.width, frame.height, DEFAULT_THRESHOLD);
      const row: ImageRow = {
        stem: pair.stem,
        width: image.width,
        height: image.height,
        model: imageMetrics(predModel.data, truthModel.data, mw, mh),
        native: imageMetrics(predNative.data, truth.data, frame.width, frame.height),
      };
      if (options.saveMasksDir !== undefined) writeFileSync(join(options.saveMasksDir, `${pair.stem}.png`), encodeMaskPng(predNative));
      if (options.saveOverlaysDir !== undefined) {
        const layer = drawOverlay({ mask: predNative, truth });
        writeFileSync(join(options.saveOverlaysDir, `${pair.stem}.png`), encodePngRgb(composeOverlay(image, layer)));
      }
      rows.push(row);
      options.onProgress?.(i + 1, pairs.length, row);
    }
  } finally {
    await session.release();
  }
  return {
    model: { path: loaded.path, sha256: loaded.sha256, width: mw, height: mh },
    images: rows.length,
    threshold: { probability: DEFAULT_THRESHOLD, logit: 0 },
    emptyMaskRule: EMPTY_MASK_RULE,
    std: 'population',
    hd95Units: 'pixels at the resolution evaluated',
    summary: {
      model: { resolution: 'model', size: modelSize, ...aggregate(rows.map((r) => r.model)) },
      native: { resolution: 'native', size: null, ...aggregate(rows.map((r) => r.native)) },
    },
    perImage: rows,
  };
}
