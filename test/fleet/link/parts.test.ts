// The fleet link's small parts: backoff delays, messages, replies and command intake, each with
// scripted clients (no broker).
import t from 'tap';

import { reconnectDelayMs, refusedRetryMs } from '../../../src/fleet/link/backoff.js';
import { CommandIntake } from '../../../src/fleet/link/command-intake.js';
import type { PublishClient } from '../../../src/fleet/link/drain.js';
import { IncidentBacklog, type LinkIncident } from '../../../src/fleet/link/incidents.js';
import { eventMessage, statusMessage, telemetryMessage } from '../../../src/fleet/link/messages.js';
import { ReplySender } from '../../../src/fleet/link/replies.js';
import { REPLY_SCHEMA, type CommandReply, type EventMessage } from '../../../src/fleet/schemas.js';
import { DeviceTopics } from '../../../src/fleet/topics.js';
import { same } from '../../helpers/same.js';

const stamp = { device: 'cart-1', now: () => Date.UTC(2026, 0, 2, 3, 4, 5) };

t.test('reconnect delay: doubling from min to max, with ±25 % jitter', async (t) => {
  t.equal(reconnectDelayMs(0, 1000, 30_000, () => 0.5), 1000);
  t.equal(reconnectDelayMs(3, 1000, 30_000, () => 0.5), 8000);
  t.equal(reconnectDelayMs(10, 1000, 30_000, () => 0.5), 30_000);
  t.equal(reconnectDelayMs(1000, 1000, 30_000, () => 0.5), 30_000, 'no overflow after many attempts');
  t.equal(reconnectDelayMs(2, 1000, 30_000, () => 0), 3000);
  t.equal(reconnectDelayMs(2, 1000, 30_000, () => 1), 5000);
});

t.test('refusal pause: 1 s doubling, capped', async (t) => {
  t.same([0, 1, 2, 3, 8, 9].map((n) => refusedRetryMs(n, 300_000)), [1000, 2000, 4000, 8000, 256_000, 300_000]);
  t.equal(refusedRetryMs(50, 300_000), 300_000);
});

t.test('messages carry the device and the injected clock', async (t) => {
  t.same(eventMessage(stamp, 'fault', 'error', 'm'), { schema: 'lvunet-edge/event@1', device: 'cart-1', time: '2026-01-02T03:04:05.000Z', type: 'fault', severity: 'error', message: 'm' });
  t.same(eventMessage(stamp, 'drop', 'warning', 'm', { lost: 1 }).details, { lost: 1 });
  t.same(statusMessage(stamp, 'offline', { node: 'v20' }), { schema: 'lvunet-edge/status@1', device: 'cart-1', state: 'offline', time: '2026-01-02T03:04:05.000Z', versions: { node: 'v20' } });
  const tm = telemetryMessage(
    stamp,
    { fps: 9.5, latency_ms: { p50: 1, p95: 2, p99: 3 }, drops: 4, provider: 'CPU', model: null },
    { cpuPct: 12.345, rssBytes: 1000, temperatureC: null, uptimeS: 60 },
    { pending: 5, bytes: 50, dropped: 6, torn: 0, damaged: 7, writeErrors: 0 },
    8,
  );
  t.match(tm, { device: 'cart-1', fps: 9.5, cpu_pct: 12.3, memory_rss_bytes: 1000, temperature_c: null, uptime_s: 60, queue: { pending: 5, dropped: 6, damaged: 7, refused: 8 } });
  const withLag = telemetryMessage(
    stamp,
    { fps: 9.5, latency_ms: { p50: 1, p95: 2, p99: 3 }, drops: 4, provider: 'CPU', model: null, worker_restarts: 2 },
    { cpuPct: 1, rssBytes: 1000, temperatureC: null, uptimeS: 60, eventLoopLagMs: 12.345 },
    { pending: 5, bytes: 50, dropped: 6, torn: 0, damaged: 7, writeErrors: 0 },
    8,
  );
  t.match(withLag, { event_loop_lag_ms: 12.3, worker_restarts: 2 }, 'event-loop lag and worker restarts when known');
});

function replySender(limit = 1000) {
  const sent: Array<{ topic: string; text: string; callback: (err?: Error) => void }> = [];
  const answered: Array<[string, CommandReply]> = [];
  const faults: Error[] = [];
  let connected = true;
  const client: PublishClient = { publish: (topic, payload, _o, callback) => sent.push({ topic, text: payload.toString(), callback }) };
  const r = new ReplySender({
    topic: (name) => `lvunet/cart-1/cmd/${name}/reply`,
    limit: () => limit,
    client: () => (connected ? client : undefined),
    onAnswered: (name, reply) => answered.push([name, reply]),
    onFault: (e) => faults.push(e),
  });
  return { r, sent, answered, faults, disconnect: () => (connected = false) };
}

