import t from 'tap';
import { floorLr, lambdaAt, lrAt } from '../../src/train/schedule.js';

t.test('λ rises from 0 and is exactly 1 for the last 10 % of epochs', async (t) => {
  const o = { epochs: 300 };
  t.equal(lambdaAt(0, o), 0);
  const values = Array.from({ length: 300 }, (_, e) => lambdaAt(e, o));
  t.ok(values.every((v, e) => e === 0 || v >= values[e - 1]), 'monotone');
  t.ok(values[269] < 1, 'epoch 270 (1-based) still ramps');
  t.ok(values.slice(270).every((v) => v === 1), 'epochs 271-300 train at exactly λ = 1');
  t.equal(lambdaAt(299, o), 1);
  t.ok(Math.abs(lambdaAt(135, o) - (1 - Math.cos(Math.PI / 4))) < 1e-12, 'the paper curve, compressed to 90 %');
});

t.test('short runs still end at λ = 1', async (t) => {
  for (const epochs of [1, 2, 3, 5, 10]) t.equal(lambdaAt(epochs - 1, { epochs }), 1, `E = ${epochs}`);
  t.equal(lambdaAt(0, { epochs: 2 }), 0);
});

t.test('cosine learning rate from 1e-3 to 1e-5', async (t) => {
  const o = { epochs: 300 };
  t.equal(lrAt(0, o), 1e-3);
  t.ok(Math.abs(lrAt(299, o) - 1e-5) < 1e-15);
  t.ok(lrAt(150, o) < 1e-3 && lrAt(150, o) > 1e-5);
  t.throws(() => lrAt(300, o), RangeError);
  t.throws(() => lambdaAt(-1, o), RangeError);
});

t.test('a starting rate below the floor is held, not raised to the floor', async (t) => {
  const o = { epochs: 10, lr: 5e-6 };
  t.same([0, 5, 9].map((e) => lrAt(e, o)), [5e-6, 5e-6, 5e-6]);
  t.equal(floorLr(o), 5e-6);
  t.equal(floorLr({ lr: 3e-4 }), 1e-5);
  t.ok(Math.abs(lrAt(9, { epochs: 10, lr: 3e-4 }) - 1e-5) < 1e-15, 'otherwise the usual floor');
});
