// FleetLink against a real mosquitto: birth and will, no loss across broker outages and a process
// restart, command handling under fuzzing. Nothing is mocked at the network level.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBroker } from '../helpers/mosquitto.js';
import { startProxy } from '../helpers/tcp-proxy.js';
import { FleetLink, type FleetLinkOptions } from '../../src/fleet/publisher.js';
import { MemoryStore } from '../../src/fleet/queue/memory.js';
import { validateReply, validateResult, validateStatus, validateTelemetry } from '../../src/fleet/schemas.js';
import { sampleBody } from './fixtures.js';
import { fuzzCases } from './fuzz-commands.js';
import { json, recorder, sleep, type Received } from './mqtt-helpers.js';

/** How long the broker stays down in the outage test; the figure is 30 s. */
const OUTAGE_MS = Number(process.env.LVUNET_FLEET_OUTAGE_MS ?? 5_000);
// npm test sends 500; npm run test:soak the 5,000 (test/soak/command-fuzz.test.ts sets LVUNET_TEST_FUZZ).
const FUZZ_COUNT = Number(process.env.LVUNET_TEST_FUZZ ?? 500);

function tempDir(t: Test): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lvunet-fleet-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function link(t: Test, options: FleetLinkOptions): FleetLink {
  const l = new FleetLink({ reconnectMinMs: 100, reconnectMaxMs: 500, ...options });
  t.teardown(() => l.close(0));
  return l;
}

const states = (messages: Received[], topic: string): string[] =>
  messages.filter((m) => m.topic === topic).map((m) => String(json(m).state));

t.test('birth, last will on a dropped socket, and offline on close are retained', async (t) => {
  const broker = await startBroker({ t });
  const device = 'cart-will';
  const ops = await recorder(broker.url, ['lvunet/+/status']);
  t.teardown(() => ops.close());
  // The link reaches the broker through a relay the test can cut, as a pulled cable would.
  const net = await startProxy(broker.url);
  t.teardown(() => net.close());
  const l = link(t, { url: net.url, device, versions: { runtime: '0.1.0' }, reconnectMinMs: 1500, reconnectMaxMs: 1500 });
  const seen: string[] = [];
  l.on('state', (s) => seen.push(s));
  l.start();
  await l.waitFor('online');
  const topic = `lvunet/${device}/status`;
  await ops.until((m) => states(m, topic).includes('online'), 'birth');
  const birth = ops.messages.find((m) => m.topic === topic);
  t.ok(birth && validateStatus(json(birth)).ok, 'birth follows the status schema');
  t.same(birth && json(birth).versions, { runtime: '0.1.0' });

  // Dropping the socket before the birth's PUBACK arrives would (correctly) make mqtt.js send the
  // birth again after reconnecting; give the acknowledgement time to arrive.
  await sleep(300);
  net.cut();
  await ops.until((m) => states(m, topic).join() === 'online,offline', 'the will');
  // A dashboard that connects now (before the device is back) must be told it is offline.
  const late = await recorder(broker.url, [topic]);
  await late.until((m) => m.length === 1, 'retained will');
  t.equal(json(late.messages[0]).state, 'offline');
  t.ok(late.messages[0].retain, 'the will is retained');
  await late.close();

  await ops.until((m) => states(m, topic).join() === 'online,offline,online', 'birth after reconnect');
  t.equal(l.stats().connects, 2);
  await l.close();
  await ops.until((m) => states(m, topic).join() === 'online,offline,online,offline', 'offline on close');
  t.same(seen, ['connecting', 'online', 'offline', 'online', 'closed']);
  const after = await recorder(broker.url, [topic]);
  await after.until((m) => m.length === 1, 'retained offline');
  t.equal(json(after.messages[0]).state, 'offline');
  await after.close();
});

