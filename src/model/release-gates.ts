/**
 * The agreement gates a converted precision must pass to be released (mask Dice against fp32; for
 * INT8 also the drop in Dice against the ground truth), and the INT8 settings that pass them. Apart
 * from release.ts so that the CLI's usage text and `model quantize` can use them without loading the
 * release machinery (the trainer, tfjs).
 */
export const GATES = Object.freeze({
  fp16: { minMeanMaskDice: 0.995, minStressMaskDice: 0.995 },
  // minStressMaskDice: the same agreement on the worst stress shift (src/eval/stress.ts), so that a
  // quantisation that only holds on images like the training set does not ship.
  int8: { minMeanMaskDice: 0.98, maxTruthDiceDrop: 0.01, minStressMaskDice: 0.98 },
});

/**
 * INT8 settings of a release, chosen on a Kvasir-trained LV-UNet (PyTorch reference weights, 200 test
 * images, 64 train-split calibration images): the first conv and encoder1 (full-resolution layers
 * whose per-channel ranges are widest) stay float and activation ranges come from the 99.999th
 * percentile. Mask Dice vs fp32: 0.962 with every layer quantised (minmax), 0.984 keeping those
 * layers float, 0.989 with percentile ranges too; Dice vs truth −0.09 points (docs/notes/int8-on-avx2.md).
 */
export const RELEASE_INT8 = Object.freeze({
  method: 'percentile' as const,
  percentile: 99.999,
  perChannel: true,
  reduceRange: true,
  keepFloat: Object.freeze(['firstconv', 'encoder1']),
});
