// The result seq file (issue 18, finding 8): a corrupt file or a full disk never stops inference;
// numbers never repeat; what could not be numbered is counted and reported.
import t, { type Test } from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SeqCounter } from '../../src/fleet/seq.js';
import { FleetLink } from '../../src/fleet/publisher.js';
import { sampleBody } from './fixtures.js';

function tempDir(t: Test): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lvunet-seq-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const NOW = Date.UTC(2026, 11, 3, 8, 0, 0);

t.test('numbers survive a restart, never repeat, and the file is private', async (t) => {
  const file = path.join(tempDir(t), 'state', 'result-seq.json');
  const a = new SeqCounter(file, 10);
  t.same([a.take(), a.take(), a.take()], [0, 1, 2]);
  const b = new SeqCounter(file, 10);
  t.equal(b.take(), 10, 'a restart skips the rest of the reserved block');
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
});

t.test('a corrupt file is moved aside and numbering continues above anything issued before', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'result-seq.json');
  for (const junk of ['{"reserved": 12', '{"reserved": -4}', '\u0000\u0000\u0000']) {
    writeFileSync(file, junk);
    const s = new SeqCounter(file, 100, () => NOW);
    t.equal(s.take(), NOW * 1000, JSON.stringify(junk));
    const [incident] = s.takeIncidents();
    t.match(incident, { kind: 'recovered', message: /unreadable|no valid/ });
    t.ok(readdirSync(dir).some((f) => f.startsWith('result-seq.json.corrupt-')), 'kept for inspection');
    t.equal(new SeqCounter(file, 100, () => NOW).take(), NOW * 1000 + 100, 'and the new reservation holds');
  }
});

t.test('with a corrupt file and a clock in 1970, results stop being numbered (not inference), loudly', async (t) => {
  const file = path.join(tempDir(t), 'result-seq.json');
  writeFileSync(file, 'garbage');
  const s = new SeqCounter(file, 100, () => 5_000);
  t.equal(s.take(), undefined);
  t.match(s.takeIncidents(), [{ kind: 'stalled', message: /clock/ }]);
});

t.test('a reservation that cannot be written skips that result and retries on the next', async (t) => {
  // A path under a regular file (ENOTDIR) fails for root too, unlike a read-only directory.
  const dir = tempDir(t);
  const blocker = path.join(dir, 'blocker');
  writeFileSync(blocker, 'x');
  const bad = new SeqCounter(path.join(blocker, 'result-seq.json'), 10);
  t.equal(bad.take(), undefined, 'no number without a durable reservation');
  t.equal(bad.take(), undefined);
  t.equal(bad.takeIncidents().filter((i) => i.kind === 'stalled').length, 1, 'one stalled incident per streak');
  const good = path.join(dir, 'ok');
  mkdirSync(good);
  chmodSync(good, 0o700);
  t.equal(new SeqCounter(path.join(good, 'result-seq.json'), 10).take(), 0);
});

t.test('a FleetLink starts on a corrupt seq file, keeps numbering, and reports it', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'result-seq.json'), '{"reserved":');
  const link = new FleetLink({ url: 'mqtt://127.0.0.1:1', device: 'cart-seq', queue: { dir, fsync: 'never' } });
  const incidents: string[] = [];
  link.on('incident', (i) => incidents.push(i.kind));
  const seq = link.publishResult(sampleBody(0));
  t.ok(seq !== undefined && seq > Date.now() * 1000 - 60e9, `numbered from the clock: ${seq}`);
  t.same(incidents, ['recovered']);
  t.equal(link.stats().queue.pending, 1, 'queued for delivery');
  await link.close(0);
  t.match(JSON.parse(readFileSync(path.join(dir, 'result-seq.json'), 'utf8')), { reserved: Number });
});

t.test('a queue directory that cannot be opened does not stop the link: memory queue, reported', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'file'), 'x');
  const queueDir = path.join(dir, 'file', 'queue');
  const seqFile = path.join(dir, 'result-seq.json');
  const link = new FleetLink({ url: 'mqtt://127.0.0.1:1', device: 'cart-ro', queue: { dir: queueDir }, seqFile });
  const incidents: string[] = [];
  link.on('incident', (i) => incidents.push(`${i.kind}: ${i.message}`));
  t.equal(link.publishResult(sampleBody(0)), 0, 'results still queue (in memory)');
  t.match(incidents, [/write-failed: offline queue .* cannot be opened .* in memory only/]);
  t.equal(link.stats().queue.pending, 1);
  await link.close(0);
});

t.test('the same without a seq file of its own: results are numbered from the clock, not lost', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'file'), 'x');
  const queueDir = path.join(dir, 'file', 'queue');
  const now = Date.UTC(2026, 11, 3);
  const link = new FleetLink({ url: 'mqtt://127.0.0.1:1', device: 'cart-ro', queue: { dir: queueDir }, now: () => now });
  const incidents: string[] = [];
  link.on('incident', (i) => incidents.push(`${i.kind}: ${i.message}`));
  t.equal(link.publishResult(sampleBody(0)), now * 1000, 'numbered from the clock in microseconds (the seq file would sit in the unusable directory)');
  t.equal(link.publishResult(sampleBody(1)), now * 1000 + 1);
  t.equal(link.stats().unpublished, 0, 'nothing left unpublished');
  t.match(incidents.join('\n'), /recovered: the queue directory .* cannot be used/);
  await link.close(0);
});
