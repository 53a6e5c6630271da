// The disk queue under damage and write faults (issue 18, findings 3, 4 and 8): a flipped byte or a
// scrambled segment costs only the records it touches and is reported with an exact count; an
// index that contradicts the segments is not believed; ENOSPC degrades to the drop policy, counted,
// never thrown; queue files are private.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { DiskStore, type DiskStoreOptions, type SegmentIo } from '../../../src/fleet/queue/disk.js';

function tempDir(t: Test): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lvunet-damage-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const open = (dir: string, extra: Partial<DiskStoreOptions> = {}): DiskStore => new DiskStore({ dir, fsync: 'never', autoFlush: false, ...extra });
const segments = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith('seg-')).sort();
const payloads = (s: DiskStore): string[] => s.peek(0, 1e9).map((m) => m.payload.toString());
const body = (i: number): string => JSON.stringify({ seq: i, coverage: i / 1000, pad: 'r'.repeat(40 + (i % 7)) });

/** Appends n messages and returns each record's [start, end) in the (single) segment. */
function fill(dir: string, n: number): Array<[number, number]> {
  const s = open(dir);
  const spans: Array<[number, number]> = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    s.append({ topic: 'lvunet/cart/result', payload: body(i) });
    const size = statSync(path.join(dir, segments(dir)[0])).size;
    spans.push([at, size]);
    at = size;
  }
  s.close();
  return spans;
}

t.test('one flipped byte loses only the record it hit; the loss is counted, reported once, and the rest kept', async (t) => {
  const dir = tempDir(t);
  const spans = fill(dir, 200);
  const file = path.join(dir, segments(dir)[0]);
  const buf = readFileSync(file);
  const hit = 104;
  buf[spans[hit][0] + 20] ^= 0x10;
  writeFileSync(file, buf);
  const b = open(dir);
  const got = payloads(b);
  t.equal(got.length, 199, '199 intact records kept (before the fix: 104, everything after the flip was cut off)');
  t.notOk(got.includes(body(hit)));
  t.equal(b.stats().damaged, 1);
  const incidents = b.takeIncidents();
  t.equal(incidents.length, 1);
  t.match(incidents[0], { kind: 'damaged', lost: 1 });
  b.close();
  const c = open(dir);
  t.equal(payloads(c).length, 199);
  t.same(c.takeIncidents(), [], 'the segment was repaired: the same loss is not reported again');
  t.equal(c.stats().damaged, 0);
  c.close();
});

t.test('a flipped byte at 100 random offsets: every time exactly the hit record is lost and counted', async (t) => {
  const dir = tempDir(t);
  const spans = fill(dir, 300);
  const original = readFileSync(path.join(dir, segments(dir)[0]));
  let seed = 18;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let failures = 0;
  for (let k = 0; k < 100; k++) {
    const run = path.join(dir, `run-${k}`);
    mkdirSync(run);
    const buf = Buffer.from(original);
    const offset = Math.floor(random() * buf.length);
    buf[offset] ^= 1 << Math.floor(random() * 8);
    writeFileSync(path.join(run, segments(dir)[0]), buf);
    const s = open(run);
    const hit = spans.findIndex(([a, b]) => offset >= a && offset < b);
    const expected = Array.from({ length: 300 }, (_, i) => body(i)).filter((_, i) => i !== hit);
    const got = payloads(s);
    const lost = s.takeIncidents().reduce((n, x) => n + x.lost, 0);
    if (got.length !== expected.length || got.some((p, i) => p !== expected[i]) || lost !== 1 || s.stats().damaged !== 1) {
      failures++;
      t.fail(`offset ${offset} (record ${hit}): ${got.length} kept, ${lost} reported lost`);
    }
    s.close();
    rmSync(run, { recursive: true });
  }
  t.equal(failures, 0, '100 flips: 299 intact records kept and 1 loss reported each time');
});

