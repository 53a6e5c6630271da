// Fault-injection drill for the fleet link and its offline queue (issue 18, acceptance): broker
// restarts, a full disk mid-run, torn writes, one flipped byte at 100 random offsets of a queue
// segment, the broker's message-size limit, a broker that refuses publishes (ACL) and a device id
// that is not the certificate's. The bookkeeping is exact: every result the link accepted is
// either received by the operator's subscriber or counted as lost (and announced in an event),
// and the process keeps running throughout. Soak tier: about a minute against real mosquitto.
import t, { type Test } from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { FleetLink, type FleetLinkOptions } from '../../src/fleet/publisher.js';
import type { SegmentIo } from '../../src/fleet/queue/disk.js';
import { sampleBody } from '../fleet/fixtures.js';
import { json, recorder, sleep, type Recorder } from '../fleet/mqtt-helpers.js';
import { findMosquitto, startBroker, type Broker } from '../helpers/mosquitto.js';
import { REPO_ROOT } from '../helpers/paths.js';

const DEPLOY = path.join(REPO_ROOT, 'deploy', 'mosquitto');
const LIMIT = 1048576;

function tempDir(t: Test, prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `lvunet-drill-${prefix}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function openLink(t: Test, options: FleetLinkOptions): FleetLink {
  const l = new FleetLink({ reconnectMinMs: 100, reconnectMaxMs: 400, refusedRetryMaxMs: 400, ...options });
  t.teardown(() => l.close(0));
  return l;
}

/** Unique result seqs the operator received from `device`. */
function received(ops: Recorder, device: string): Set<number> {
  return new Set(ops.messages.filter((m) => m.topic === `lvunet/${device}/result`).map((m) => Number(json(m).seq)));
}

/** Sum of `details.lost` over the loss events `device` published. */
function announcedLost(ops: Recorder, device: string): number {
  return ops.messages
    .filter((m) => m.topic === `lvunet/${device}/event`)
    .map((m) => json(m))
    .filter((e) => e.type === 'drop' && typeof (e.details as { lost?: unknown } | undefined)?.lost === 'number')
    .reduce((n, e) => n + ((e.details as { lost: number }).lost ?? 0), 0);
}

const same = (a: Set<number>, b: Iterable<number>): boolean => {
  const bs = new Set(b);
  return a.size === bs.size && [...a].every((x) => bs.has(x));
};

// Which step was running when something escaped, so the summary names it. (An afterEach assertion
// cannot do this: tap refuses assertions added to a subtest after it ended.)
const crashedIn: string[] = [];
let step = '(between steps)';
t.beforeEach((t) => {
  step = t.name;
});
process.on('uncaughtException', (err) => {
  crashedIn.push(step);
  console.error(`uncaught in the drill, during "${step}":`, err);
});

if (!findMosquitto()) {
  t.plan(0, 'skipped: mosquitto is not installed');
} else {
  const broker: Broker = await startBroker({ t, extraConfig: `message_size_limit ${LIMIT}\nmax_queued_messages 100000\nautosave_interval 1` });
  // A persistent session, so what is published while the broker restarts is kept for the operator.
  const ops = await recorder(broker.url, ['lvunet/+/result', 'lvunet/+/event', 'lvunet/+/cmd/+/reply'], { clientId: 'drill-ops', clean: false, protocolVersion: 4 });
  t.teardown(() => ops.close());

  t.test('broker restarts mid-stream: every result delivered', async (t) => {
    const device = 'drill-restart';
    const link = openLink(t, { url: broker.url, device, queue: { dir: tempDir(t, 'a') } });
    link.start();
    await link.waitFor('online');
    const accepted: number[] = [];
    const started = Date.now();
    const faults = [
      { at: 800, run: () => broker.restart() },
      { at: 2000, run: () => broker.stop().then(() => sleep(1200)).then(() => broker.start()) },
      { at: 4200, run: () => broker.restart() },
    ];
    const pending: Array<Promise<void>> = [];
    while (Date.now() - started < 6000) {
      const seq = link.publishResult(sampleBody(accepted.length));
      if (seq !== undefined) accepted.push(seq);
      const due = faults.filter((f) => Date.now() - started >= f.at);
      for (const f of due) {
        faults.splice(faults.indexOf(f), 1);
        pending.push(f.run());
      }
      await sleep(8);
    }
    await Promise.all(pending);
    t.ok(await link.drain(30_000), 'drained');
    await ops.until(() => received(ops, device).size >= accepted.length, `${accepted.length} results`, 30_000);
    t.ok(same(received(ops, device), accepted), `all ${accepted.length} results delivered across 3 broker restarts`);
    t.ok(link.stats().connects >= 4, `${link.stats().connects} connects`);
  });

  t.test('disk full mid-run: refused appends counted and announced, everything accepted delivered', async (t) => {
    const device = 'drill-full';
    const mnt = tempDir(t, 'b');
    let dir = mnt;
    let io: (SegmentIo & { room: number }) | undefined;
    let mounted = false;
    if (process.getuid?.() === 0) {
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
        mounted = true;
        t.teardown(() => execFileSync('umount', [mnt]));
        dir = path.join(dir, 'queue');
      } catch {
        mounted = false;
      }
    }
    if (!mounted) {
      // Not root: the same fault through the store's write hook.
      const hook = {
        room: 200_000,
        write(fd: number, buf: Buffer, offset: number, length: number, position: number): number {
          const n = Math.min(length, hook.room);
          if (n <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          hook.room -= n;
          return writeSync(fd, buf, offset, n, position);
        },
      };
      io = hook;
    }
    t.comment(mounted ? 'a real 256 KiB tmpfs' : 'injected ENOSPC (not root)');
    const link = openLink(t, { url: broker.url, device, queue: { dir, fsync: 'always', dropPolicy: 'drop-newest', io } });
    link.start();
    await link.waitFor('online');
    await broker.stop();
    await link.waitFor('offline');
    const accepted: number[] = [];
    let refused = 0;
    for (let i = 0; i < 1500; i++) {
      const seq = link.publishResult(sampleBody(i));
      if (seq === undefined) refused++;
      else accepted.push(seq);
    }
    const s = link.stats();
    t.ok(refused > 0, `${refused} of 1500 refused by the full disk, ${accepted.length} accepted`);
    t.equal(s.queue.dropped + s.unpublished, refused, 'every refusal counted (queue.dropped + unpublished)');
    t.ok(s.queue.writeErrors > 0);
    if (io) io.room = 1e9;
    await broker.start();
    t.ok(await link.drain(30_000), 'drained after the broker came back');
    // Space is back once delivered segments are deleted: the run goes on.
    let again = 0;
    for (let i = 0; i < 50; i++) {
      const seq = link.publishResult(sampleBody(2000 + i));
      if (seq !== undefined) {
        accepted.push(seq);
        again++;
      }
    }
    t.equal(again, 50, 'all 50 accepted again: delivered records gave their space back');
    t.ok(await link.drain(20_000));
    await ops.until(() => received(ops, device).size >= accepted.length, `${accepted.length} results`, 30_000);
    t.ok(same(received(ops, device), accepted), `every accepted result delivered (${accepted.length})`);
    await ops.until(() => announcedLost(ops, device) >= refused, 'loss events for every refusal', 20_000);
    t.equal(announcedLost(ops, device), refused, `the ${refused} refusals announced to the fleet with their count (write-failed and seq events)`);
  });

  t.test('torn write and one flipped byte at 100 random offsets: intact results delivered, losses counted exactly', async (t) => {
    const device = 'drill-flip';
    const dir = tempDir(t, 'c');
    await broker.stop();
    const first = openLink(t, { url: broker.url, device, queue: { dir, fsync: 'always' } });
    const accepted: number[] = [];
    for (let i = 0; i < 300; i++) accepted.push(first.publishResult(sampleBody(i))!);
    await first.close(0);
    const [seg] = readdirSync(dir).filter((f) => f.startsWith('seg-'));
    const file = path.join(dir, seg);
    const clean = readFileSync(file);
    // Record spans and the seq each carries, from the clean file.
    const spans: Array<{ start: number; end: number; seq: number }> = [];
    for (let o = 0; o < clean.length; ) {
      const end = o + 8 + clean.readUInt32LE(o);
      const text = clean.subarray(o, end).toString('latin1');
      // The message's own seq is the last one (frame.seq comes earlier).
      spans.push({ start: o, end, seq: Number([...text.matchAll(/"seq":(\d+)/g)].at(-1)?.[1]) });
      o = end;
    }
    t.equal(spans.length, 300);
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const damaged = Buffer.from(clean);
    const hit = new Set<number>();
    for (let k = 0; k < 100; k++) {
      const offset = Math.floor(random() * clean.length);
      damaged[offset] ^= 1 << Math.floor(random() * 8);
      hit.add(spans.findIndex((s) => offset >= s.start && offset < s.end));
    }
    // A crash mid-append: the first 30 bytes of one more record.
    writeFileSync(file, Buffer.concat([damaged, clean.subarray(0, 30)]));
    const lostSeqs = new Set([...hit].map((i) => spans[i].seq));
    t.comment(`${hit.size} of 300 records hit by 100 flips`);
    await broker.start();
    const second = openLink(t, { url: broker.url, device, queue: { dir, fsync: 'always' } });
    const incidents: number[] = [];
    second.on('incident', (i) => incidents.push(i.lost ?? 0));
    second.start();
    t.ok(await second.drain(30_000), 'drained');
    const expected = accepted.filter((s) => !lostSeqs.has(s));
    await ops.until(() => received(ops, device).size >= expected.length, `${expected.length} intact results`, 30_000);
    await sleep(300);
    t.ok(same(received(ops, device), expected), `exactly the ${expected.length} intact results delivered`);
    t.equal(second.stats().queue.damaged, hit.size, `${hit.size} losses counted`);
    t.equal(incidents.reduce((a, b) => a + b, 0), hit.size, 'and reported as incidents');
    await ops.until(() => announcedLost(ops, device) >= hit.size, 'loss events on the broker');
    t.equal(announcedLost(ops, device), hit.size, 'and announced to the fleet with the same count');
  });

  t.test('broker message-size limit: oversized results and replies counted, the rest flows', async (t) => {
    const device = 'drill-size';
    const link = openLink(t, { url: broker.url, device, queue: { dir: tempDir(t, 'd') } });
    link.onCommand('snapshot', () => ({ png: 'A'.repeat(3_700_000) }));
    link.start();
    await link.waitFor('online');
    const accepted: number[] = [];
    let oversized = 0;
    for (let i = 0; i < 200; i++) {
      const seq = link.publishResult(sampleBody(i, i % 20 === 0 ? 1_500_000 : 0));
      if (seq === undefined) oversized++;
      else accepted.push(seq);
      if (i === 50) await ops.client.publishAsync(`lvunet/${device}/cmd/snapshot`, JSON.stringify({ id: 'big' }), { qos: 1 });
      await sleep(5);
    }
    t.equal(oversized, 10);
    t.equal(link.stats().rejected, 10, 'counted as rejected');
    t.ok(await link.drain(20_000));
    await ops.until(() => received(ops, device).size >= accepted.length && ops.messages.some((m) => m.topic === `lvunet/${device}/cmd/snapshot/reply`), 'results and the reply');
    t.ok(same(received(ops, device), accepted));
    t.equal(json(ops.messages.find((m) => m.topic === `lvunet/${device}/cmd/snapshot/reply`)!).ok, false, 'the oversized reply became an error reply');
    t.equal(link.stats().connects, 1, 'never disconnected');
  });

  t.test('the broker refuses publishes, then allows them: nothing lost, every refusal counted', async (t) => {
    const dir = tempDir(t, 'e');
    const acl = path.join(dir, 'acl');
    const device = 'drill-acl';
    const write = (allowed: boolean): void =>
      writeFileSync(acl, [`topic ${allowed ? 'readwrite' : 'read'} lvunet/${device}/result`, 'topic readwrite lvunet/+/status', 'topic readwrite lvunet/+/event', 'topic readwrite lvunet/+/cmd/#', 'user drill-ops-e', 'topic read lvunet/#', ''].join('\n'));
    write(false);
    const aclBroker = await startBroker({ t, aclFile: acl });
    const aclOps = await recorder(aclBroker.url, [`lvunet/${device}/result`], { username: 'drill-ops-e' });
    t.teardown(() => aclOps.close());
    const link = openLink(t, { url: aclBroker.url, device, queue: { dir: path.join(dir, 'q') } });
    link.start();
    await link.waitFor('online');
    const accepted: number[] = [];
    for (let i = 0; i < 50; i++) accepted.push(link.publishResult(sampleBody(i))!);
    t.notOk(await link.drain(2_000), 'refused: nothing reported delivered');
    t.ok(link.stats().refused > 0, `${link.stats().refused} refusals counted`);
    t.equal(link.stats().queue.pending, 50, 'all kept');
    write(true);
    process.kill(aclBroker.pid!, 'SIGHUP');
    t.ok(await link.drain(20_000), 'delivered once allowed');
    await aclOps.until((m) => m.length >= 50, '50 results');
    t.ok(same(received(aclOps, device), accepted));
  });

  t.test('device id vs certificate: refused at start with both names, no crash', async (t) => {
    const pki = path.join(tempDir(t, 'pki'), 'pki');
    await promisify(execFile)(path.join(DEPLOY, 'make-certs.sh'), [pki, 'cart-a']);
    const link = new FleetLink({ url: 'mqtts://127.0.0.1:1', device: 'cart-b', tls: { ca: path.join(pki, 'ca.crt'), cert: path.join(pki, 'cart-a.crt'), key: path.join(pki, 'cart-a.key') } });
    t.throws(() => link.start(), /"cart-b" does not match .*CN "cart-a"/);
    await link.close(0);
  });

  t.test('the process never crashed', async (t) => {
    t.same(crashedIn, [], 'no step let an exception escape');
  });
}
