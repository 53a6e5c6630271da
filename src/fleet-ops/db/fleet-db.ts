/**
 * FleetDb: every read and write of the operator side, over one SqlDriver (SQLite or PostgreSQL),
 * each query written once. The ingest writes batches of records; `fleet status`, `fleet send`,
 * groups and rollouts read and write the rest.
 */
import { digest, type IngestRecord } from '../ingest/records.js';
import type { BatchOutcome, RowSink } from '../ingest/writer.js';
import { migrate } from './migrations.js';
import type { Row, SqlDriver, SqlTx, SqlValue } from './sql.js';

export interface DeviceRow {
  device: string;
  state: 'online' | 'offline' | null;
  stateTimeIso: string | null;
  stateAt: number | null;
  versions: Record<string, string>;
  telemetry: Record<string, unknown> | null;
  telemetryAt: number | null;
  /** When anything from the device itself last arrived; null: only a retained will so far. */
  lastSeen: number | null;
}

export interface EventRow {
  device: string;
  timeIso: string;
  type: string;
  severity: string;
  message: string;
  details: Record<string, unknown> | null;
  receivedAt: number;
}

export interface CommandRow {
  id: string;
  device: string;
  name: string;
  sentAt: number;
  repliedAt: number | null;
  ok: boolean | null;
  reply: Record<string, unknown> | null;
}

export type RolloutState = 'running' | 'halted' | 'aborted' | 'done';
export type RolloutDeviceState = 'pending' | 'sent' | 'ok' | 'failed' | 'timeout';

export interface RolloutRow {
  id: string;
  bundle: string;
  group: string;
  /** The reload-model payload sent to every device (without `id`). */
  command: Record<string, unknown>;
  /** Cumulative fractions of the group, ascending, ending at 1. */
  waves: number[];
  maxFailures: number;
  replyTimeoutMs: number;
  state: RolloutState;
  /** Index of the wave being (or last) run. */
  wave: number;
  reason: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface RolloutDeviceRow {
  device: string;
  wave: number;
  state: RolloutDeviceState;
  commandId: string | null;
  detail: string | null;
  updatedAt: number;
}

// Rows per multi-row INSERT: one statement instead of one round trip per row (PostgreSQL), well
// under both dialects' bound-parameter limits.
const CHUNK = 200;

const json = (text: unknown): Record<string, unknown> | null => (typeof text === 'string' ? (JSON.parse(text) as Record<string, unknown>) : null);
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

async function insertMany(tx: SqlTx, head: string, columns: number, rows: SqlValue[][], tail: string): Promise<number> {
  let changed = 0;
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK);
    const one = `(${new Array<string>(columns).fill('?').join(', ')})`;
    changed += await tx.run(`${head} VALUES ${chunk.map(() => one).join(', ')} ${tail}`, chunk.flat());
  }
  return changed;
}

// Upserts keep the newest last_seen; CASE instead of GREATEST/MAX because the dialects differ there.
/** What one batch changes in a device's row; absent parts keep what the row has. */
interface DeviceUpdate {
  status?: { state: string; timeIso: string; at: number; versions: string };
  telemetry?: { raw: string; at: number };
  /** 0: nothing from the device itself in this batch (only a retained will, say). */
  lastSeen: number;
}

function seen(u: DeviceUpdate, at: number): void {
  if (at > u.lastSeen) u.lastSeen = at;
}

// COALESCE keeps the row's value where the batch has none; last_seen only moves forward (CASE
// rather than GREATEST/MAX, which the dialects spell differently).
const DEVICE_UPSERT = `ON CONFLICT (device) DO UPDATE SET
  state = COALESCE(excluded.state, devices.state),
  state_time_iso = COALESCE(excluded.state_time_iso, devices.state_time_iso),
  state_at = COALESCE(excluded.state_at, devices.state_at),
  versions = COALESCE(excluded.versions, devices.versions),
  telemetry = COALESCE(excluded.telemetry, devices.telemetry),
  telemetry_at = COALESCE(excluded.telemetry_at, devices.telemetry_at),
  last_seen = CASE WHEN excluded.last_seen > devices.last_seen THEN excluded.last_seen ELSE devices.last_seen END`;

export class FleetDb implements RowSink {
  private constructor(readonly sql: SqlDriver) {}

  /** Opens the database and applies any pending migration. */
  static async open(sql: SqlDriver): Promise<FleetDb> {
    try {
      await migrate(sql);
    } catch (err) {
      await sql.close();
      throw err;
    }
    return new FleetDb(sql);
  }

