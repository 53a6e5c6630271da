/**
 * FleetDb on both dialects (SQLite file; a throw-away PostgreSQL cluster when the binaries exist):
 * migrations, idempotent batches, device rows, groups, commands. And the pieces in front of it:
 * record validation and the batching writer (with a sink that fails on purpose).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { FleetDb } from '../../src/fleet-ops/db/fleet-db.js';
import { MIGRATIONS, migrate, SCHEMA_VERSION } from '../../src/fleet-ops/db/migrations.js';
import { openFleetDb } from '../../src/fleet-ops/db/open.js';
import { openPostgres } from '../../src/fleet-ops/db/postgres.js';
import { numberedPlaceholders, type SqlDriver } from '../../src/fleet-ops/db/sql.js';
import { openSqlite } from '../../src/fleet-ops/db/sqlite.js';
import { toRecord, type IngestRecord } from '../../src/fleet-ops/ingest/records.js';
import { IngestWriter, type RowSink } from '../../src/fleet-ops/ingest/writer.js';
import { EVENT_SCHEMA, RESULT_SCHEMA, STATUS_SCHEMA, TELEMETRY_SCHEMA } from '../../src/fleet/schemas.js';
import { postgresSkipReason, startPostgres } from '../helpers/postgres.js';
import { sqliteSkipReason } from '../helpers/sqlite.js';
import { same } from '../helpers/same.js';

const T0 = Date.parse('2026-12-03T10:00:00Z');

function result(device: string, seq: number): string {
  return JSON.stringify({
    schema: RESULT_SCHEMA,
    frame: { id: `f${seq}`, seq, width: 64, height: 48, format: 'RGB24' },
    model: { sha256: 'd'.repeat(64), precision: 'fp16' },
    provider: 'CPUExecutionProvider',
    captureTime: '2026-12-03T10:00:00.000Z',
    completionTime: '2026-12-03T10:00:00.020Z',
    latencyMs: { capture: 1, preprocess: 1, queue: 0, inference: 15, postprocess: 3, total: 20 },
    coverage: 0.25,
    components: [],
    droppedComponents: 0,
    device,
    seq,
  });
}
const status = (device: string, state: 'online' | 'offline'): string => JSON.stringify({ schema: STATUS_SCHEMA, device, state, time: '2026-12-03T09:00:00.000Z', versions: { 'lvunet-edge': '0.1.0' } });
const event = (device: string, message: string, severity = 'error'): string => JSON.stringify({ schema: EVENT_SCHEMA, device, time: '2026-12-03T10:00:01.000Z', type: 'fault', severity, message });
const telemetry = (device: string): string =>
  JSON.stringify({
    schema: TELEMETRY_SCHEMA,
    device,
    time: '2026-12-03T10:00:02.000Z',
    fps: 24.5,
    latency_ms: { p50: 20, p95: 25, p99: 30 },
    drops: 0,
    provider: 'CPUExecutionProvider',
    cpu_pct: 50,
    memory_rss_bytes: 1000,
    temperature_c: null,
    uptime_s: 10,
    model: { sha256: 'd'.repeat(64), precision: 'fp16' },
    event_loop_lag_ms: 3.5,
    worker_restarts: 1,
    queue: { pending: 7, dropped: 0 },
  });

const rec = (kind: 'result' | 'status' | 'event' | 'telemetry', device: string, raw: string, at = T0): IngestRecord => toRecord(kind, device, `lvunet/${device}/${kind}`, raw, at);

t.test('records: validated, device checked, rejects say why', async (t) => {
  t.equal(rec('result', 'cart-1', result('cart-1', 1)).kind, 'result');
  t.match(rec('result', 'cart-1', '{nope'), { kind: 'rejected', reason: /not JSON/ });
  t.match(rec('result', 'cart-1', JSON.stringify({ seq: 1 })), { kind: 'rejected', reason: /not a valid result message: .*schema/ });
  t.match(rec('result', 'cart-2', result('cart-1', 1)), { kind: 'rejected', reason: /payload device "cart-1" differs from the topic's device "cart-2"/ });
  t.equal(numberedPlaceholders('a = ? AND b IN (?, ?)'), 'a = $1 AND b IN ($2, $3)');
});

async function dialect(t: Test, open: () => Promise<SqlDriver>): Promise<void> {
  const db = await FleetDb.open(await open());
  t.teardown(() => db.close());
  const versions = await db.sql.all<{ version: number }>('SELECT version FROM schema_migrations');
  t.same(versions.map((v) => Number(v.version)), [SCHEMA_VERSION], 'migrated once');
  t.same(await migrate(db.sql), [], 'nothing to apply the second time');
  await t.rejects(migrate(db.sql, MIGRATIONS.slice(0, 0)), /database schema version 1 is newer than this lvunet-edge knows \(0\)/);

  const first = await db.writeBatch([
    rec('status', 'cart-1', status('cart-1', 'online'), T0),
    rec('result', 'cart-1', result('cart-1', 1), T0 + 1),
    rec('result', 'cart-1', result('cart-1', 2), T0 + 2),
    rec('event', 'cart-1', event('cart-1', 'camera lost'), T0 + 3),
    rec('telemetry', 'cart-1', telemetry('cart-1'), T0 + 4),
    rec('status', 'cart-9', status('cart-9', 'offline'), T0 + 5),
    rec('result', 'cart-1', '{broken', T0 + 6),
  ]);
  t.same(first, { results: 2, duplicates: 0, events: 1, rejected: 1 });
  // A redelivery of everything: no second row of anything.
  const again = await db.writeBatch([rec('result', 'cart-1', result('cart-1', 2), T0 + 10), rec('event', 'cart-1', event('cart-1', 'camera lost'), T0 + 11), rec('result', 'cart-1', result('cart-1', 3), T0 + 12)]);
  t.same(again, { results: 1, duplicates: 1, events: 0, rejected: 0 }, 'redelivered result and event ignored, the new one stored');
  same(t, [...(await db.resultCounts())], [['cart-1', { rows: 3, maxSeq: 3 }]]);
  t.equal((await db.rejected()).length, 1);
  const devices = await db.devices();
  t.match(devices, [
    { device: 'cart-1', state: 'online', lastSeen: T0 + 12, telemetryAt: T0 + 4, versions: { 'lvunet-edge': '0.1.0' } },
    { device: 'cart-9', state: 'offline', lastSeen: null },
  ]);
  await db.writeBatch([rec('status', 'cart-1', status('cart-1', 'offline'), T0 + 20)]);
  t.match((await db.devices())[0], { state: 'offline', stateAt: T0 + 20, lastSeen: T0 + 12, telemetryAt: T0 + 4 }, 'a will changes the state, not last seen or telemetry');
  await db.writeBatch([rec('event', 'cart-1', event('cart-1', 'later, minor', 'warning'), T0 + 30)]);
  t.equal((await db.latestEvents({ severities: ['error', 'critical'] })).get('cart-1')?.message, 'camera lost', 'last error: newest error-level event');
  t.equal((await db.events('cart-1')).length, 2);
  // NUL from a device (PostgreSQL text cannot hold it) must not make the batch fail on every retry.
  const nul = await db.writeBatch([rec('event', 'cart-1', event('cart-1', 'bad\u0000byte'), T0 + 31), rec('result', 'cart-1', 'raw\u0000bytes', T0 + 32)]);
  t.same(nul, { results: 0, duplicates: 0, events: 1, rejected: 1 }, 'NUL in an event message and in a rejected payload: stored');
  t.equal((await db.events('cart-1')).length, 3);

  t.equal(await db.addToGroup('ward', ['cart-1', 'cart-9', 'cart-1']), 2);
  t.same(await db.groupMembers('ward'), ['cart-1', 'cart-9']);
  t.equal(await db.removeFromGroup('ward', ['cart-9']), 1);
  t.same([...(await db.groups())], [['ward', ['cart-1']]]);

  await db.commandSent({ id: 'c1', device: 'cart-1', name: 'status', payload: { id: 'c1' } }, T0);
  t.match(await db.command('c1'), { ok: null, repliedAt: null });
  await db.commandReplied('c1', { ok: true }, T0 + 5);
  t.match(await db.command('c1'), { ok: true, repliedAt: T0 + 5, reply: { ok: true } });
  t.equal(await db.command('nope'), undefined);
  await t.rejects(db.setRollout('nope', { state: 'done' }), /no rollout nope/);
  // A runner's write guarded by `from` never overwrites an abort that landed after its read.
  await db.createRollout({ id: 'ro-1', bundle: 'b', group: 'ward', command: { path: 'b' }, waves: [1], maxFailures: 0, replyTimeoutMs: 1000 }, [{ device: 'cart-1', wave: 0 }], T0);
  t.equal(await db.setRollout('ro-1', { wave: 0, from: 'running' }), true);
  t.equal(await db.setRollout('ro-1', { state: 'aborted', reason: 'operator' }), true);
  t.equal(await db.setRollout('ro-1', { state: 'done', reason: null, from: 'running' }), false, 'done refused after the abort');
  t.match(await db.rollout('ro-1'), { state: 'aborted', reason: 'operator', wave: 0 });
}

t.test('sqlite', { skip: sqliteSkipReason() }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lvunet-fleetdb-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await dialect(t, () => openSqlite(path.join(dir, 'fleet.db')));
  await t.rejects(openSqlite(path.join(dir, 'missing', 'x.db')), /cannot open SQLite database .*missing/);
  await t.rejects(openFleetDb('mysql://x'), /--db: "mysql:\/\/x" is neither sqlite:FILE or postgres/);
  await t.rejects(openFleetDb('sqlite:'), /give a file/);
});

t.test('postgres', { skip: postgresSkipReason() }, async (t) => {
  const pg = await startPostgres(t);
  await dialect(t, () => openPostgres(pg.url));
  await t.rejects(openPostgres(`postgres://postgres:secret@127.0.0.1:${pg.port + 1}/x`), /cannot connect to PostgreSQL postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
});

t.test('writer: batches by rows and time, acknowledges after commit, retries a failing sink', async (t) => {
  const batches: number[] = [];
  let failures = 1;
  const sink: RowSink = {
    writeBatch: (records) => {
      if (failures-- > 0) return Promise.reject(new Error('database is down'));
      batches.push(records.length);
      return Promise.resolve({ results: records.length, duplicates: 0, events: 0, rejected: 0 });
    },
  };
  const retries: string[] = [];
  const w = new IngestWriter(sink, { maxRows: 3, maxDelayMs: 5, onRetry: (err, ms, rows) => retries.push(`${err.message} ${ms} ${rows}`) });
  const r = rec('result', 'cart-1', result('cart-1', 1));
  const done = await Promise.all([1, 2, 3, 4].map(() => w.write(r).then(() => w.stats().pending)));
  same(t, retries, ['database is down 1000 3'], 'the failed commit is retried, not dropped');
  t.same(batches, [3, 1], '3 rows by size, the 4th by time');
  t.same(done.length, 4);
  t.match(w.stats(), { batches: 2, results: 4, pending: 0, failedCommits: 1 });
  await w.close();
  await t.rejects(w.write(r), /closed/);
  t.throws(() => new IngestWriter(sink, { maxRows: 0 }), /maxRows/);

  const down = new IngestWriter({ writeBatch: () => Promise.reject(new Error('still down')) }, { maxDelayMs: 1 });
  const lost = down.write(r);
  await down.close(50);
  await t.rejects(lost, /not committed: still down/, 'close gives up on a dead database: the delivery stays unacknowledged');
});
