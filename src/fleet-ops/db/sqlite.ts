/**
 * SQLite through better-sqlite3 (12.x: 13.x needs Node 22): the embedded default for one site.
 * WAL mode, so `fleet status` reads while an ingest writes, and a busy timeout, so two ingest
 * processes on one file wait for each other instead of failing with SQLITE_BUSY.
 */
import Database from 'better-sqlite3';
import type { Row, SqlDriver, SqlTx, SqlValue } from './sql.js';

const BUSY_TIMEOUT_MS = 10_000;

export function openSqlite(file: string): SqlDriver {
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (err) {
    throw new Error(`cannot open SQLite database ${file}: ${(err as Error).message}`, { cause: err });
  }
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode: a committed transaction survives a process crash (SIGKILL), which is what
  // acking after commit relies on; only a power cut may lose the last commits, as with any WAL
  // database without a sync per commit.
  db.pragma('synchronous = NORMAL');
  const statements = new Map<string, Database.Statement>();
  const prepared = (sql: string): Database.Statement => {
    let s = statements.get(sql);
    if (!s) statements.set(sql, (s = db.prepare(sql)));
    return s;
  };
  const tx: SqlTx = {
    run: (sql: string, params: readonly SqlValue[] = []) => Promise.resolve(prepared(sql).run(...params).changes),
    all: <T extends Row = Row>(sql: string, params: readonly SqlValue[] = []) => Promise.resolve(prepared(sql).all(...params) as T[]),
  };
  // One transaction at a time per connection: better-sqlite3 is synchronous, but `fn` is async
  // (its awaits resolve at once here), so two overlapping calls would nest BEGINs.
  let chain: Promise<unknown> = Promise.resolve();
  return {
    dialect: 'sqlite',
    where: `sqlite:${file}`,
    ...tx,
    transaction<T>(fn: (t: SqlTx) => Promise<T>, options: { exclusive?: boolean } = {}): Promise<T> {
      const next = chain.then(async () => {
        // IMMEDIATE takes the write lock at BEGIN: a reader upgrading later could hit SQLITE_BUSY
        // without the busy handler being able to help (deadlock between two writers).
        db.exec(options.exclusive ? 'BEGIN EXCLUSIVE' : 'BEGIN IMMEDIATE');
        try {
          const value = await fn(tx);
          db.exec('COMMIT');
          return value;
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
      });
      chain = next.catch(() => undefined);
      return next;
    },
    close(): Promise<void> {
      db.close();
      return Promise.resolve();
    },
  };
}
