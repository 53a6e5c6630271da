// One contract, run against every MessageStore, so the memory and disk stores stay interchangeable.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DiskStore } from '../../../src/fleet/queue/disk.js';
import { MemoryStore } from '../../../src/fleet/queue/memory.js';
import type { MessageStore, StoreLimits } from '../../../src/fleet/queue/store.js';
import { same } from '../../helpers/same.js';

type Factory = (limits?: StoreLimits) => MessageStore;

const factories: Record<string, (t: Test) => Factory> = {
  memory: () => (limits) => new MemoryStore(limits),
  disk: (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lvunet-store-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    let n = 0;
    return (limits) => new DiskStore({ dir: path.join(dir, String(n++)), fsync: 'never', autoFlush: false, segmentBytes: 4096, ...limits });
  },
};

const topics = (store: MessageStore, after = 0, limit = 1e9): string[] => store.peek(after, limit).map((m) => m.topic);

for (const [name, makeFactory] of Object.entries(factories)) {
  t.test(`${name} store`, async (t) => {
    const make = makeFactory(t);

    t.test('append assigns increasing ids and peek returns oldest first', async (t) => {
      const s = make();
      const ids = [0, 1, 2, 3, 4].map((i) => s.append({ topic: `t/${i}`, payload: `p${i}`, qos: i % 2 === 0 ? 1 : 0, retain: i === 3 }));
      t.same(ids, [1, 2, 3, 4, 5]);
      const all = s.peek(0, 10);
      t.same(all.map((m) => m.payload.toString()), ['p0', 'p1', 'p2', 'p3', 'p4']);
      t.same(all.map((m) => m.qos), [1, 0, 1, 0, 1]);
      t.same(all.map((m) => m.retain), [false, false, false, true, false]);
      t.same(topics(s, 2, 2), ['t/2', 't/3']);
      t.same(s.peek(5, 10), []);
      same(t, s.stats(), { pending: 5, bytes: 5 * 5, dropped: 0, torn: 0, damaged: 0, writeErrors: 0 });
      s.close();
    });

    t.test('ack removes exactly that message, in any order, and repeats are harmless', async (t) => {
      const s = make();
      for (let i = 0; i < 6; i++) s.append({ topic: 'a', payload: Buffer.from([i]) });
      s.ack(3);
      s.ack(1);
      s.ack(3);
      s.ack(99);
      t.same(s.peek(0, 10).map((m) => m.id), [2, 4, 5, 6]);
      t.equal(s.stats().pending, 4);
      t.equal(s.stats().bytes, 4 * 2);
      for (const id of [2, 4, 5, 6]) s.ack(id);
      t.same(s.peek(0, 10), []);
      t.equal(s.append({ topic: 'a', payload: 'x' }), 7, 'ids never go back');
      s.close();
    });

    t.test('binary payloads come back byte for byte', async (t) => {
      const s = make();
      const payload = Buffer.alloc(3000);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 131) & 0xff;
      s.append({ topic: 'lvunet/ü/result', payload });
      const [m] = s.peek(0, 1);
      t.equal(m.topic, 'lvunet/ü/result');
      t.ok(m.payload.equals(payload));
      s.close();
    });

    t.test('drop-oldest keeps the newest and counts what it dropped', async (t) => {
      const s = make({ maxMessages: 3 });
      for (let i = 0; i < 10; i++) t.ok(s.append({ topic: `t/${i}`, payload: 'x' }) !== undefined);
      t.same(topics(s), ['t/7', 't/8', 't/9']);
      t.equal(s.stats().dropped, 7);
      s.close();
    });

    t.test('drop-newest keeps the oldest and refuses the rest', async (t) => {
      const s = make({ maxMessages: 3, dropPolicy: 'drop-newest' });
      const ids = [];
      for (let i = 0; i < 10; i++) ids.push(s.append({ topic: `t/${i}`, payload: 'x' }));
      t.same(ids.slice(3), [undefined, undefined, undefined, undefined, undefined, undefined, undefined]);
      t.same(topics(s), ['t/0', 't/1', 't/2']);
      t.equal(s.stats().dropped, 7);
      s.ack(1);
      t.equal(s.append({ topic: 't/10', payload: 'x' }), 4, 'room again after an ack');
      s.close();
    });

    t.test('the byte bound counts topic and payload', async (t) => {
      const s = make({ maxBytes: 100 });
      for (let i = 0; i < 10; i++) s.append({ topic: 'tt', payload: Buffer.alloc(28) });
      t.equal(s.stats().pending, 3, '3 x 30 bytes fit in 100');
      t.equal(s.stats().bytes, 90);
      t.equal(s.stats().dropped, 7);
      t.equal(s.append({ topic: 'tt', payload: Buffer.alloc(200) }), undefined, 'larger than the whole bound');
      t.equal(s.stats().dropped, 8);
      t.equal(s.stats().pending, 3, 'an oversized message does not flush the queue');
      s.close();
    });

    t.test('bad limits are refused', async (t) => {
      t.throws(() => make({ maxMessages: 0 }), RangeError);
      t.throws(() => make({ maxBytes: -1 }), RangeError);
    });

    t.test('a closed store refuses work', async (t) => {
      const s = make();
      s.close();
      t.throws(() => s.append({ topic: 'a', payload: 'b' }), /closed/);
    });
  });
}
