// QueueDrain against a scripted client (the PUBACK callback is called by the test) and a memory
// store, with manual timers: acknowledgement order, the in-flight window, refusals that hold the
// queue and back off, oversized messages taken out. Live brokers: test/fleet/publisher.test.ts.
import t from 'tap';

import { QueueDrain, type DrainTimers, type PublishClient } from '../../../src/fleet/link/drain.js';
import { MemoryStore } from '../../../src/fleet/queue/memory.js';
import type { EventMessage } from '../../../src/fleet/schemas.js';
import { same } from '../../helpers/same.js';

interface Sent {
  topic: string;
  payload: string;
  callback: (err?: Error) => void;
}

function setup(o: { maxInflight?: number; limit?: number } = {}) {
  const store = new MemoryStore();
  const sent: Sent[] = [];
  const client: PublishClient = {
    publish: (topic, payload, _opts, callback) => sent.push({ topic, payload: payload.toString(), callback }),
  };
  let online = true;
  const armed: Array<{ fn: () => void; ms: number }> = [];
  const timers: DrainTimers = {
    setTimeout: (fn, ms) => armed.push({ fn, ms }) - 1,
    clearTimeout: (h) => {
      armed[h as number] = { fn: () => undefined, ms: -1 };
    },
  };
  const events: EventMessage[] = [];
  const rejected: Array<{ id: number; bytes: number }> = [];
  const refused: Array<{ id: number; reasonCode: number; retryMs: number }> = [];
  const drain = new QueueDrain({
    store,
    maxInflight: o.maxInflight ?? 2,
    refusedRetryMaxMs: 4000,
    limit: () => o.limit ?? 1000,
    client: () => (online ? client : undefined),
    stamp: { device: 'cart-1', now: () => Date.UTC(2026, 0, 1) },
    sendEvent: (e) => events.push(e),
    onRejected: (m) => rejected.push({ id: m.id, bytes: m.bytes }),
    onRefused: (m) => refused.push({ id: m.id, reasonCode: m.reasonCode, retryMs: m.retryMs }),
    afterPeek: () => undefined,
    timers,
  });
  const append = (payload: string): number => {
    const id = store.append({ topic: 't', payload, qos: 1 });
    if (id === undefined) throw new Error('the memory store refused an append');
    return id;
  };
  return { store, sent, drain, events, rejected, refused, armed, append, setOnline: (v: boolean) => (online = v) };
}

const refusal = (code: number): Error => Object.assign(new Error(`Publish error: ${code}`), { code });

t.test('sends in order within the in-flight window; each PUBACK acks and lets the next one go', async (t) => {
  const s = setup();
  for (const p of ['a', 'b', 'c']) s.append(p);
  s.drain.pump();
  t.same(s.sent.map((x) => x.payload), ['a', 'b'], 'two in flight at most');
  t.equal(s.drain.inflightCount, 2);
  s.sent[0].callback();
  t.same(s.sent.map((x) => x.payload), ['a', 'b', 'c']);
  s.sent[1].callback();
  s.sent[2].callback();
  t.equal(s.drain.acked, 3);
  t.equal(s.store.stats().pending, 0);
  t.ok(s.drain.isDrained());
  t.equal(await s.drain.drain(1), true);
});

t.test('offline: nothing is sent, nothing leaves the store', async (t) => {
  const s = setup();
  s.setOnline(false);
  s.append('a');
  s.drain.pump();
  t.same(s.sent, []);
  t.equal(s.store.stats().pending, 1);
  t.equal(await s.drain.drain(5), false, 'drain gives up after its timeout');
});

t.test('a refused PUBACK keeps the message queued, holds the queue and retries after a growing pause', async (t) => {
  const s = setup({ maxInflight: 1 });
  s.append('a');
  s.append('b');
  s.drain.pump();
  s.sent[0].callback(refusal(0x87));
  t.equal(s.drain.refused, 1);
  t.equal(s.store.stats().pending, 2, 'nothing removed');
  t.same(s.refused, [{ id: 1, reasonCode: 0x87, retryMs: 1000 }]);
  t.equal(s.events.length, 1, 'one fault event for the streak');
  t.match(s.events[0], { type: 'fault', severity: 'error', device: 'cart-1', message: /broker refused message 1 on t \(PUBACK 0x87/, details: { kind: 'publish-refused', reasonCode: 0x87, refused_total: 1 } });
  s.drain.pump();
  t.equal(s.sent.length, 1, 'held: an append does not send');
  s.armed[0].fn();
  t.equal(s.sent.length, 2);
  t.equal(s.sent[1].payload, 'a', 'the refused message is tried again first');
  s.sent[1].callback(refusal(0x97));
  t.same(s.refused[1], { id: 1, reasonCode: 0x97, retryMs: 2000 }, 'the pause doubles');
  t.equal(s.events.length, 1, 'still one event in this streak');
  s.armed[1].fn();
  s.sent[2].callback();
  t.equal(s.drain.acked, 1);
  t.equal(s.sent[3].payload, 'b');
});

t.test('a queued message over the current limit is taken out, not sent', async (t) => {
  const s = setup({ limit: 10 });
  s.append('x'.repeat(20));
  s.append('ok');
  s.drain.pump();
  same(t, s.rejected, [{ id: 1, bytes: 21 }]);
  t.equal(s.drain.rejected, 1);
  t.same(s.sent.map((x) => x.payload), ['ok']);
});

t.test('a publish the client gave up on (no reason code) is sent again', async (t) => {
  const s = setup({ maxInflight: 1 });
  s.append('a');
  s.drain.pump();
  s.sent[0].callback(new Error('client disconnecting'));
  t.equal(s.drain.refused, 0);
  t.equal(s.sent.length, 2);
  t.equal(s.sent[1].payload, 'a');
});

t.test('stopHold ends a pause; forgetInflight lets late PUBACKs do nothing', async (t) => {
  const s = setup({ maxInflight: 1 });
  s.append('a');
  s.drain.pump();
  s.sent[0].callback(refusal(0x87));
  s.drain.stopHold();
  t.equal(s.armed[0].ms, -1, 'the retry timer is cleared');
  s.drain.pump();
  s.drain.forgetInflight();
  s.sent[1].callback();
  t.equal(s.drain.acked, 0);
  t.equal(s.store.stats().pending, 1);
});
