/**
 * The agreement gates a converted precision must pass to be released (mask Dice against fp32; for
 * INT8 also the drop in Dice against the ground truth). Apart from release.ts so that the CLI's usage
 * text can quote them without loading the release machinery.
 */
export const GATES = Object.freeze({
  fp16: { minMeanMaskDice: 0.995 },
  int8: { minMeanMaskDice: 0.98, maxTruthDiceDrop: 0.01 },
});