t.test(`results survive a ${OUTAGE_MS} ms broker outage and a process restart, in order, none lost`, async (t) => {
  const broker = await startBroker({ t });
  const device = 'cart-outage';
  const dir = tempDir(t);
  // A persistent subscriber session, so what is published while it reconnects is kept for it.
  const ops = await recorder(broker.url, ['lvunet/+/result'], { clientId: 'ops-outage', clean: false, protocolVersion: 4 });
  t.teardown(() => ops.close());
  const sent: number[] = [];
  let frame = 0;
  const publishFor = async (l: FleetLink, ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const seq = l.publishResult(sampleBody(frame++, 200));
      if (seq === undefined) throw new Error('queue refused a result');
      sent.push(seq);
      await sleep(20);
    }
  };
  const queue = { dir, fsync: 'interval' as const };

  const first = link(t, { url: broker.url, device, queue, maxInflight: 4 });
  first.start();
  await first.waitFor('online');
  await publishFor(first, 1_000);
  await broker.stop();
  await publishFor(first, OUTAGE_MS / 2);
  t.equal(first.state, 'offline');
  const queuedAtRestart = first.stats().queue.pending;
  t.ok(queuedAtRestart > 0, `${queuedAtRestart} results queued when the process "restarts"`);
  await first.close(0);

  const second = link(t, { url: broker.url, device, queue, maxInflight: 4 });
  t.equal(second.stats().queue.pending, queuedAtRestart, 'the new process finds the queue on disk');
  second.start();
  await publishFor(second, OUTAGE_MS / 2);
  await broker.start();
  await second.waitFor('online', 15_000);
  await publishFor(second, 1_000);
  t.ok(await second.drain(20_000), 'queue drained');

  const seqs = (m: Received[]): number[] => m.filter((x) => x.topic === `lvunet/${device}/result`).map((x) => Number(json(x).seq));
  await ops.until((m) => new Set(seqs(m)).size >= sent.length, `${sent.length} distinct results`, 30_000);
  const received = seqs(ops.messages);
  const distinct = new Set(received);
  const missing = sent.filter((s) => !distinct.has(s));
  t.same(missing, [], 'no result lost');
  t.equal(distinct.size, sent.length);
  t.ok(sent.every((s, i) => i === 0 || s > sent[i - 1]), 'seq increases across the restart');
  const firstSeen = received.filter((s, i) => received.indexOf(s) === i);
  t.same(firstSeen, [...firstSeen].sort((a, b) => a - b), 'delivered in order');
  t.ok(validateResult(json(ops.messages[0])).ok, 'results follow the schema');
  t.comment(`${sent.length} results, ${received.length - distinct.size} duplicates, outage ${OUTAGE_MS} ms`);
  t.equal(second.stats().queue.dropped, 0);
});

t.test(`${FUZZ_COUNT} malformed command payloads each get an error reply; valid commands still work`, async (t) => {
  const broker = await startBroker({ t });
  const device = 'cart-fuzz';
  const l = link(t, { url: broker.url, device, queue: new MemoryStore() });
  let threshold = 0.5;
  l.onCommand('set-threshold', (c) => {
    threshold = c.value;
    return { threshold };
  });
  l.onCommand('snapshot', () => ({ path: '/tmp/snap.png' }));
  l.start();
  await l.waitFor('online');
  const ops = await recorder(broker.url, [`lvunet/${device}/cmd/+/reply`]);
  t.teardown(() => ops.close());

  const cases = fuzzCases(FUZZ_COUNT, 12345);
  // A window of outstanding commands keeps the broker's per-client queue (max_queued_messages,
  // 1000 by default) from dropping commands before the device reads them.
  const WINDOW = 100;
  for (let i = 0; i < cases.length; i++) {
    if (i - ops.messages.length >= WINDOW) await ops.until((m) => i - m.length < WINDOW, 'reply window', 30_000);
    const [name, payload] = cases[i];
    ops.client.publish(`lvunet/${device}/cmd/${name}`, payload, { qos: 1 });
  }
  await ops.until((m) => m.length >= FUZZ_COUNT, `${FUZZ_COUNT} replies`, 60_000);
  const replies = ops.messages.map(json);
  t.equal(replies.length, FUZZ_COUNT);
  t.equal(replies.filter((r) => r.ok !== false).length, 0, 'every reply is an error');
  t.equal(replies.filter((r) => !validateReply(r).ok).length, 0, 'every reply follows the reply schema');
  t.equal(l.state, 'online', 'still online');
  t.equal(l.stats().commands.failed, FUZZ_COUNT);
  t.equal(threshold, 0.5, 'no fuzz case changed the threshold');

  ops.messages.length = 0;
  ops.client.publish(`lvunet/${device}/cmd/set-threshold`, JSON.stringify({ id: 'ok-1', value: 0.25 }), { qos: 1 });
  ops.client.publish(`lvunet/${device}/cmd/status`, JSON.stringify({ id: 'ok-2' }), { qos: 1 });
  await ops.until((m) => m.length >= 2, 'valid replies');
  const byId = new Map(ops.messages.map((m) => [json(m).id, json(m)]));
  t.same(byId.get('ok-1'), { schema: 'lvunet-edge/reply@1', id: 'ok-1', ok: true, result: { threshold: 0.25 } });
  t.equal(byId.get('ok-2')?.ok, true);
  t.match(byId.get('ok-2')?.result, { state: 'online', commands: { failed: FUZZ_COUNT } });
  t.equal(threshold, 0.25);
});

