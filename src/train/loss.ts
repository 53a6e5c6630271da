/**
 * The paper code's BCEDiceLoss: 0.5·BCE-with-logits (mean over pixels) + (1 − soft Dice), the
 * Dice computed per image on sigmoid probabilities with smooth 1e-5 and averaged over the batch.
 */
import * as tf from '@tensorflow/tfjs-core';

export const DICE_SMOOTH = 1e-5;

/** mean(max(z, 0) − z·y + log(1 + e^−|z|)), the overflow-free form PyTorch uses. */
export function bceWithLogits(z: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.mean(tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z))))));
}

export function softDiceLoss(z: tf.Tensor4D, y: tf.Tensor4D): tf.Scalar {
  const p = tf.sigmoid(z);
  const inter = tf.sum(tf.mul(p, y), [1, 2, 3]);
  const dice = tf.div(tf.add(tf.mul(inter, 2), DICE_SMOOTH), tf.add(tf.add(tf.sum(p, [1, 2, 3]), tf.sum(y, [1, 2, 3])), DICE_SMOOTH));
  return tf.sub(1, tf.mean(dice));
}

export function segmentationLoss(z: tf.Tensor4D, y: tf.Tensor4D): tf.Scalar {
  return tf.add(tf.mul(bceWithLogits(z, y), 0.5), softDiceLoss(z, y));
}

/**
 * Hard Dice per image at sigmoid 0.5 (logit > 0). An image whose truth and prediction are both
 * empty scores 1 (nothing to find, nothing found); one of them empty scores 0.
 */
export function diceScores(logits: Float32Array, masks: Float32Array, n: number): number[] {
  const per = logits.length / n;
  const out: number[] = [];
  for (let b = 0; b < n; b++) {
    let inter = 0;
    let pred = 0;
    let truth = 0;
    for (let i = b * per; i < (b + 1) * per; i++) {
      const p = logits[i] > 0 ? 1 : 0;
      const t = masks[i] > 0.5 ? 1 : 0;
      inter += p & t;
      pred += p;
      truth += t;
    }
    out.push(pred + truth === 0 ? 1 : (2 * inter) / (pred + truth));
  }
  return out;
}