  get where(): string {
    return this.sql.where;
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  /** Writes a batch in one transaction: all of it is committed or none. */
  writeBatch(records: readonly IngestRecord[], now: number = Date.now()): Promise<BatchOutcome> {
    return this.sql.transaction(async (tx) => {
      const results: SqlValue[][] = [];
      const events: SqlValue[][] = [];
      const rejected: SqlValue[][] = [];
      const devices = new Map<string, DeviceUpdate>();
      const update = (device: string): DeviceUpdate => {
        let u = devices.get(device);
        if (!u) devices.set(device, (u = { lastSeen: 0 }));
        return u;
      };
      for (const r of records) {
        switch (r.kind) {
          case 'result': {
            const m = r.message;
            results.push([m.device, m.seq, m.captureTime, m.completionTime, m.model.sha256, m.model.precision, m.provider, m.coverage, m.components.length, m.latencyMs.total ?? null, r.receivedAt, now, r.raw]);
            seen(update(m.device), r.receivedAt);
            break;
          }
          case 'event': {
            const m = r.message;
            events.push([m.device, digest(r.raw), m.time, m.type, m.severity, m.message, m.details === undefined ? null : JSON.stringify(m.details), r.receivedAt]);
            seen(update(m.device), r.receivedAt);
            break;
          }
          case 'rejected':
            rejected.push([r.topic, digest(r.raw), r.reason, r.raw, r.receivedAt]);
            break;
          case 'status': {
            // Records are in arrival order (the broker keeps one topic's order): the last status wins.
            const u = update(r.message.device);
            u.status = { state: r.message.state, timeIso: r.message.time, at: r.receivedAt, versions: JSON.stringify(r.message.versions) };
            // A retained will read at subscribe time is old news, not a sign of life.
            if (r.message.state === 'online') seen(u, r.receivedAt);
            break;
          }
          case 'telemetry': {
            const u = update(r.message.device);
            u.telemetry = { raw: r.raw, at: r.receivedAt };
            seen(u, r.receivedAt);
            break;
          }
        }
      }
      const written = await insertMany(
        tx,
        'INSERT INTO results (device, seq, capture_time_iso, completion_time_iso, model_sha256, model_precision, provider, coverage, components, latency_total_ms, received_at, written_at, payload)',
        13,
        results,
        'ON CONFLICT (device, seq) DO NOTHING',
      );
      const ev = await insertMany(tx, 'INSERT INTO events (device, digest, time_iso, type, severity, message, details, received_at)', 8, events, 'ON CONFLICT (device, digest) DO NOTHING');
      const rej = await insertMany(tx, 'INSERT INTO rejected (topic, digest, reason, payload, received_at)', 5, rejected, 'ON CONFLICT (topic, digest) DO NOTHING');
      // Every device row of the batch in one statement, in device order: two ingest processes
      // writing the same devices (each gets every status) then lock the rows in the same order and
      // wait for each other, instead of deadlocking (PostgreSQL would abort one of them).
      const rows = [...devices]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([device, u]): SqlValue[] => [device, u.status?.state ?? null, u.status?.timeIso ?? null, u.status?.at ?? null, u.status?.versions ?? null, u.telemetry?.raw ?? null, u.telemetry?.at ?? null, u.lastSeen]);
      await insertMany(tx, 'INSERT INTO devices (device, state, state_time_iso, state_at, versions, telemetry, telemetry_at, last_seen)', 8, rows, DEVICE_UPSERT);
      return { results: written, duplicates: results.length - written, events: ev, rejected: rej };
    });
  }

  // -------------------------------------------------------------------------------------------
  // devices, events, results
  // -------------------------------------------------------------------------------------------

  async devices(): Promise<DeviceRow[]> {
    const rows = await this.sql.all('SELECT * FROM devices ORDER BY device');
    return rows.map((r) => ({
      device: String(r.device),
      state: (r.state as DeviceRow['state']) ?? null,
      stateTimeIso: (r.state_time_iso as string | null) ?? null,
      stateAt: num(r.state_at),
      versions: (json(r.versions) as Record<string, string> | null) ?? {},
      telemetry: json(r.telemetry),
      telemetryAt: num(r.telemetry_at),
      lastSeen: Number(r.last_seen) > 0 ? Number(r.last_seen) : null,
    }));
  }

