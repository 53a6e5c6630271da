// What only the disk store promises: surviving restarts and crashes mid-write.
import t, { type Test } from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DiskStore, type DiskStoreOptions } from '../../../src/fleet/queue/disk.js';
import { same } from '../../helpers/same.js';

function tempDir(t: Test): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lvunet-disk-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const open = (dir: string, extra: Partial<DiskStoreOptions> = {}): DiskStore =>
  new DiskStore({ dir, fsync: 'never', autoFlush: false, ...extra });

const segments = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith('seg-')).sort();
const payloads = (s: DiskStore): string[] => s.peek(0, 1e9).map((m) => m.payload.toString());

t.test('pending messages and acknowledgements survive a clean restart', async (t) => {
  const dir = tempDir(t);
  const a = open(dir);
  for (let i = 0; i < 5; i++) a.append({ topic: 'r', payload: `m${i}` });
  a.ack(1);
  a.ack(2);
  a.close();
  const b = open(dir);
  t.same(payloads(b), ['m2', 'm3', 'm4']);
  t.equal(b.append({ topic: 'r', payload: 'm5' }), 6, 'ids continue after a restart');
  b.close();
});

t.test('a crash before the batched commit re-delivers (never loses) acknowledged messages', async (t) => {
  const dir = tempDir(t);
  let now = 0;
  const a = open(dir, { commitIntervalMs: 1000, clock: { now: () => now } });
  for (let i = 0; i < 4; i++) a.append({ topic: 'r', payload: `m${i}` });
  a.ack(1);
  now = 1500;
  a.ack(2); // commit due: index says everything <= 2 is gone
  a.ack(3); // within the interval: only in memory
  // "crash": no close(), no flush()
  const b = open(dir);
  t.same(payloads(b), ['m2', 'm3'], 'm2 is delivered again, m3 was never acknowledged');
  b.close();
  a.close();
});

t.test('fsync=always commits every acknowledgement at once', async (t) => {
  const dir = tempDir(t);
  const a = open(dir, { fsync: 'always' });
  for (let i = 0; i < 3; i++) a.append({ topic: 'r', payload: `m${i}` });
  a.ack(1);
  a.ack(2);
  const b = open(dir);
  t.same(payloads(b), ['m2']);
  b.close();
  a.close();
});

t.test('a record torn mid-write is detected, discarded, counted, and the segment stays appendable', async (t) => {
  const dir = tempDir(t);
  const a = open(dir);
  for (let i = 0; i < 3; i++) a.append({ topic: 'lvunet/c/result', payload: `payload-${i}-${'z'.repeat(50)}` });
  a.close();
  const [seg] = segments(dir);
  const file = path.join(dir, seg);
  const size = statSync(file).size;
  const recordLength = size / 3;
  // Cut the last record in the middle of its body, as a power cut mid-write would.
  truncateSync(file, size - Math.floor(recordLength / 2));
  const b = open(dir);
  t.same(payloads(b).map((p) => p.slice(0, 9)), ['payload-0', 'payload-1']);
  t.equal(b.stats().torn, 1);
  t.equal(statSync(file).size, 2 * recordLength, 'the torn tail is cut off');
  t.equal(b.append({ topic: 'lvunet/c/result', payload: 'after' }), 3, 'the torn id is reused: it was never delivered');
  b.close();
  const c = open(dir);
  t.same(payloads(c).at(-1), 'after');
  t.equal(c.stats().torn, 0, 'nothing torn the second time');
  c.close();
});

t.test('a torn header, a flipped byte and trailing garbage are all caught by length + CRC', async (t) => {
  for (const damage of ['header', 'flip', 'garbage'] as const) {
    const dir = tempDir(t);
    const a = open(dir);
    for (let i = 0; i < 4; i++) a.append({ topic: 'r', payload: `m${i}` });
    a.close();
    const file = path.join(dir, segments(dir)[0]);
    const size = statSync(file).size;
    const rec = size / 4;
    if (damage === 'header') truncateSync(file, size - rec + 3);
    if (damage === 'flip') {
      const buf = readFileSync(file);
      buf[size - 2] ^= 0x40;
      writeFileSync(file, buf);
    }
    if (damage === 'garbage') appendFileSync(file, Buffer.from([9, 0, 0, 0, 1, 2]));
    const b = open(dir);
    t.same(payloads(b), damage === 'garbage' ? ['m0', 'm1', 'm2', 'm3'] : ['m0', 'm1', 'm2'], damage);
    t.equal(b.stats().torn, 1, damage);
    b.close();
  }
});

