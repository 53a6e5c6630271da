/**
 * How data-parallel training splits a batch (parallel-shard.ts). The steps and training runs on real
 * images, which take minutes, are soak tests: test/soak/train/parallel-*.test.ts.
 */
import t from 'tap';
import { shardSizes } from '../../src/train/parallel-shard.js';

t.test('shards are as even as possible, the first ones taking the remainder', async (t) => {
  t.same(shardSizes(8, 2), [4, 4]);
  t.same(shardSizes(8, 3), [3, 3, 2]);
  t.same(shardSizes(7, 4), [2, 2, 2, 1]);
  t.same(shardSizes(1, 2), [1, 0], 'a worker may get nothing');
  for (const [n, w] of [[5, 2], [64, 3], [3, 5]]) t.equal(shardSizes(n, w).reduce((a, b) => a + b, 0), n, `${n} over ${w} workers: every image once`);
});