  /** The newest event per device among those of the given severities (or types). */
  async latestEvents(where: { severities?: readonly string[]; types?: readonly string[] }): Promise<Map<string, EventRow>> {
    const column = where.severities ? 'severity' : 'type';
    const values = where.severities ?? where.types ?? [];
    const marks = values.map(() => '?').join(', ');
    const rows = await this.sql.all(
      `SELECT e.* FROM events e JOIN (SELECT device, MAX(received_at) AS at FROM events WHERE ${column} IN (${marks}) GROUP BY device) m
       ON e.device = m.device AND e.received_at = m.at WHERE e.${column} IN (${marks}) ORDER BY e.device, e.time_iso`,
      [...values, ...values],
    );
    const out = new Map<string, EventRow>();
    for (const r of rows) out.set(String(r.device), eventRow(r));
    return out;
  }

  async events(device: string, limit = 100): Promise<EventRow[]> {
    return (await this.sql.all('SELECT * FROM events WHERE device = ? ORDER BY received_at DESC, time_iso DESC LIMIT ?', [device, limit])).map(eventRow);
  }

  /** Result rows and the highest seq per device. */
  async resultCounts(): Promise<Map<string, { rows: number; maxSeq: number }>> {
    const rows = await this.sql.all<{ device: string; n: number; s: number }>('SELECT device, COUNT(*) AS n, MAX(seq) AS s FROM results GROUP BY device');
    return new Map(rows.map((r) => [r.device, { rows: Number(r.n), maxSeq: Number(r.s) }]));
  }

  /** (device, seq, written_at) of every result, for the load tests and the bench. */
  async resultKeys(): Promise<{ device: string; seq: number; writtenAt: number }[]> {
    const rows = await this.sql.all<{ device: string; seq: number; written_at: number }>('SELECT device, seq, written_at FROM results');
    return rows.map((r) => ({ device: r.device, seq: Number(r.seq), writtenAt: Number(r.written_at) }));
  }

  async rejected(): Promise<{ topic: string; reason: string; receivedAt: number }[]> {
    const rows = await this.sql.all('SELECT topic, reason, received_at FROM rejected ORDER BY received_at');
    return rows.map((r) => ({ topic: String(r.topic), reason: String(r.reason), receivedAt: Number(r.received_at) }));
  }

  // -------------------------------------------------------------------------------------------
  // groups
  // -------------------------------------------------------------------------------------------

  async addToGroup(name: string, devices: readonly string[], now: number = Date.now()): Promise<number> {
    return this.sql.transaction(async (tx) => {
      let added = 0;
      for (const d of devices) added += await tx.run('INSERT INTO device_groups (name, device, added_at) VALUES (?, ?, ?) ON CONFLICT (name, device) DO NOTHING', [name, d, now]);
      return added;
    });
  }

  async removeFromGroup(name: string, devices: readonly string[]): Promise<number> {
    return this.sql.transaction(async (tx) => {
      let removed = 0;
      for (const d of devices) removed += await tx.run('DELETE FROM device_groups WHERE name = ? AND device = ?', [name, d]);
      return removed;
    });
  }

  async groupMembers(name: string): Promise<string[]> {
    return (await this.sql.all<{ device: string }>('SELECT device FROM device_groups WHERE name = ? ORDER BY device', [name])).map((r) => r.device);
  }

