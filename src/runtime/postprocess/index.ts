/**
 * Postprocessing of one LV-UNet output (a single logit channel, NCHW [1,1,H,W] float32) into what a
 * result reports: coverage, components, optional contours and RLE, and the masks at model and frame
 * size.
 */
import type { LetterboxGeometry, Size } from '../../image/preprocess.js';
import { assertDims, type GrayImage } from '../../image/types.js';
import { COMPONENT_FIELDS, findComponents, selectComponents, type Component, type Labelling, type RawComponents } from './components.js';
import { componentContours, type Contour } from './contours.js';
import { coverage, DEFAULT_THRESHOLD, probabilityToFrame, sigmoidInto, thresholdMask } from './probability.js';
import { encodeRle, rleFromCounts, rleToString, type Rle, type RleString } from './rle.js';
import { roundTo } from './round.js';

export * from './components.js';
export * from './contours.js';
export * from './probability.js';
export * from './rle.js';
export * from './model-mask.js';

export interface SummarizeOptions {
  /** Foreground is probability > threshold (default 0.5). */
  threshold?: number;
  /** Frame-size components smaller than this many pixels are dropped (default 1). */
  minArea?: number;
  /** Report at most this many components, largest first (default DEFAULT_MAX_COMPONENTS). */
  maxComponents?: number;
  /** Include the outer contour of each reported component (default false). */
  contours?: boolean;
  /** RDP tolerance in frame pixels (default DEFAULT_CONTOUR_EPSILON). */
  contourEpsilon?: number;
  /** Cap on points per contour (default DEFAULT_MAX_CONTOUR_POINTS). */
  maxContourPoints?: number;
  /** Include the run-length encoded frame-size mask (default false). */
  rle?: boolean;
  /** 'counts' (default): plain COCO counts array; 'string': COCO compressed string. */
  rleFormat?: 'counts' | 'string';
  /**
   * The geometry the frame was letterboxed with (letterboxGeometry(frameW, frameH, modelW, modelH));
   * absent means the frame was stretched to the model size.
   */
  letterbox?: LetterboxGeometry;
}

export interface Summary {
  /** Foreground fraction of the frame-size mask, 6 decimals. */
  coverage: number;
  /** Frame-size components, largest first. */
  components: Component[];
  /** Components not reported (below minArea or beyond maxComponents). */
  droppedComponents: number;
  /** contours[i] outlines components[i], in frame pixels. */
  contours?: Contour[];
  rle?: Rle | RleString;
  /** Thresholded model output, padding included when letterboxed. */
  maskModel: GrayImage;
  /**
   * Mask at frame size, from the bilinearly resized probabilities. summarizeNative leaves it out when
   * the native job kept it (nothing asked for it): everything reported is computed from it either way.
   */
  maskFrame?: GrayImage;
}

/** What the TS reference (summarize) returns: always with the frame-size mask. */
export type ReferenceSummary = Summary & { maskFrame: GrayImage };

/** The JSON-publishable part of a Summary (the masks are typed arrays: publish them as PNG or RLE). */
export type SummaryJson = Omit<Summary, 'maskModel' | 'maskFrame'>;

// Model-size probabilities never leave summarize, so one buffer serves every call; everything here is
// synchronous, so calls cannot interleave.
let probScratch = new Float32Array(0);

/**
 * logits (model-size, row-major) -> probabilities -> model mask; probabilities resized to the frame
 * (letterbox undone when given) -> frame mask -> coverage, components and, on request, contours and
 * RLE. Everything reported is measured on the frame-size mask, in frame pixels.
 */
export function summarize(logits: Float32Array, modelSize: Size, frameSize: Size, options: SummarizeOptions = {}): ReferenceSummary {
  assertDims(modelSize.width, modelSize.height, 'summarize model size');
  assertDims(frameSize.width, frameSize.height, 'summarize frame size');
  const n = modelSize.width * modelSize.height;
  if (logits.length !== n) {
    throw new RangeError(`summarize: logits have ${logits.length} values, expected 1x1x${modelSize.height}x${modelSize.width}`);
  }
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;

  if (probScratch.length !== n) probScratch = new Float32Array(n);
  const probModel = sigmoidInto(logits, probScratch);
  const maskModel = thresholdMask(probModel, modelSize.width, modelSize.height, threshold);
  const probFrame = probabilityToFrame(probModel, modelSize, frameSize, options.letterbox);
  const maskFrame = thresholdMask(probFrame, frameSize.width, frameSize.height, threshold);

  const found = findComponents(maskFrame, {
    minArea: options.minArea,
    maxComponents: options.maxComponents,
    prob: probFrame,
  });
  const summary: ReferenceSummary = {
    coverage: roundTo(coverage(maskFrame), 6),
    components: found.components,
    droppedComponents: found.dropped,
    maskModel,
    maskFrame,
  };
  finish(summary, frameSize, found.labelling, options);
  return summary;
}

