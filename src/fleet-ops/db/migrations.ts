/**
 * Versioned schema of the fleet database. Each version is one list of statements, written once for
 * both dialects (types both accept: TEXT, INTEGER, BIGINT, DOUBLE PRECISION); a statement that must
 * differ would carry one text per dialect. Versions are applied in order, each in the same
 * transaction as its row in `schema_migrations`, under an exclusive lock so two processes starting
 * at once do not both apply one. Never edit a released version: add the next one.
 *
 * Times are BIGINT milliseconds since the epoch (the ingest's clock) unless a column says `_iso`
 * (the device's own ISO 8601 text, as published). Payloads are kept whole as JSON text.
 */
import type { Dialect, SqlDriver } from './sql.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly (string | Record<Dialect, string>)[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'devices, results, events, rejected messages, groups, commands, rollouts',
    statements: [
      // One row per device: the latest status (birth/will) and telemetry, and when anything last arrived.
      `CREATE TABLE devices (
        device TEXT PRIMARY KEY,
        state TEXT,
        state_time_iso TEXT,
        state_at BIGINT,
        versions TEXT,
        telemetry TEXT,
        telemetry_at BIGINT,
        last_seen BIGINT NOT NULL
      )`,
      // (device, seq) is the identity of a result: a redelivered one is not a second row.
      `CREATE TABLE results (
        device TEXT NOT NULL,
        seq BIGINT NOT NULL,
        capture_time_iso TEXT NOT NULL,
        completion_time_iso TEXT NOT NULL,
        model_sha256 TEXT NOT NULL,
        model_precision TEXT NOT NULL,
        provider TEXT NOT NULL,
        coverage DOUBLE PRECISION NOT NULL,
        components INTEGER NOT NULL,
        latency_total_ms DOUBLE PRECISION,
        received_at BIGINT NOT NULL,
        written_at BIGINT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (device, seq)
      )`,
      // Events carry no seq; their identity is the device plus the sha256 of the payload (which
      // includes the device's millisecond timestamp), so a redelivery is not a second row.
      `CREATE TABLE events (
        device TEXT NOT NULL,
        digest TEXT NOT NULL,
        time_iso TEXT NOT NULL,
        type TEXT NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL,
        details TEXT,
        received_at BIGINT NOT NULL,
        PRIMARY KEY (device, digest)
      )`,
      `CREATE INDEX events_by_device_time ON events (device, received_at)`,
      // Messages that failed validation: kept (not acknowledged and forgotten), with the reason.
      `CREATE TABLE rejected (
        topic TEXT NOT NULL,
        digest TEXT NOT NULL,
        reason TEXT NOT NULL,
        payload TEXT NOT NULL,
        received_at BIGINT NOT NULL,
        PRIMARY KEY (topic, digest)
      )`,
      `CREATE TABLE device_groups (
        name TEXT NOT NULL,
        device TEXT NOT NULL,
        added_at BIGINT NOT NULL,
        PRIMARY KEY (name, device)
      )`,
      // Every command an operator sent, and its reply once it came.
      `CREATE TABLE commands (
        id TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        name TEXT NOT NULL,
        payload TEXT NOT NULL,
        sent_at BIGINT NOT NULL,
        replied_at BIGINT,
        ok INTEGER,
        reply TEXT
      )`,
      `CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        bundle TEXT NOT NULL,
        group_name TEXT NOT NULL,
        command TEXT NOT NULL,
        waves TEXT NOT NULL,
        max_failures DOUBLE PRECISION NOT NULL,
        reply_timeout_ms BIGINT NOT NULL,
        state TEXT NOT NULL,
        wave INTEGER NOT NULL,
        reason TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      `CREATE TABLE rollout_devices (
        rollout TEXT NOT NULL,
        device TEXT NOT NULL,
        wave INTEGER NOT NULL,
        state TEXT NOT NULL,
        command_id TEXT,
        detail TEXT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (rollout, device)
      )`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Brings the database to SCHEMA_VERSION; returns the versions it applied. */
export async function migrate(db: SqlDriver, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  return db.transaction(
    async (tx) => {
      // Inside the exclusive transaction (PostgreSQL: after the advisory lock): two processes
      // starting at once could otherwise race on CREATE TABLE IF NOT EXISTS (a pg_type unique violation).
      await tx.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      const rows = await tx.all<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
      const current = rows[0]?.v ?? 0;
      const latest = migrations[migrations.length - 1]?.version ?? 0;
      if (current > latest) {
        throw new Error(`${db.where}: database schema version ${current} is newer than this lvunet-edge knows (${latest}); upgrade lvunet-edge`);
      }
      const applied: number[] = [];
      for (const m of migrations) {
        if (m.version <= current) continue;
        for (const s of m.statements) await tx.run(typeof s === 'string' ? s : s[db.dialect]);
        await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
        applied.push(m.version);
      }
      return applied;
    },
    { exclusive: true },
  );
}