t.test('a scrambled segment keeps every intact record and counts the ones cut', async (t) => {
  const dir = tempDir(t);
  const spans = fill(dir, 120);
  const file = path.join(dir, segments(dir)[0]);
  const buf = readFileSync(file);
  // Swap two blocks at offsets that fall inside records, as a misdirected write would.
  const a = spans[30][0] + 11;
  const b = spans[80][0] + 23;
  const len = 500;
  const blockA = Buffer.from(buf.subarray(a, a + len));
  buf.copy(buf, a, b, b + len);
  blockA.copy(buf, b);
  const original = readFileSync(file);
  writeFileSync(file, buf);
  // A record survives where its bytes are still whole somewhere (a block moved whole with it).
  const survivors = spans.map(([s, e], i) => (buf.indexOf(original.subarray(s, e)) >= 0 ? i : -1)).filter((i) => i >= 0);
  t.ok(survivors.length < 120 && survivors.length > 100, `${120 - survivors.length} records cut by the swap`);
  const st = open(dir);
  const got = payloads(st);
  t.same(got, survivors.map(body), 'every intact record, in id order (also the ones moved whole)');
  t.equal(st.takeIncidents().reduce((n, x) => n + x.lost, 0), 120 - survivors.length, 'the ones cut are counted');
  st.close();
});

function indexWith(fields: Record<string, unknown>): string {
  return `${JSON.stringify(fields)}\n`;
}

t.test('an index that claims everything delivered is not believed: nothing intact is dropped', async (t) => {
  const cases: Record<string, (n: number) => string> = {
    'old format, all delivered': (n) => indexWith({ version: 1, committed: n, dropped: 0 }),
    'bad checksum': (n) => indexWith({ version: 2, committed: n, dropped: 0, nextId: n + 1, crc: 1234 }),
    'beyond the newest record': (n) => {
      const committed = n + 50;
      return indexWith({ version: 2, committed, dropped: 0, nextId: committed + 1, crc: crc32(`2:${committed}:0:${committed + 1}`) });
    },
    garbage: () => '\u0000\u0013 not json',
  };
  for (const [name, text] of Object.entries(cases)) {
    const dir = tempDir(t);
    const a = open(dir);
    for (let i = 0; i < 40; i++) a.append({ topic: 'r', payload: body(i) });
    a.ack(1);
    a.close();
    writeFileSync(path.join(dir, 'index.json'), text(40));
    const b = open(dir);
    t.equal(b.stats().pending, 40, `${name}: all 40 records on disk are queued again (at-least-once)`);
    const [incident] = b.takeIncidents();
    t.match(incident, { kind: 'index-recovered', lost: 0 }, name);
    b.close();
    const c = open(dir);
    t.same(c.takeIncidents(), [], `${name}: a fresh index was written`);
    c.close();
  }
});

t.test('a trusted index still catches records lost in a power cut after it counted them', async (t) => {
  const dir = tempDir(t);
  const a = open(dir, { fsync: 'always' });
  for (let i = 0; i < 10; i++) a.append({ topic: 'r', payload: body(i) });
  a.ack(1);
  a.close();
  // The last three records never reached the disk.
  const file = path.join(dir, segments(dir)[0]);
  const spans = readFileSync(file);
  let end = 0;
  for (let i = 0; i < 7; i++) end += 8 + spans.readUInt32LE(end);
  writeFileSync(file, spans.subarray(0, end));
  const b = open(dir);
  t.equal(b.stats().pending, 6);
  t.equal(b.takeIncidents().reduce((n, x) => n + x.lost, 0), 3);
  b.close();
});

t.test('a record that changes on disk after open is dropped at read time and reported, not thrown', async (t) => {
  const dir = tempDir(t);
  const a = open(dir);
  for (let i = 0; i < 5; i++) a.append({ topic: 'r', payload: body(i) });
  const file = path.join(dir, segments(dir)[0]);
  const buf = readFileSync(file);
  buf[buf.length - 3] ^= 0xff;
  writeFileSync(file, buf);
  t.same(payloads(a), [0, 1, 2, 3].map(body));
  t.match(a.takeIncidents(), [{ kind: 'damaged', lost: 1 }]);
  t.equal(a.stats().damaged, 1);
  a.close();
});