/** What native postprocessing (native/core/postprocess.cc) hands back for one frame. */
export interface NativeSummaryInput {
  maskModel: Uint8Array;
  /** Absent when the native job kept it: then contours cannot be traced and RLE needs rleCounts. */
  maskFrame?: Uint8Array;
  /** RawComponents.data of maskFrame, probability sums included. */
  components: Float64Array;
  /** Foreground pixels of maskFrame. */
  foreground: number;
  /** COCO counts of maskFrame computed natively (asked for with rle); encodeRle runs here otherwise. */
  rleCounts?: Uint32Array;
}

/**
 * The Summary summarize() would return, from masks and raw component sums computed natively (equal to
 * summarize's own bit for bit): only filtering, rounding, contours and RLE are done here.
 */
export function summarizeNative(input: NativeSummaryInput, modelSize: Size, frameSize: Size, options: SummarizeOptions = {}): Summary {
  assertDims(modelSize.width, modelSize.height, 'summarizeNative model size');
  assertDims(frameSize.width, frameSize.height, 'summarizeNative frame size');
  const n = frameSize.width * frameSize.height;
  if ((input.maskFrame !== undefined && input.maskFrame.length !== n) || input.maskModel.length !== modelSize.width * modelSize.height) {
    throw new RangeError(`summarizeNative: masks of ${input.maskModel.length} and ${input.maskFrame?.length} bytes do not fit ${modelSize.width}x${modelSize.height} and ${frameSize.width}x${frameSize.height}`);
  }
  if (input.maskFrame === undefined && options.contours) {
    throw new RangeError('summarizeNative: contours trace the frame-size mask, which the native job kept (process() with maskFrame)');
  }
  if (input.maskFrame === undefined && options.rle && input.rleCounts === undefined) {
    throw new RangeError('summarizeNative: RLE needs the native rleCounts or the frame-size mask, and has neither');
  }
  const maskModel: GrayImage = { width: modelSize.width, height: modelSize.height, data: input.maskModel };
  const maskFrame: GrayImage | undefined = input.maskFrame && { width: frameSize.width, height: frameSize.height, data: input.maskFrame };
  const raw: RawComponents = { count: input.components.length / COMPONENT_FIELDS, data: input.components, hasProb: true };
  const found = selectComponents(raw, frameSize, { minArea: options.minArea, maxComponents: options.maxComponents }, maskFrame);
  const summary: Summary = {
    coverage: roundTo(input.foreground / n, 6),
    components: found.components,
    droppedComponents: found.dropped,
    maskModel,
    maskFrame,
  };
  finish(summary, frameSize, found.labelling, options, input.rleCounts);
  return summary;
}

function finish(summary: Summary, size: Size, labelling: Labelling, options: SummarizeOptions, rleCounts?: Uint32Array): void {
  if (options.contours) {
    summary.contours = componentContours(labelling, {
      epsilon: options.contourEpsilon,
      maxPoints: options.maxContourPoints,
    });
  }
  if (options.rle) {
    const { maskFrame } = summary;
    const rle = rleCounts ? rleFromCounts(rleCounts, size.width, size.height) : encodeRle(maskFrame as GrayImage);
    summary.rle = options.rleFormat === 'string' ? { ...rle, counts: rleToString(rle.counts) } : rle;
  }
}

/** The fields of a Summary to publish, in a fixed key order so equal summaries serialise identically. */
export function summaryJson(s: Summary): SummaryJson {
  const out: SummaryJson = { coverage: s.coverage, components: s.components, droppedComponents: s.droppedComponents };
  if (s.contours) out.contours = s.contours;
  if (s.rle) out.rle = s.rle;
  return out;
}
