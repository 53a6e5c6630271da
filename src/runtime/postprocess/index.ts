/**
 * Postprocessing of one LV-UNet output (a single logit channel, NCHW [1,1,H,W] float32) into what a
 * result reports: coverage, components, optional contours and RLE, and the masks at model and frame
 * size.
 */
import type { LetterboxGeometry, Size } from '../../image/preprocess.js';
import { assertDims, type GrayImage } from '../../image/types.js';
import { findComponents, type Component } from './components.js';
import { componentContours, type Contour } from './contours.js';
import { coverage, DEFAULT_THRESHOLD, probabilityToFrame, sigmoidInto, thresholdMask } from './probability.js';
import { encodeRle, rleToString, type Rle, type RleString } from './rle.js';
import { roundTo } from './round.js';

export * from './components.js';
export * from './contours.js';
export * from './probability.js';
export * from './rle.js';

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
  /** 'counts' (default): plain counts array; 'string': COCO compressed string. */
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
  /** Mask at frame size, from the bilinearly resized probabilities. */
  maskFrame: GrayImage;
}

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
export function summarize(logits: Float32Array, modelSize: Size, frameSize: Size, options: SummarizeOptions = {}): Summary {
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
  const summary: Summary = {
    coverage: roundTo(coverage(maskFrame), 6),
    components: found.components,
    droppedComponents: found.dropped,
    maskModel,
    maskFrame,
  };
  if (options.contours) {
    summary.contours = componentContours(found.labelling, {
      epsilon: options.contourEpsilon,
      maxPoints: options.maxContourPoints,
    });
  }
  if (options.rle) {
    const rle = encodeRle(maskFrame);
    summary.rle = options.rleFormat === 'string' ? { ...rle, counts: rleToString(rle.counts) } : rle;
  }
  return summary;
}

/** The fields of a Summary to publish, in a fixed key order so equal summaries serialise identically. */
export function summaryJson(s: Summary): SummaryJson {
  const out: SummaryJson = { coverage: s.coverage, components: s.components, droppedComponents: s.droppedComponents };
  if (s.contours) out.contours = s.contours;
  if (s.rle) out.rle = s.rle;
  return out;
}
