/**
 * The golden self-test: the bundle carries frames and the masks its signed model produced on them;
 * a device runs the model it just unpacked on the same frames and refuses it unless the masks agree.
 * This catches what hashes cannot: a model that loads but computes something else on this device
 * (wrong execution provider, broken kernel, a mislabelled file the signer did not notice).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeImage, decodeMask } from '../../image/decode.js';
import type { GrayImage, RgbImage } from '../../image/types.js';
import { BundleError, reasonOf } from './errors.js';
import type { BundleManifest } from './format.js';

/** What a runner needs from the manifest beyond the model file. */
export interface ModelInfo {
  readonly inputName: string;
  readonly outputName: string;
  readonly height: number;
  readonly width: number;
  /** mask = sigmoid(logit) > threshold. */
  readonly threshold: number;
}

/**
 * Runs a model file on frames and returns one 0/1 mask per frame. Injected so that bundles do not
 * depend on a particular runtime; called with no frames it must still load the model (that is the
 * 'load' step when no prepare hook is given).
 */
export type RunModel = (modelPath: string, frames: readonly RgbImage[], info: ModelInfo) => Promise<GrayImage[]>;

export function modelInfo(manifest: BundleManifest): ModelInfo {
  const dim = (i: number, what: string): number => {
    const v = manifest.input.shape[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new BundleError('load', `manifest input.shape[${i}] (${what}) is ${JSON.stringify(v)}, expected a positive integer`, 'manifest.json');
    }
    return v;
  };
  return {
    inputName: manifest.input.name,
    outputName: manifest.output.name,
    height: dim(2, 'height'),
    width: dim(3, 'width'),
    threshold: manifest.output.threshold,
  };
}

/** sigmoid(logit) > threshold as a 0/1 mask, for runners of every runtime. */
export function logitsToMask(logits: Float32Array, width: number, height: number, threshold: number): GrayImage {
  if (logits.length !== width * height) throw new RangeError(`model output has ${logits.length} values, expected ${width}x${height}`);
  // sigmoid(x) > t  <=>  x > logit(t); comparing logits avoids exp() per pixel and its rounding at 0.5.
  const cut = Math.log(threshold / (1 - threshold));
  const data = new Uint8Array(logits.length);
  for (let i = 0; i < logits.length; i++) data[i] = logits[i] > cut ? 1 : 0;
  return { width, height, data };
}

/** Dice of two 0/1 masks; two empty masks agree perfectly. */
export function dice(a: GrayImage, b: GrayImage): number {
  if (a.width !== b.width || a.height !== b.height) {
    throw new RangeError(`dice: masks are ${a.width}x${a.height} and ${b.width}x${b.height}`);
  }
  let inter = 0, na = 0, nb = 0;
  for (let i = 0; i < a.data.length; i++) {
    const x = a.data[i] ? 1 : 0, y = b.data[i] ? 1 : 0;
    inter += x & y;
    na += x;
    nb += y;
  }
  return na + nb === 0 ? 1 : (2 * inter) / (na + nb);
}

export interface SelfTestResult {
  readonly meanDice: number;
  readonly threshold: number;
  readonly perFrame: readonly { readonly image: string; readonly dice: number }[];
}

/**
 * Runs the golden frames of the bundle in `dir` through `runModel` and compares against the stored
 * masks. Throws BundleError step 'self-test' naming the worst frame when the mean Dice is too low.
 * Returns undefined when the manifest has no golden section.
 */
export async function runSelfTest(dir: string, manifest: BundleManifest, runModel: RunModel): Promise<SelfTestResult | undefined> {
  const golden = manifest.golden;
  if (!golden) return undefined;
  const info = modelInfo(manifest);
  const frames: RgbImage[] = [];
  const expected: GrayImage[] = [];
  for (const f of golden.frames) {
    try {
      frames.push(decodeImage(await readFile(join(dir, f.image.file)), f.image.file));
      expected.push(decodeMask(await readFile(join(dir, f.mask.file)), f.mask.file));
    } catch (err) {
      throw new BundleError('self-test', `cannot read golden frame: ${reasonOf(err)}`, f.image.file, { cause: err });
    }
  }
  let masks: GrayImage[];
  try {
    masks = await runModel(join(dir, golden.model), frames, info);
  } catch (err) {
    throw new BundleError('self-test', `the model failed on the golden frames: ${reasonOf(err)}`, golden.model, { cause: err });
  }
  if (masks.length !== frames.length) {
    throw new BundleError('self-test', `the runner returned ${masks.length} masks for ${frames.length} frames`, golden.model);
  }
  const perFrame = golden.frames.map((f, i) => {
    const got = masks[i], want = expected[i];
    if (got.width !== want.width || got.height !== want.height) {
      throw new BundleError('self-test', `mask is ${got.width}x${got.height}, the stored one ${want.width}x${want.height}`, f.mask.file);
    }
    return { image: f.image.file, dice: dice(got, want) };
  });
  const meanDice = perFrame.reduce((s, p) => s + p.dice, 0) / perFrame.length;
  if (!(meanDice >= golden.threshold)) {
    const worst = perFrame.reduce((w, p) => (p.dice < w.dice ? p : w));
    throw new BundleError(
      'self-test',
      `mean Dice ${meanDice.toFixed(4)} over ${perFrame.length} golden frames is below ${golden.threshold} (worst ${worst.image}: ${worst.dice.toFixed(4)})`,
      golden.model,
    );
  }
  return { meanDice, threshold: golden.threshold, perFrame };
}