/** A disk that fills up after `room` bytes and empties when told. */
function fullDisk(room: number): SegmentIo & { room: number } {
  const io = {
    room,
    write(fd: number, buf: Buffer, offset: number, length: number, position: number): number {
      const n = Math.min(length, io.room);
      if (n <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      io.room -= n;
      return writeSync(fd, buf, offset, n, position);
    },
  };
  return io;
}

t.test('ENOSPC mid-record under drop-newest: the new message is dropped and counted, the queue stays consistent', async (t) => {
  const dir = tempDir(t);
  const io = fullDisk(1000);
  const s = open(dir, { dropPolicy: 'drop-newest', io });
  const accepted: string[] = [];
  for (let i = 0; i < 30; i++) {
    const id = s.append({ topic: 'r', payload: body(i) });
    if (id !== undefined) accepted.push(body(i));
  }
  t.ok(accepted.length > 5 && accepted.length < 30, `${accepted.length} fit before the disk filled`);
  const st = s.stats();
  t.equal(st.writeErrors, 30 - accepted.length);
  t.equal(st.dropped, 30 - accepted.length);
  const incidents = s.takeIncidents();
  t.equal(incidents.length, 1, 'the first failure is reported at once, not every one');
  t.match(incidents[0], { kind: 'write-failed', code: 'ENOSPC', lost: 1 });
  io.room = 1e9;
  t.ok(s.append({ topic: 'r', payload: 'after' }) !== undefined, 'appends work again once there is room');
  t.match(s.takeIncidents(), [{ kind: 'write-failed', code: 'ENOSPC', lost: 30 - accepted.length - 1 }], 'the rest of the streak, counted, when it ends');
  s.close();
  const b = open(dir);
  t.same(payloads(b), [...accepted, 'after'], 'no half record left behind; the accepted ones survive a restart');
  t.same(b.takeIncidents(), []);
  b.close();
});

t.test('ENOSPC under drop-oldest frees the oldest segment and keeps the newest message', async (t) => {
  const dir = tempDir(t);
  const io = fullDisk(1e9);
  const s = open(dir, { dropPolicy: 'drop-oldest', io, segmentBytes: 400 });
  for (let i = 0; i < 20; i++) s.append({ topic: 'r', payload: body(i) });
  const before = s.stats().pending;
  io.room = 0;
  // The write fails, the oldest segment is given up, the retry still fails (no room at all), so
  // the message is dropped too: both counted.
  t.equal(s.append({ topic: 'r', payload: 'lost' }), undefined);
  const st = s.stats();
  t.ok(st.pending < before, 'the oldest segment was given up');
  t.equal(st.dropped, before - st.pending + 1, 'every message given up is counted');
  io.room = 1e9;
  s.append({ topic: 'r', payload: 'kept' });
  t.equal(payloads(s).at(-1), 'kept');
  s.close();
});

t.test('a real full file system (tmpfs of 256 KiB): appends degrade, never throw, and recover', async (t) => {
  if (process.getuid?.() !== 0) {
    t.plan(0, 'skipped: needs root to mount a tmpfs');
    return;
  }
  const mnt = tempDir(t);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
  } catch (err) {
    t.plan(0, `skipped: cannot mount a tmpfs here: ${(err as Error).message.split('\n')[0]}`);
    return;
  }
  t.teardown(() => execFileSync('umount', [mnt]));
  const dir = path.join(mnt, 'queue');
  const s = new DiskStore({ dir, fsync: 'always', autoFlush: false, dropPolicy: 'drop-newest', segmentBytes: 64 * 1024 });
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    if (s.append({ topic: 'lvunet/cart/result', payload: body(i) }) === undefined) refused++;
    else accepted++;
  }
  t.ok(refused > 0 && accepted > 0, `${accepted} accepted, ${refused} refused by a full disk`);
  t.equal(s.stats().dropped, refused);
  t.ok(s.takeIncidents().some((x) => x.kind === 'write-failed' && x.code === 'ENOSPC'), 'ENOSPC reported');
  // Delivering frees whole segments once the index says so.
  for (const m of s.peek(0, accepted)) s.ack(m.id);
  s.flush();
  t.ok(s.append({ topic: 'lvunet/cart/result', payload: 'after' }) !== undefined, 'room again after delivery');
  s.close();
  const b = new DiskStore({ dir, fsync: 'always', autoFlush: false });
  t.same(payloads(b), ['after']);
  b.close();
});

t.test('queue files are 0600 and the directory 0700, also when an older version left them open', async (t) => {
  const dir = tempDir(t);
  const q = path.join(dir, 'q');
  const a = open(q);
  a.append({ topic: 'r', payload: 'm' });
  a.append({ topic: 'r', payload: 'm' });
  a.ack(1);
  a.close();
  const mode = (p: string): number => statSync(p).mode & 0o777;
  t.equal(mode(q), 0o700);
  for (const f of readdirSync(q)) t.equal(mode(path.join(q, f)), 0o600, f);
  chmodSync(q, 0o755);
  for (const f of readdirSync(q)) chmodSync(path.join(q, f), 0o644);
  open(q).close();
  t.equal(mode(q), 0o700);
  for (const f of segments(q)) t.equal(mode(path.join(q, f)), 0o600, `${f} tightened`);
});
