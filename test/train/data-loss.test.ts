import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { mulberry32 } from '../../src/data/random.js';
import { initTrainBackend } from '../../src/train/backend.js';
import { augment } from '../../src/train/data.js';
import { bceWithLogits, diceScores, segmentationLoss } from '../../src/train/loss.js';
import { same } from '../helpers/same.js';

t.before(async () => {
  await initTrainBackend({ preferNative: false });
});

t.test('augmentation moves image and mask together and only permutes pixels', async (t) => {
  const size = 8;
  const image = new Float32Array(size * size * 3);
  for (let i = 0; i < size * size; i++) for (let c = 0; c < 3; c++) image[i * 3 + c] = i / 100;
  const mask = new Float32Array(size * size);
  // Small values: the jitter (here α = 1, β = 0) clamps pixels to [0, 1] after un-normalising.
  mask[1 * size + 2] = 1; // (x 2, y 1), image value 0.1
  const rng = mulberry32(3);
  const seen = new Set<number>();
  let together = true;
  let permutation = true;
  for (let trial = 0; trial < 40; trial++) {
    const out = augment({ image, mask }, size, rng, { p: 0.5, brightness: 0, contrast: 0 });
    const at = out.mask.indexOf(1);
    together &&= out.mask.reduce((a, b) => a + b, 0) === 1 && Math.abs(out.image[at * 3] - 0.1) < 1e-5;
    const sorted = Array.from({ length: size * size }, (_, i) => out.image[i * 3]).sort((a, b) => a - b);
    permutation &&= sorted.every((v, i) => Math.abs(v - i / 100) < 1e-5);
    seen.add(at);
  }
  t.ok(together, 'the image pixel under the one mask pixel is always the original one');
  t.ok(permutation, 'pixels are only permuted');
  t.equal(seen.size, 8, 'all 8 rotations/flips of a corner-free pixel occur');
});

t.test('BCE-with-logits, soft Dice and hard Dice', async (t) => {
  const z = tf.tensor4d([2, -1, 0, 30], [1, 2, 2, 1]);
  const y = tf.tensor4d([1, 0, 1, 0], [1, 2, 2, 1]);
  const bce = bceWithLogits(z, y).dataSync()[0];
  const ref = ([2, -1, 0, 30].map((v, i) => {
    const p = 1 / (1 + Math.exp(-v));
    const target = [1, 0, 1, 0][i];
    return target === 1 ? -Math.log(p) : v > 20 ? v : -Math.log(1 - p);
  }).reduce((a, b) => a + b, 0)) / 4;
  t.ok(Math.abs(bce - ref) < 1e-5, `BCE ${bce} ≈ ${ref} (stable for large logits)`);
  const loss = segmentationLoss(z, y).dataSync()[0];
  const p = [2, -1, 0, 30].map((v) => 1 / (1 + Math.exp(-v)));
  const soft = (2 * (p[0] + p[2]) + 1e-5) / (p.reduce((a, b) => a + b, 0) + 2 + 1e-5);
  t.ok(Math.abs(loss - (0.5 * ref + 1 - soft)) < 1e-5, 'loss = 0.5·BCE + (1 − soft Dice)');
  z.dispose();
  y.dispose();

  same(t, diceScores(Float32Array.from([-1, -1, 1, 1]), Float32Array.from([0, 0, 1, 0]), 2), [1, 2 / 3], 'empty truth and empty prediction score 1');
  same(t, diceScores(Float32Array.from([1, -1]), Float32Array.from([0, 0]), 1), [0], 'a false positive on an empty image scores 0');
});
