/**
 * The one SQL surface the fleet database code is written against, so every query and migration is
 * written once for both dialects (SQLite and PostgreSQL). Statements use `?` placeholders; the
 * PostgreSQL driver numbers them (`$1`...). Integers (ms timestamps, seq) come back as JS numbers
 * from both drivers.
 */
export type Dialect = 'sqlite' | 'postgres';
export type SqlValue = string | number | null;
export type Row = Record<string, unknown>;

/** Statements run inside one transaction; all or nothing. */
export interface SqlTx {
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  all<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
}

export interface SqlDriver extends SqlTx {
  readonly dialect: Dialect;
  /** Where the data lives, for messages (never a password). */
  readonly where: string;
  /**
   * Runs `fn` in one transaction, committed when it resolves, rolled back when it throws. `exclusive`
   * serialises it against every other writer of the database (migrations run by two processes
   * starting at once).
   */
  transaction<T>(fn: (tx: SqlTx) => Promise<T>, options?: { exclusive?: boolean }): Promise<T>;
  close(): Promise<void>;
}

/** `?` → `$1, $2, ...` (the statements here never contain a literal question mark). */
export function numberedPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
