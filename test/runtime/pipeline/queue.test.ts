import t from 'tap';
import { StageQueue } from '../../../src/runtime/pipeline/queue.js';
import { DropCounter, LatencyRing } from '../../../src/runtime/pipeline/stats.js';
import { same } from '../../helpers/same.js';

t.test("'latest' replaces the oldest item and reports it", async (t) => {
  const dropped: number[] = [];
  const q = new StageQueue<number>(1, 'latest', (d) => dropped.push(d));
  await q.put(1);
  await q.put(2);
  await q.put(3);
  t.same(dropped, [1, 2]);
  t.equal(await q.take(), 3);
  q.close();
  t.equal(await q.take(), null);
  t.equal(await q.put(4), false, 'a closed queue takes nothing');
});

t.test("'backpressure' makes the producer wait for room", async (t) => {
  const q = new StageQueue<number>(1, 'backpressure', () => t.fail('never drops'));
  await q.put(1);
  let second = false;
  const p = q.put(2).then(() => (second = true));
  await new Promise((r) => setImmediate(r));
  t.equal(second, false, 'blocked while full');
  t.equal(await q.take(), 1);
  await p;
  t.equal(second, true);
  t.equal(await q.take(), 2);
});

t.test('a waiting consumer gets the item directly; close releases everyone', async (t) => {
  const q = new StageQueue<string>(1, 'backpressure');
  const taken = q.take();
  await q.put('a');
  t.equal(await taken, 'a');
  await q.put('b');
  const blocked = q.put('c');
  q.close();
  t.equal(await blocked, false);
  t.equal(await q.take(), 'b', 'queued items drain after close');
  t.equal(await q.take(), null);
  t.throws(() => new StageQueue(0, 'latest'), RangeError);
});

t.test('latency ring percentiles and drop counts', async (t) => {
  const ring = new LatencyRing(100);
  for (let i = 1; i <= 100; i++) ring.add(i);
  t.match(ring.percentiles(), { count: 100, p50: 50, p95: 95, p99: 99, max: 100, mean: 50.5 });
  for (let i = 0; i < 100; i++) ring.add(1000);
  t.match(ring.percentiles(), { count: 200, p50: 1000 }, 'only the most recent samples count');
  t.same(new LatencyRing().percentiles(), { count: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 });
  const d = new DropCounter();
  d.add('source', 'truncated');
  d.add('source', 'truncated');
  d.add('preprocess', 'ERR_FRAME_SIZE');
  same(t, d.counts(), { total: 3, byStage: { source: 2, preprocess: 1 }, byReason: { 'source:truncated': 2, 'preprocess:ERR_FRAME_SIZE': 1 } });
});
