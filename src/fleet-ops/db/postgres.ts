/**
 * PostgreSQL through `pg`, for fleets larger than one SQLite file serves comfortably. A small pool:
 * the ingest commits one batch at a time, `fleet status` and the rollout runner read beside it.
 */
import pg from 'pg';
import { numberedPlaceholders, type Row, type SqlDriver, type SqlTx, type SqlValue } from './sql.js';

// BIGINT (int8) columns hold ms timestamps and seq numbers, far below 2^53; pg returns them as
// strings by default.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

/** The URL without its password, for messages. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

// Any fixed number: every process that migrates takes this transaction-scoped advisory lock first.
const MIGRATION_LOCK = 0x6c76756e;

/**
 * PostgreSQL text cannot hold NUL, and a device can send one (`"\u0000"` in a JSON string, or raw
 * bytes in a payload stored as rejected). Left alone, the whole batch fails on every retry and the
 * fleet's ingest stops behind it; U+FFFD in its place keeps the row (SQLite stores NUL as it is).
 */
function textSafe(params: readonly SqlValue[]): SqlValue[] {
  return params.map((v) => (typeof v === 'string' && v.includes('\0') ? v.replaceAll('\0', '\uFFFD') : v));
}

export async function openPostgres(url: string): Promise<SqlDriver> {
  const where = redactedUrl(url);
  const pool = new pg.Pool({ connectionString: url, max: 4, types });
  // An idle client losing its connection (server restart) must not crash the process.
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end();
    throw new Error(`cannot connect to PostgreSQL ${where}: ${(err as Error).message}`, { cause: err });
  }
  const on = (q: { query: pg.Pool['query'] }): SqlTx => ({
    run: async (sql: string, params: readonly SqlValue[] = []) => (await q.query(numberedPlaceholders(sql), textSafe(params))).rowCount ?? 0,
    all: async <T extends Row = Row>(sql: string, params: readonly SqlValue[] = []) => (await q.query(numberedPlaceholders(sql), textSafe(params))).rows as T[],
  });
  return {
    dialect: 'postgres',
    where,
    ...on(pool),
    async transaction<T>(fn: (tx: SqlTx) => Promise<T>, options: { exclusive?: boolean } = {}): Promise<T> {
      const client = await pool.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        if (options.exclusive) await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
        const value = await fn(on(client));
        await client.query('COMMIT');
        return value;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
        throw err;
      } finally {
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}