t.test('telemetry goes out every interval while online, with system figures', async (t) => {
  const broker = await startBroker({ t });
  const device = 'cart-telemetry';
  const ops = await recorder(broker.url, [`lvunet/${device}/telemetry`]);
  t.teardown(() => ops.close());
  const l = link(t, {
    url: broker.url,
    device,
    telemetry: {
      intervalMs: 100,
      source: () => ({ fps: 9.9, latency_ms: { p50: 20, p95: 25, p99: 31 }, drops: 2, provider: 'cpu', model: null }),
    },
  });
  l.start();
  await ops.until((m) => m.length >= 3, 'three telemetry messages', 10_000);
  const first = json(ops.messages[0]);
  const v = validateTelemetry(first);
  t.ok(v.ok, v.ok ? 'valid' : v.errors.join('; '));
  t.equal(first.fps, 9.9);
  t.ok(Number(first.memory_rss_bytes) > 0);
  t.ok(first.temperature_c === null || typeof first.temperature_c === 'number');
  t.same(first.queue, { pending: 0, dropped: 0, damaged: 0, refused: 0 });
  const later = json(ops.messages[2]);
  t.type(later.event_loop_lag_ms, 'number', 'event-loop lag of the link process (fleet status shows it)');
  t.notOk('worker_restarts' in later, 'no worker_restarts from a source without workers');
});

t.test('a publish the broker refuses stays queued, is counted and retried, and goes out once allowed (finding 2)', async (t) => {
  // The ACL lets this device publish results but not events: mosquitto answers the event with
  // PUBACK 0x87. Before the fix the event was removed from the queue as if handled.
  const dir = tempDir(t);
  const acl = path.join(dir, 'acl');
  const allow = (lines: string[]): void => writeFileSync(acl, [...lines, 'topic readwrite lvunet/+/result', 'topic readwrite lvunet/+/status', 'topic readwrite lvunet/+/cmd/#', ''].join('\n'));
  allow(['topic read lvunet/+/event']);
  const broker = await startBroker({ t, aclFile: acl });
  const device = 'cart-reject';
  const ops = await recorder(broker.url, [`lvunet/${device}/result`, `lvunet/${device}/event`]);
  t.teardown(() => ops.close());
  const l = link(t, { url: broker.url, device, maxMessageBytes: 4096, refusedRetryMaxMs: 400 });
  const rejected: Array<number | undefined> = [];
  const refused: number[] = [];
  l.on('rejected', (m) => rejected.push(m.id));
  l.on('refused', (m) => refused.push(m.reasonCode));
  l.start();
  await l.waitFor('online');
  t.equal(l.publishResult(sampleBody(0)), 0);
  t.ok(l.publishEvent('fault', 'error', 'camera unplugged'));
  t.equal(l.publishResult(sampleBody(1, 5000)), undefined, 'larger than the limit: refused up front');
  t.equal(l.publishResult(sampleBody(2)), 2);
  t.notOk(await l.drain(2_500), 'not drained: the refused event is still queued');
  t.ok(refused.length >= 2 && refused.every((c) => c === 0x87), `refused ${refused.length} times with 0x87, retried`);
  t.equal(l.stats().refused, refused.length, 'every refusal counted');
  t.ok(l.stats().queue.pending >= 1, 'the refused event is kept');
  t.same(rejected, [undefined], 'only the oversized result is given up');
  // The operator fixes the ACL; mosquitto re-reads it on SIGHUP.
  allow(['topic readwrite lvunet/+/event']);
  process.kill(broker.pid!, 'SIGHUP');
  t.ok(await l.drain(10_000), 'drained once the broker accepts');
  await ops.until((m) => m.filter((x) => x.topic.endsWith('/result')).length >= 2 && m.some((x) => x.topic.endsWith('/event') && json(x).message === 'camera unplugged'), 'both results and the event');
  t.same(ops.messages.filter((m) => m.topic.endsWith('/result')).map((m) => json(m).seq), [0, 2]);
  t.equal(l.stats().queue.pending, 0);
});

