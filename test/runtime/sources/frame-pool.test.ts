import t from 'tap';

import { FramePool } from '../../../src/runtime/sources/frame-pool.js';

t.test('a buffer given back is handed out again; at most `keep` are held', (t) => {
  const pool = new FramePool(16, 2);
  const [a, b, c] = [pool.take(), pool.take(), pool.take()];
  t.equal(a.byteLength, 16);
  t.not(a, b);
  pool.give(a);
  pool.give(b);
  pool.give(c);
  t.equal(pool.held, 2, 'the third is left to the GC');
  const again = [pool.take(), pool.take()];
  t.ok(again.includes(a) && again.includes(b), 'the kept buffers come back');
  t.end();
});

t.test('only its own buffers, once each, are taken back', (t) => {
  const pool = new FramePool(16);
  pool.give(new Uint8Array(16));
  const a = pool.take();
  t.equal(pool.held, 0, 'a stranger is ignored');
  pool.give(a.subarray(2, 8));
  t.equal(pool.held, 1, 'a view gives back the buffer it is a view of');
  pool.give(a);
  t.equal(pool.held, 1, 'a second give of the same buffer is ignored');
  t.equal(pool.take(), a, 'the whole buffer comes back');
  t.throws(() => new FramePool(0), /positive integer/);
  t.end();
});

t.test('RawFileSource reads later frames into buffers given back, with their own content', async (t) => {
  const { RawFileSource } = await import('../../../src/runtime/sources/raw-file-source.js');
  const frameBytes = 4 * 2 * 2; // 4x2 YUYV
  const bytes = Buffer.alloc(frameBytes * 3);
  for (let f = 0; f < 3; f++) bytes.fill(f + 1, f * frameBytes, (f + 1) * frameBytes);
  const dir = t.testdir({ 'clip_4x2.yuyv': bytes });
  const source = new RawFileSource(`${dir}/clip_4x2.yuyv`);
  await source.open();
  const first = await source.next();
  const second = await source.next();
  if (!first || !second) throw new Error('two frames expected');
  t.equal(first.data[0], 1);
  source.recycle(first.data);
  const third = await source.next();
  t.equal(third?.data, first.data, 'the third frame is read into the first frame\'s buffer');
  t.ok(third?.data.every((v) => v === 3), 'and holds the third frame\'s bytes');
  t.ok(second.data.every((v) => v === 2), 'a frame not given back is untouched');
  t.equal(await source.next(), null);
  await source.close();
});