t.test('replies: sent as QoS 1, counted when acknowledged or refused (never retried)', async (t) => {
  const s = replySender();
  s.r.send('status', { schema: REPLY_SCHEMA, id: 'a', ok: true, result: { x: 1 } });
  s.r.send('status', { schema: REPLY_SCHEMA, id: 'b', ok: false, error: 'no' });
  t.equal(s.sent.length, 2);
  t.equal(s.sent[0].topic, 'lvunet/cart-1/cmd/status/reply');
  s.sent[0].callback();
  s.sent[1].callback(new Error('not authorised'));
  same(t, s.r.counts, { sent: 1, failed: 1, oversized: 0 });
  t.equal(s.r.ok, 1);
  t.equal(s.r.failed, 1);
  t.match(s.faults, [/reply to status b not delivered: not authorised/]);
  t.equal(s.answered.length, 2);
});

t.test('replies: an oversized one becomes an error reply; an unserialisable one too', async (t) => {
  const s = replySender(200);
  s.r.send('snapshot', { schema: REPLY_SCHEMA, id: 'big', ok: true, result: 'x'.repeat(500) });
  const big = JSON.parse(s.sent[0].text) as CommandReply;
  t.match(big, { id: 'big', ok: false, error: /reply of \d+ bytes exceeds the broker limit of 200 bytes; not sent/ });
  t.equal(s.r.counts.oversized, 1);
  s.r.send('status', { schema: REPLY_SCHEMA, id: 'n', ok: true, result: 10n });
  t.match(JSON.parse(s.sent[1].text), { id: 'n', ok: false, error: /result is not serialisable/ });
  t.equal(s.r.failed, 2);
  s.disconnect();
  s.r.send('status', { schema: REPLY_SCHEMA, id: 'c', ok: true });
  t.equal(s.sent.length, 2, 'without a client nothing is published');
  t.equal(s.answered.length, 3, 'but the answer is still reported');
});

t.test('command intake: this device only; retained commands are ignored and reported', async (t) => {
  const topics = new DeviceTopics('cart-1', 'lvunet');
  const dispatched: string[] = [];
  const replies: Array<[string, CommandReply]> = [];
  const events: EventMessage[] = [];
  const faults: Error[] = [];
  const intake = new CommandIntake({
    topics,
    dispatcher: { dispatch: async (name) => (dispatched.push(name), { schema: REPLY_SCHEMA, id: 'x', ok: true }) },
    stamp,
    reply: (name, r) => replies.push([name, r]),
    sendEvent: (e) => events.push(e),
    onFault: (e) => faults.push(e),
  });
  intake.onMessage('lvunet/cart-1/cmd/status', Buffer.from('{"id":"x"}'), false);
  intake.onMessage('lvunet/cart-2/cmd/status', Buffer.from('{}'), false);
  intake.onMessage('lvunet/cart-1/result', Buffer.from('{}'), false);
  intake.onMessage('lvunet/cart-1/cmd/set-threshold', Buffer.from('{"id":"r","value":0.1}'), true);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(dispatched, ['status']);
  t.same(replies.map(([n]) => n), ['status']);
  t.equal(intake.ignoredRetained, 1);
  t.match(faults, [/ignored a retained set-threshold command/]);
  t.match(events, [{ type: 'command', severity: 'warning', details: { kind: 'retained-command-ignored', topic: 'lvunet/cart-1/cmd/set-threshold' } }]);
});

t.test('incident backlog: losses are drop errors, damage without loss a warning; bounded to the latest 100', async (t) => {
  const backlog = new IncidentBacklog(stamp);
  backlog.add([
    { kind: 'write-failed', lost: 3, code: 'ENOSPC', file: '/q/seg-1', message: 'disk full' },
    { kind: 'torn', lost: 0, file: '/q/seg-2', message: 'torn record' },
    { kind: 'stalled', lost: 0, file: '/q', message: 'stalled' },
  ] as LinkIncident[]);
  const out: EventMessage[] = [];
  backlog.flush((e) => out.push(e));
  t.match(out, [
    { type: 'drop', severity: 'error', message: 'disk full', details: { kind: 'write-failed', lost: 3, file: '/q/seg-1', code: 'ENOSPC' } },
    { type: 'fault', severity: 'warning', details: { kind: 'torn', lost: 0 } },
    { type: 'fault', severity: 'error', details: { kind: 'stalled' } },
  ]);
  t.notOk('code' in (out[1].details ?? {}));
  t.equal(backlog.size, 0, 'flushed events are forgotten');
  backlog.add(Array.from({ length: 150 }, (_, i) => ({ kind: 'torn', lost: 0, file: 'f', message: `m${i}` }) as LinkIncident));
  t.equal(backlog.size, 100);
  const kept: string[] = [];
  backlog.flush((e) => kept.push(e.message));
  t.equal(kept[0], 'm50', 'the oldest are let go of');
});