t.test('retained commands are ignored and counted, live ones run (finding 6)', async (t) => {
  const broker = await startBroker({ t });
  const device = 'cart-retain';
  const ops = await recorder(broker.url, [`lvunet/${device}/cmd/+/reply`, `lvunet/${device}/event`]);
  t.teardown(() => ops.close());
  // An old order left retained on the command topic.
  await ops.client.publishAsync(`lvunet/${device}/cmd/set-threshold`, JSON.stringify({ id: 'old', value: 0.9 }), { qos: 1, retain: true });
  for (const protocolVersion of [4, 5] as const) {
    const applied: number[] = [];
    const net = await startProxy(broker.url);
    t.teardown(() => net.close());
    const l = link(t, { url: net.url, device, protocolVersion });
    l.onCommand('set-threshold', ({ value }) => {
      applied.push(value);
      return { threshold: value };
    });
    l.start();
    await l.waitFor('online');
    await sleep(500);
    if (protocolVersion === 4) {
      t.equal(l.stats().commands.ignoredRetained, 1, 'MQTT 3.1.1: the retained command arrives flagged and is ignored');
      await ops.until((m) => m.some((x) => x.topic.endsWith('/event') && /retained set-threshold/.test(String(json(x).message))), 'the warning event');
    } else {
      t.equal(l.stats().commands.ignoredRetained, 0, 'MQTT 5: retain handling 2, the broker does not even send it');
    }
    await ops.client.publishAsync(`lvunet/${device}/cmd/set-threshold`, JSON.stringify({ id: `live-${protocolVersion}`, value: 0.5 }), { qos: 1 });
    await ops.until((m) => m.some((x) => x.topic.endsWith('/reply') && json(x).id === `live-${protocolVersion}`), 'the live reply');
    net.cut();
    await l.waitFor('offline');
    await l.waitFor('online', 10_000);
    await sleep(500);
    t.same(applied, [0.5], `v${protocolVersion}: only the live command ran, also after a reconnect`);
    await l.close(0);
  }
});

t.test('a command subscription the broker never acknowledges is asked for again, and commands arrive', async (t) => {
  const broker = await startBroker({ t });
  const device = 'cart-nosuback';
  const ops = await recorder(broker.url, [`lvunet/${device}/cmd/+/reply`]);
  t.teardown(() => ops.close());
  // A broker that swallows the first SUBSCRIBE: no SUBACK, no refusal, nothing.
  const net = await startProxy(broker.url);
  t.teardown(() => net.close());
  net.swallowSubscribes(1);
  const faults: string[] = [];
  // 2 s: long enough that the acknowledged second SUBSCRIBE cannot time out on a loaded machine.
  const l = link(t, { url: net.url, device, subackTimeoutMs: 2_000 });
  l.on('fault', (e) => faults.push(e.message));
  l.onCommand('set-threshold', ({ value }) => ({ threshold: value }));
  l.start();
  await l.waitFor('online');
  const deadline = Date.now() + 10_000;
  while (net.swallowed === 0 && Date.now() < deadline) await sleep(20);
  t.equal(net.swallowed, 1, 'the first SUBSCRIBE never reached the broker');
  while (!faults.some((f) => /no SUBACK/.test(f)) && Date.now() < deadline) await sleep(50);
  t.match(faults.join('\n'), /no SUBACK for the command subscription lvunet\/cart-nosuback\/cmd\/\+ within 2 s; subscribing again/);
  // Commands now reach the device (the second SUBSCRIBE went through).
  for (let i = 0; ; i++) {
    await ops.client.publishAsync(`lvunet/${device}/cmd/set-threshold`, JSON.stringify({ id: `c${i}`, value: 0.4 }), { qos: 1 });
    await sleep(200);
    if (ops.messages.some((m) => m.topic.endsWith('/reply'))) break;
    if (i > 25) break;
  }
  t.ok(ops.messages.some((m) => m.topic.endsWith('/reply') && json(m).ok === true), 'a command sent after the retry is answered');
  t.equal(faults.filter((f) => /no SUBACK/.test(f)).length, 1, 'one timeout, then the SUBACK came');
  // close() must not wait for the SUBACK that never comes (mqtt.js's end() would, for ever).
  const closing = Date.now();
  await l.close(200);
  t.ok(Date.now() - closing < 5_000, `close() returns though a SUBSCRIBE was never acknowledged (${Date.now() - closing} ms)`);
});