t.test('segments roll over and fully acknowledged ones are deleted', async (t) => {
  const dir = tempDir(t);
  const a = open(dir, { segmentBytes: 200 });
  for (let i = 0; i < 20; i++) a.append({ topic: 'r', payload: 'x'.repeat(60) });
  const before = segments(dir).length;
  t.ok(before >= 5, `${before} segments`);
  for (let id = 1; id <= 15; id++) a.ack(id);
  t.equal(segments(dir).length, before, 'nothing is deleted before the index says so (a crash must not make delivered messages look lost)');
  a.flush();
  const after = segments(dir).length;
  t.ok(after <= 3, `${after} segments left for 5 pending messages`);
  a.close();
  const b = open(dir, { segmentBytes: 200 });
  t.equal(b.stats().pending, 5);
  t.same(b.peek(0, 1).map((m) => m.id), [16]);
  for (let id = 16; id <= 20; id++) b.ack(id);
  b.flush();
  b.append({ topic: 'r', payload: 'x'.repeat(60) });
  t.equal(segments(dir).length, 1, 'only the segment being written remains');
  b.close();
});

t.test('bounds and the dropped counter persist across restarts', async (t) => {
  const dir = tempDir(t);
  const a = open(dir, { maxMessages: 5 });
  for (let i = 0; i < 12; i++) a.append({ topic: 'r', payload: `m${i}` });
  t.equal(a.stats().dropped, 7);
  a.close();
  const b = open(dir, { maxMessages: 5 });
  t.same(payloads(b), ['m7', 'm8', 'm9', 'm10', 'm11']);
  t.equal(b.stats().dropped, 7);
  b.append({ topic: 'r', payload: 'm12' });
  t.equal(b.stats().dropped, 8);
  t.same(payloads(b)[0], 'm8');
  b.close();
});

t.test('a damaged index re-delivers everything on disk instead of failing', async (t) => {
  const dir = tempDir(t);
  const a = open(dir);
  for (let i = 0; i < 3; i++) a.append({ topic: 'r', payload: `m${i}` });
  a.ack(1);
  a.close();
  writeFileSync(path.join(dir, 'index.json'), '{"committed": 1, "dro');
  const b = open(dir);
  t.same(payloads(b), ['m0', 'm1', 'm2']);
  b.close();
});

t.test('the auto-flush timer commits acknowledgements without further activity', async (t) => {
  const dir = tempDir(t);
  const a = new DiskStore({ dir, fsync: 'interval', fsyncIntervalMs: 50, commitIntervalMs: 50 });
  a.append({ topic: 'r', payload: 'm0' });
  a.append({ topic: 'r', payload: 'm1' });
  a.ack(1);
  await new Promise((r) => setTimeout(r, 200));
  const b = open(dir);
  t.same(payloads(b), ['m1']);
  b.close();
  a.close();
});

t.test('background commits (fsync=interval) never overwrite a newer index and leave no temp files', async (t) => {
  const dir = tempDir(t);
  let now = 0;
  const a = new DiskStore({ dir, fsync: 'interval', fsyncIntervalMs: 10, commitIntervalMs: 10, clock: { now: () => now }, autoFlush: false });
  for (let i = 0; i < 50; i++) a.append({ topic: 'r', payload: `m${i}` });
  for (let id = 1; id <= 40; id++) {
    now += 20;
    a.ack(id);
    if (id === 20) a.flush();
  }
  // The synchronous commit in close() is the newest; background ones still in flight must yield.
  a.close();
  await new Promise((r) => setTimeout(r, 300));
  t.same(readdirSync(dir).filter((f) => f.includes('.tmp')), []);
  const b = open(dir);
  same(t, payloads(b), Array.from({ length: 10 }, (_, i) => `m${40 + i}`));
  b.close();
});
