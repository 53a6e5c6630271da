/** `--db sqlite:FILE` or `--db postgres://...`: the database an operator command works on. */
import { FleetDb } from './fleet-db.js';
import { openPostgres } from './postgres.js';
import { openSqlite } from './sqlite.js';

export const DB_SPEC_HELP = 'sqlite:FILE or postgres://user@host:port/db';

export async function openFleetDb(spec: string): Promise<FleetDb> {
  if (spec.startsWith('sqlite:')) {
    const file = spec.slice('sqlite:'.length);
    if (file === '') throw new TypeError(`--db ${spec}: give a file, e.g. sqlite:/var/lib/lvunet/fleet.db`);
    return FleetDb.open(openSqlite(file));
  }
  if (spec.startsWith('postgres://') || spec.startsWith('postgresql://')) return FleetDb.open(await openPostgres(spec));
  throw new TypeError(`--db: ${JSON.stringify(spec.replace(/:[^:@/]*@/, ':***@'))} is neither ${DB_SPEC_HELP}`);
}