t.test('a reply over the broker limit becomes an error reply of its own and results keep flowing (finding 1)', async (t) => {
  // The deploy broker's limit; max_packet_size makes mosquitto announce it in CONNACK.
  for (const limit of ['message_size_limit 1048576', 'max_packet_size 1048576']) {
    const broker = await startBroker({ t, extraConfig: limit });
    const device = 'cart-big';
    const ops = await recorder(broker.url, [`lvunet/${device}/#`], { protocolVersion: 5 });
    const l = link(t, { url: broker.url, device });
    // 3.7 MB of base64, as a 1280x720 PNG snapshot was.
    l.onCommand('snapshot', () => ({ png: 'A'.repeat(3_700_000) }));
    l.start();
    await l.waitFor('online');
    if (limit.startsWith('max_packet')) t.equal(l.stats().messageLimit, 1048576 - 16, 'the CONNACK Maximum Packet Size is used');
    for (let i = 0; i < 20; i++) l.publishResult(sampleBody(i));
    await ops.client.publishAsync(`lvunet/${device}/cmd/snapshot`, JSON.stringify({ id: 'snap' }), { qos: 1 });
    for (let i = 20; i < 60; i++) {
      l.publishResult(sampleBody(i));
      await sleep(20);
    }
    t.ok(await l.drain(10_000), `${limit}: every result delivered`);
    await ops.until((m) => m.filter((x) => x.topic.endsWith('/result')).length >= 60 && m.some((x) => x.topic.endsWith('/snapshot/reply')), `${limit}: 60 results and the reply`);
    const reply = json(ops.messages.find((x) => x.topic.endsWith('/snapshot/reply'))!);
    t.equal(reply.ok, false);
    t.match(String(reply.error), /exceeds the broker limit/);
    t.equal(l.stats().connects, 1, `${limit}: never disconnected`);
    t.equal(l.stats().replies.oversized, 1);
    await l.close(0);
    await ops.close();
    await broker.close();
  }
});

t.test('reconnect attempts back off exponentially and reset once connected', async (t) => {
  const broker = await startBroker({ t });
  const l = link(t, { url: broker.url, device: 'cart-backoff', reconnectMinMs: 100, reconnectMaxMs: 800 });
  l.start();
  await l.waitFor('online');
  await broker.stop();
  await l.waitFor('offline');
  // Refused attempts follow each other after 100, 200, 400 ms (+-25%): wait for the fourth, not a fixed time.
  while (l.stats().reconnect.attempts < 4) await sleep(20);
  const { attempts, nextDelayMs } = l.stats().reconnect;
  // The delay armed at the n-th failure is min(max, min * 2^(n-1)) +-25%: 800 ms (the cap) from the fourth on.
  t.ok(nextDelayMs >= 600 && nextDelayMs <= 1000, `delay grew to ${nextDelayMs} ms after ${attempts} attempts`);
  await broker.start();
  await l.waitFor('online', 5_000);
  t.equal(l.stats().reconnect.attempts, 0);
});