  async groups(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const r of await this.sql.all<{ name: string; device: string }>('SELECT name, device FROM device_groups ORDER BY name, device')) {
      const list = out.get(r.name) ?? [];
      list.push(r.device);
      out.set(r.name, list);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // commands
  // -------------------------------------------------------------------------------------------

  async commandSent(c: { id: string; device: string; name: string; payload: unknown }, now: number = Date.now()): Promise<void> {
    await this.sql.run('INSERT INTO commands (id, device, name, payload, sent_at) VALUES (?, ?, ?, ?, ?)', [c.id, c.device, c.name, JSON.stringify(c.payload), now]);
  }

  async commandReplied(id: string, reply: { ok: boolean }, now: number = Date.now()): Promise<void> {
    await this.sql.run('UPDATE commands SET replied_at = ?, ok = ?, reply = ? WHERE id = ?', [now, reply.ok ? 1 : 0, JSON.stringify(reply), id]);
  }

  async command(id: string): Promise<CommandRow | undefined> {
    const r = (await this.sql.all('SELECT * FROM commands WHERE id = ?', [id]))[0];
    if (!r) return undefined;
    return {
      id: String(r.id),
      device: String(r.device),
      name: String(r.name),
      sentAt: Number(r.sent_at),
      repliedAt: num(r.replied_at),
      ok: r.ok === null || r.ok === undefined ? null : Number(r.ok) === 1,
      reply: json(r.reply),
    };
  }

  // -------------------------------------------------------------------------------------------
  // rollouts
  // -------------------------------------------------------------------------------------------

  async createRollout(r: Omit<RolloutRow, 'state' | 'wave' | 'reason' | 'createdAt' | 'updatedAt'>, plan: readonly { device: string; wave: number }[], now: number = Date.now()): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await tx.run(
        'INSERT INTO rollouts (id, bundle, group_name, command, waves, max_failures, reply_timeout_ms, state, wave, reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [r.id, r.bundle, r.group, JSON.stringify(r.command), JSON.stringify(r.waves), r.maxFailures, r.replyTimeoutMs, 'running', 0, null, now, now],
      );
      await insertMany(tx, 'INSERT INTO rollout_devices (rollout, device, wave, state, command_id, detail, updated_at)', 7, plan.map((p) => [r.id, p.device, p.wave, 'pending', null, null, now]), '');
    });
  }

  async rollout(id: string): Promise<RolloutRow | undefined> {
    const r = (await this.sql.all('SELECT * FROM rollouts WHERE id = ?', [id]))[0];
    return r ? rolloutRow(r) : undefined;
  }

  async rollouts(): Promise<RolloutRow[]> {
    return (await this.sql.all('SELECT * FROM rollouts ORDER BY created_at')).map(rolloutRow);
  }

  /**
   * Changes only the given columns, in one statement. With `from`, only while the rollout is in that
   * state: an abort landing between a runner's read and its write is never overwritten. Returns
   * whether the row changed.
   */
  async setRollout(id: string, change: { state?: RolloutState; wave?: number; reason?: string | null; from?: RolloutState }, now: number = Date.now()): Promise<boolean> {
    const columns: [string, SqlValue][] = [['updated_at', now]];
    if (change.state !== undefined) columns.push(['state', change.state]);
    if (change.wave !== undefined) columns.push(['wave', change.wave]);
    if (change.reason !== undefined) columns.push(['reason', change.reason]);
    const guard = change.from !== undefined ? ' AND state = ?' : '';
    const params = [...columns.map(([, v]) => v), id, ...(change.from !== undefined ? [change.from] : [])];
    const changed = await this.sql.run(`UPDATE rollouts SET ${columns.map(([c]) => `${c} = ?`).join(', ')} WHERE id = ?${guard}`, params);
    if (changed === 0 && !(await this.rollout(id))) throw new Error(`no rollout ${id} in ${this.where}`);
    return changed > 0;
  }

  async rolloutDevices(id: string): Promise<RolloutDeviceRow[]> {
    const rows = await this.sql.all('SELECT * FROM rollout_devices WHERE rollout = ? ORDER BY wave, device', [id]);
    return rows.map((r) => ({
      device: String(r.device),
      wave: Number(r.wave),
      state: r.state as RolloutDeviceState,
      commandId: (r.command_id as string | null) ?? null,
      detail: (r.detail as string | null) ?? null,
      updatedAt: Number(r.updated_at),
    }));
  }

  async setRolloutDevice(id: string, device: string, change: { state: RolloutDeviceState; commandId?: string; detail?: string | null }, now: number = Date.now()): Promise<void> {
    await this.sql.run('UPDATE rollout_devices SET state = ?, command_id = COALESCE(?, command_id), detail = ?, updated_at = ? WHERE rollout = ? AND device = ?', [
      change.state,
      change.commandId ?? null,
      change.detail ?? null,
      now,
      id,
      device,
    ]);
  }
}

function eventRow(r: Row): EventRow {
  return {
    device: String(r.device),
    timeIso: String(r.time_iso),
    type: String(r.type),
    severity: String(r.severity),
    message: String(r.message),
    details: json(r.details),
    receivedAt: Number(r.received_at),
  };
}

function rolloutRow(r: Row): RolloutRow {
  return {
    id: String(r.id),
    bundle: String(r.bundle),
    group: String(r.group_name),
    command: json(r.command) ?? {},
    waves: JSON.parse(String(r.waves)) as number[],
    maxFailures: Number(r.max_failures),
    replyTimeoutMs: Number(r.reply_timeout_ms),
    state: r.state as RolloutState,
    wave: Number(r.wave),
    reason: (r.reason as string | null) ?? null,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
