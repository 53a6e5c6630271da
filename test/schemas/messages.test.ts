// The per-field messages the compiled TypeBox validators give (src/schemas/kit.ts): one per field,
// naming it, saying what was expected and what came.
import t from 'tap';
import { isSupervisorMessage, isWorkerMessage, workerMessage } from '../../src/schemas/ipc.js';
import { assertResultV1, resultV1 } from '../../src/schemas/result.js';
import { validateReply, validateTelemetry } from '../../src/fleet/schemas.js';
import { sampleBody } from '../fleet/fixtures.js';
import { same } from '../helpers/same.js';

t.test('IPC messages: the type tag picks the variant; an unknown tag lists the known ones', async (t) => {
  t.ok(isWorkerMessage({ type: 'heartbeat', frames: 3 }));
  t.ok(isSupervisorMessage({ type: 'stop' }));
  t.notOk(isSupervisorMessage({ type: 'stop', now: true }), 'stop carries nothing');
  t.notOk(isSupervisorMessage('stop'));
  same(t, workerMessage.errors({ type: 'heartbeat', frames: -1 }), ['frames: expected a finite integer >= 0, got -1']);
  t.same(workerMessage.errors({ type: 'bogus' }), ['type: expected one of ready|result|heartbeat|event|stats|reply|stopped|preview, got "bogus"']);
  t.same(workerMessage.errors({ type: 'event', event: { type: 'x', severity: 'loud', message: 'm' } }), [
    'event.severity: expected one of info|warning|error, got "loud"',
  ]);
  t.same(workerMessage.errors(null), ['(root): expected an object, got null']);
});

t.test('results: missing fields, unions and tuples are named field by field', async (t) => {
  const { frame: _f, ...noFrame } = sampleBody(0);
  same(t, resultV1.errors(noFrame), ['frame: expected an object, got nothing (missing)']);
  same(t, resultV1.errors({ ...sampleBody(0), rle: { size: [480], counts: [0, 1] } }), ['rle.size: expected [a finite integer >= 1, a finite integer >= 1], got an array']);
  same(t, resultV1.errors({ ...sampleBody(0), rle: { size: [480, 640], counts: 7 } }), [
    'rle.counts: expected an array of finite integers >= 0 or a string, got 7',
  ]);
  t.throws(() => assertResultV1({ ...sampleBody(0), coverage: 2 }), /^not a lvunet-edge\/result@1 result: field 'coverage': expected a finite number >= 0 and <= 1, got 2$/);
});

t.test('scalars with alternatives and replies tagged by ok', async (t) => {
  const r = validateTelemetry({ schema: 'lvunet-edge/telemetry@1', device: 'd', time: '2026-11-25T23:00:00Z', fps: 1, latency_ms: { p50: 1, p95: 1, p99: 1 }, drops: 0, provider: 'cpu', cpu_pct: 1, memory_rss_bytes: 1, temperature_c: 'hot', uptime_s: 1, model: null });
  t.same(r.ok ? [] : r.errors, ['temperature_c: expected a finite number >= -100 and <= 200 or null, got "hot"']);
  const reply = validateReply({ schema: 'lvunet-edge/reply@1', id: 'a', ok: false });
  t.same(reply.ok ? [] : reply.errors, ['error: expected a non-empty string of at most 8192 chars, got nothing (missing)']);
});
