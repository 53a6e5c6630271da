import t from 'tap';
import { SHA, sampleResult } from './fixtures.js';
import {
  EVENT_SCHEMA,
  STATUS_SCHEMA,
  TELEMETRY_SCHEMA,
  requestId,
  validateCommand,
  validateEvent,
  validateReply,
  validateResult,
  validateStatus,
  validateTelemetry,
  type TelemetryMessage,
} from '../../src/fleet/schemas.js';



t.test('a well-formed result passes and each broken field is named', async (t) => {
  const ok = validateResult(sampleResult());
  t.ok(ok.ok);
  const broken = {
    ...sampleResult(),
    seq: -1,
    captureTime: 'yesterday',
    model: { sha256: 'xyz', precision: 'fp32' },
    latencyMs: { capture: 0, preprocess: 1, queue: 0, inference: 'fast', postprocess: 1, total: 2 },
    coverage: 1.5,
    components: [{ area: 1.5, areaPercent: 1, bbox: { x: 1, y: 2, width: 3 }, centroid: { x: 1, y: 2 }, meanProbability: 0.5 }, 7],
    colour: 'red',
  };
  const r = validateResult(broken);
  t.notOk(r.ok);
  if (r.ok) return;
  const fields = r.errors.map((e) => e.split(':')[0]);
  t.same(fields.sort(), [
    'captureTime',
    'colour',
    'components[0].area',
    'components[0].bbox.height',
    'components[1]',
    'coverage',
    'latencyMs.inference',
    'model.sha256',
    'seq',
  ]);
  t.match(r.errors.join('\n'), /latencyMs\.inference: expected a finite number >= 0, got "fast"/);
  t.notOk(validateResult({ ...sampleResult(), capture_time: '2026-11-25T23:00:00.000Z' }).ok, 'snake_case fields are not result@1');
  t.notOk(validateResult(null).ok);
  t.notOk(validateResult([]).ok);
  t.notOk(validateResult({ ...sampleResult(), schema: 'lvunet-edge/result@2' }).ok);
});

t.test('telemetry, event, status and reply validators', async (t) => {
  const tel: TelemetryMessage = {
    schema: TELEMETRY_SCHEMA,
    device: 'cart-001',
    time: '2026-11-25T23:00:00Z',
    fps: 9.8,
    latency_ms: { p50: 20, p95: 30, p99: 40 },
    drops: 0,
    provider: 'cpu',
    cpu_pct: 150,
    memory_rss_bytes: 123456,
    temperature_c: null,
    uptime_s: 3,
    model: null,
  };
  t.ok(validateTelemetry(tel).ok);
  const badTel = validateTelemetry({ ...tel, temperature_c: 'hot', latency_ms: { p50: 1, p95: 2 } });
  t.notOk(badTel.ok);
  if (!badTel.ok) t.match(badTel.errors.join('\n'), /temperature_c[\s\S]*latency_ms\.p99|latency_ms\.p99[\s\S]*temperature_c/);
  t.ok(
    validateEvent({
      schema: EVENT_SCHEMA,
      device: 'd',
      time: '2026-11-25T23:00:00Z',
      type: 'fault',
      severity: 'error',
      message: 'x',
      details: { a: 1 },
    }).ok,
  );
  const badEvent = validateEvent({ schema: EVENT_SCHEMA, device: 'd', time: 'now', type: 'boom', severity: 'meh', message: '' });
  t.notOk(badEvent.ok);
  if (!badEvent.ok) t.same(badEvent.errors.map((e) => e.split(':')[0]), ['time', 'type', 'severity', 'message']);
  t.ok(validateStatus({ schema: STATUS_SCHEMA, device: 'd', state: 'offline', time: '2026-11-25T23:00:00Z', versions: { runtime: '0.1.0' } }).ok);
  t.notOk(validateStatus({ schema: STATUS_SCHEMA, device: 'd', state: 'gone', time: '2026-11-25T23:00:00Z', versions: {} }).ok);
  t.ok(validateReply({ schema: 'lvunet-edge/reply@1', id: null, ok: false, error: 'x' }).ok);
  t.notOk(validateReply({ schema: 'lvunet-edge/reply@1', id: 'a', ok: false }).ok);
});

t.test('command validators', async (t) => {
  t.ok(validateCommand('set-threshold', { id: 'r1', value: 0.5 }).ok);
  t.ok(validateCommand('set-threshold', { id: 'r1', value: 0 }).ok);
  for (const bad of [
    { id: 'r1', value: 1.01 },
    { id: 'r1', value: '0.5' },
    { id: 'r1' },
    { value: 0.5 },
    { id: '', value: 0.5 },
    { id: 7, value: 0.5 },
    { id: 'r1', value: 0.5, extra: true },
  ]) {
    t.notOk(validateCommand('set-threshold', bad).ok, JSON.stringify(bad));
  }
  const v = validateCommand('set-threshold', { id: 'r1', value: 2 });
  if (!v.ok) t.match(v.errors[0], /^value: expected a finite number >= 0 and <= 1, got 2$/);
  t.ok(validateCommand('reload-model', { id: 'r', path: '/models/a.onnx', sha256: SHA }).ok);
  t.ok(validateCommand('reload-model', { id: 'r', url: 'https://fleet/m.onnx' }).ok);
  t.notOk(validateCommand('reload-model', { id: 'r' }).ok);
  t.notOk(validateCommand('reload-model', { id: 'r', path: '/a', url: 'https://b' }).ok);
  t.notOk(validateCommand('reload-model', { id: 'r', url: 'ftp://b' }).ok);
  t.ok(validateCommand('reload-model', { id: 'r', rollback: true }).ok, 'rollback to the previous bundle');
  t.ok(validateCommand('reload-model', { id: 'r', path: '/b', precision: 'fp16' }).ok);
  for (const bad of [
    { id: 'r', rollback: false },
    { id: 'r', rollback: 'yes' },
    { id: 'r', rollback: true, path: '/b' },
    { id: 'r', rollback: true, url: 'https://b' },
    { id: 'r', path: '/b', precision: 'fp64' },
  ]) {
    t.notOk(validateCommand('reload-model', bad).ok, JSON.stringify(bad));
  }
  const both = validateCommand('reload-model', { id: 'r', rollback: true, path: '/b' });
  if (!both.ok) t.match(both.errors[0], /exactly one of path, url or rollback is required \(got path, rollback\)/);
  const off = validateCommand('reload-model', { id: 'r', rollback: false });
  if (!off.ok) t.match(off.errors.join('; '), /rollback: expected true, got false/);
  t.ok(validateCommand('snapshot', { id: 's' }).ok);
  t.ok(validateCommand('status', { id: 's' }).ok);
  t.notOk(validateCommand('status', 'status').ok);
  t.equal(requestId({ id: 'abc' }), 'abc');
  t.equal(requestId({ id: 5 }), null);
  t.equal(requestId('x'), null);
});
