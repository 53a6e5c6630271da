/**
 * A throw-away PostgreSQL cluster for tests: initdb into a temp directory, started with pg_ctl on a
 * free port, stopped and removed in teardown. PostgreSQL refuses to run as root, so under root the
 * cluster belongs to the `postgres` user (Debian's package creates it) and runs through runuser.
 * `findPostgres()` is undefined when the binaries are missing: tests skip with that reason.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, type TeardownHost } from './mosquitto.js';

const run = promisify(execFile);

/** The bin directory with initdb and pg_ctl: $PG_BIN, or the newest /usr/lib/postgresql/<v>/bin. */
export function findPostgres(): string | undefined {
  const candidates = process.env.PG_BIN ? [process.env.PG_BIN] : [];
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  } catch {
    // no Debian layout
  }
  return candidates.find((dir) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl')));
}

function postgresUser(): { uid: number; gid: number } | undefined {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export interface Postgres {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Why a postgres test cannot run here, or undefined when it can. */
export function postgresSkipReason(): string | undefined {
  if (!findPostgres()) return 'PostgreSQL binaries not found (apt-get install postgresql, or set PG_BIN)';
  if (process.getuid?.() === 0 && !postgresUser()) return 'running as root without a postgres user to own the test cluster';
  return undefined;
}

export async function startPostgres(t: TeardownHost): Promise<Postgres> {
  const bin = findPostgres();
  if (!bin) throw new Error('PostgreSQL binaries not found (apt-get install postgresql, or set PG_BIN)');
  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? postgresUser() : undefined;
  if (asRoot && !user) throw new Error('running as root and no postgres user exists to own the cluster');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lvunet-pg-'));
  if (user) await chown(dir, user.uid, user.gid);
  const data = path.join(dir, 'data');
  const port = await freePort();
  const as = async (cmd: string, args: string[]): Promise<void> => {
    const [file, argv] = user ? ['runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args]] : [path.join(bin, cmd), args];
    await run(file, argv, { timeout: 60_000 });
  };
  await as('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  // fsync off: the tests kill ingest processes, never the database server.
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
  await as('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  t.teardown(stop);
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, stop };
}
