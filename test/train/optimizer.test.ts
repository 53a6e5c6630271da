import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { initTrainBackend } from '../../src/train/backend.js';
import { Adam } from '../../src/train/optimizer.js';

t.before(async () => {
  await initTrainBackend({ preferNative: false });
});

t.test('torch.optim.Adam semantics: L2 in the gradient, bias-corrected moments', async (t) => {
  const p0 = [1, -2, 0.5];
  const g = [[0.3, -0.1, 0], [0.2, 0.4, -0.5]];
  const lr = 0.1;
  const wd = 0.01;
  const p = tf.variable(tf.tensor1d(p0));
  const adam = new Adam({ weightDecay: wd });
  t.teardown(() => {
    p.dispose();
    adam.dispose();
  });
  // Reference, written out as torch/optim/adam.py (_single_tensor_adam) computes it.
  const ref = [...p0];
  const m = [0, 0, 0];
  const v = [0, 0, 0];
  for (let step = 1; step <= 2; step++) {
    const grad = tf.tensor1d(g[step - 1]);
    adam.apply(new Map([[p, grad]]), lr);
    grad.dispose();
    for (let i = 0; i < 3; i++) {
      const gi = g[step - 1][i] + wd * ref[i];
      m[i] = 0.9 * m[i] + 0.1 * gi;
      v[i] = 0.999 * v[i] + 0.001 * gi * gi;
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - 0.999 ** step) + 1e-8;
      ref[i] -= (lr / (1 - 0.9 ** step)) * (m[i] / denom);
    }
    const got = p.dataSync();
    for (let i = 0; i < 3; i++) t.ok(Math.abs(got[i] - ref[i]) < 1e-6, `step ${step} p[${i}] ${got[i]} ≈ ${ref[i]}`);
  }
  t.equal(adam.step, 2);
});
