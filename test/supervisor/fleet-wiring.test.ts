// The supervisor's fleet wiring without a broker: redacted events, the delivery summary, the
// status reply and the snapshot budget (live links: test/integration/run-mqtt.test.ts).
import t from 'tap';

import type { EventType, FleetLink, LinkStats, Severity } from '../../src/fleet/index.js';
import { assembleStatus, snapshotBudget } from '../../src/supervisor/fleet-commands.js';
import { deliverySummary, FleetEvents } from '../../src/supervisor/fleet-wiring.js';
import type { ModelUpdater } from '../../src/supervisor/model-update.js';
import { ServingState } from '../../src/supervisor/serving.js';

function stats(over: Omit<Partial<LinkStats>, 'queue'> & { queue?: Partial<LinkStats['queue']> } = {}): LinkStats {
  const { queue, ...rest } = over;
  return {
    state: 'online', connects: 1, acked: 10, rejected: 0, refused: 0, unpublished: 0, inflight: 0, telemetrySent: 0,
    commands: { ok: 0, failed: 0, ignoredRetained: 0 }, replies: { sent: 0, failed: 0, oversized: 0 }, messageLimit: 1 << 20,
    queue: { pending: 0, bytes: 0, dropped: 0, torn: 0, damaged: 0, writeErrors: 0, ...queue }, seq: 10, reconnect: { attempts: 0, nextDelayMs: 0 },
    ...rest,
  };
}

t.test('events are redacted before they reach the link; unknown worker event types go out as other', async (t) => {
  const published: Array<[EventType, Severity, string, Record<string, unknown> | undefined]> = [];
  const link = { publishEvent: (...a: [EventType, Severity, string, Record<string, unknown> | undefined]) => (published.push(a), true) } as unknown as FleetLink;
  const events = new FleetEvents(link);
  events.emit('config', 'error', 'cannot reach mqtt://cart:s3cret@broker:1883', { url: 'mqtt://cart:s3cret@broker:1883' });
  events.fromWorker({ type: 'source', severity: 'info', message: 'reopened' });
  events.fromWorker({ type: 'restart', severity: 'warning', message: 'worker restarted' });
  t.equal(published.length, 3);
  t.notMatch(JSON.stringify(published[0]), /s3cret/, 'no password in the message or the details');
  t.match(published[0][2], /mqtt:\/\/cart:\*\*\*@broker/);
  t.same(published[1].slice(0, 3), ['other', 'info', 'reopened']);
  t.same(published[2].slice(0, 2), ['restart', 'warning']);
  new FleetEvents(undefined).emit('fault', 'error', 'no link: nothing to do');
});

t.test('deliverySummary: all delivered only with nothing queued, in flight or lost', async (t) => {
  t.same(deliverySummary(10, 1, 0, stats()), ['mqtt: all 10 result(s) delivered']);
  t.same(deliverySummary(10, 3, 0, stats()), ['mqtt: all 4 result(s) delivered (every 3th of 10)']);
  t.match(deliverySummary(10, 1, 0, stats({ queue: { pending: 2 } })), [/NOT all results delivered: 10 message\(s\) acknowledged by the broker, 2 still queued/]);
  // Refused publishes stay queued: still queued means not delivered; nothing left means they got through on a retry.
  t.match(deliverySummary(10, 1, 0, stats({ refused: 3, queue: { pending: 3 } })), [/NOT all/, /the broker refused 3 publish\(es\)/]);
  t.match(deliverySummary(10, 1, 0, stats({ refused: 3 })), [/^mqtt: all 10 result\(s\) delivered$/, /refused 3 publish\(es\) on the way; each stayed queued and was delivered/]);
  // Drops before this run started are not this run's losses.
  t.same(deliverySummary(10, 1, 5, stats({ queue: { dropped: 5 } })), ['mqtt: all 10 result(s) delivered']);
  t.match(deliverySummary(10, 1, 5, stats({ rejected: 1, unpublished: 1, queue: { dropped: 7, damaged: 1 } })), [
    /NOT all/,
    /LOST 5 message\(s\): 1 over the broker size limit, 2 dropped by the queue .*1 damaged on disk, 1 without a seq number/,
  ]);
});

t.test('the status reply: device, bundle, supervisor, worker and link', async (t) => {
  const serving = new ServingState({ model: '/m/a.onnx', version: 'v1' });
  const release = { version: '1.0.0' };
  const link = { stats: () => stats(), replyBudget: (name: string) => 1_000_000 - name.length } as unknown as FleetLink;
  const asked: string[] = [];
  const status = await assembleStatus(link, {
    deviceId: 'cart-9',
    group: 'ward-3',
    serving,
    store: { current: () => ({ manifest: { release } }) } as never,
    supervisor: () => ({ pid: 42, state: 'running', restarts: 1, results: 7 }),
    ask: async (name) => (asked.push(name), { pid: 43 }),
    updater: {} as ModelUpdater,
    setThreshold: async () => null,
  });
  t.same(asked, ['status']);
  t.same(status, { device: 'cart-9', group: 'ward-3', bundle: { version: 'v1', release }, supervisor: { pid: 42, state: 'running', restarts: 1, results: 7 }, worker: { pid: 43 }, link: stats() });
  serving.current = { model: '/m/b.onnx' };
  t.equal((await assembleStatus(link, { deviceId: 'x', group: null, serving, store: undefined, supervisor: () => ({ pid: 1, state: 'idle', restarts: 0, results: 0 }), ask: async () => null, updater: {} as ModelUpdater, setThreshold: async () => null })).bundle, null, 'no bundle when serving a plain model');
  t.equal(snapshotBudget(link), 1_000_000 - 'snapshot'.length - 1024, 'the reply budget less the envelope');
});
