import t from 'tap';
import { CommandDispatcher } from '../../src/fleet/commands.js';

const enc = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

t.test('valid commands reach their handler; the return value is the result', async (t) => {
  const d = new CommandDispatcher();
  let threshold = 0.5;
  d.on('set-threshold', (c) => {
    threshold = c.value;
    return { threshold };
  });
  d.on('snapshot', async () => ({ file: '/tmp/x.png' }));
  t.same(await d.dispatch('set-threshold', enc({ id: 'a', value: 0.7 })), {
    schema: 'lvunet-edge/reply@1',
    id: 'a',
    ok: true,
    result: { threshold: 0.7 },
  });
  t.equal(threshold, 0.7);
  t.same(await d.dispatch('snapshot', enc({ id: 'b' })), { schema: 'lvunet-edge/reply@1', id: 'b', ok: true, result: { file: '/tmp/x.png' } });
});

t.test('every kind of bad request becomes an error reply naming the problem', async (t) => {
  const d = new CommandDispatcher({ maxPayloadBytes: 1024, handlerTimeoutMs: 50 });
  d.on('set-threshold', () => {
    throw new Error('pipeline not running');
  });
  d.on('snapshot', () => new Promise(() => {}));
  const cases: Array<[string, Buffer, RegExp, string | null]> = [
    ['set-threshold', enc('{"id":"a","value":'), /^malformed JSON/, null],
    ['set-threshold', Buffer.from([0xff, 0xfe, 0x00]), /^malformed JSON/, null],
    ['set-threshold', enc({ id: 'a', value: 'high' }), /value: expected a finite number/, 'a'],
    ['set-threshold', enc({ id: 'a', value: 0.2 }), /^pipeline not running$/, 'a'],
    ['self-destruct', enc({ id: 'z' }), /^unknown command "self-destruct"; known: set-threshold/, 'z'],
    ['status', enc({ id: 'q' }), /not supported by this device/, 'q'],
    ['snapshot', enc({ id: 's' }), /no result within 50 ms/, 's'],
    ['snapshot', Buffer.alloc(2048, 0x20), /exceeds the 1024-byte limit/, null],
    ['snapshot', enc('['.repeat(1000)), /^malformed JSON/, null],
  ];
  for (const [name, payload, error, id] of cases) {
    const reply = await d.dispatch(name, payload);
    t.equal(reply.ok, false, name);
    t.match(reply.error ?? '', error, `${name}: ${reply.error}`);
    t.equal(reply.id, id);
  }
  // Deep nesting overflows JSON.parse's stack; it must still be an answer, not a crash.
  const deep = new CommandDispatcher({ maxPayloadBytes: 10_000_000 });
  const reply = await deep.dispatch('status', enc('['.repeat(5_000_000)));
  t.equal(reply.ok, false);
});

t.test('a per-command timeout overrides the dispatcher default (model updates take minutes)', async (t) => {
  const d = new CommandDispatcher({ handlerTimeoutMs: 30 });
  const slow = (ms: number, value: unknown) => () => new Promise((resolve) => setTimeout(() => resolve(value), ms));
  d.on('status', slow(120, { fine: true }));
  d.on('reload-model', slow(120, { switched: true }), { timeoutMs: 5_000 });
  const st = await d.dispatch('status', Buffer.from('{"id":"s"}'));
  t.equal(st.ok, false);
  t.match(st.error, /no result within 30 ms/);
  const rm = await d.dispatch('reload-model', Buffer.from('{"id":"r","rollback":true}'));
  t.same(rm, { schema: 'lvunet-edge/reply@1', id: 'r', ok: true, result: { switched: true } });
});
