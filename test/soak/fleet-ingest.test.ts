/**
 * The full-size ingest drill: 200 simulated devices x 10 Hz x 60 s into two `fleet ingest`
 * processes, one killed with SIGKILL at 20 s and restarted; SQLite, then PostgreSQL. Nothing sent
 * may be missing from the database, nothing may be there twice. (`npm run bench` reports the
 * rows/s and latency of the same run.)
 */
import t from 'tap';
import { benchIngest } from '../../bench/fleet-ingest.js';
import { findMosquitto } from '../helpers/mosquitto.js';
import { postgresSkipReason, startPostgres } from '../helpers/postgres.js';

const noBroker = findMosquitto() === undefined ? 'mosquitto not installed (apt-get install mosquitto)' : undefined;
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

t.test('sqlite: 200 devices x 10 Hz x 60 s, two ingests, one SIGKILLed', { skip: noBroker, timeout: 600_000 }, async (t) => {
  const r = await benchIngest({ devices: 200, hz: 10, seconds: 60, db: 'sqlite', killAtS: 20, log });
  t.comment(JSON.stringify(r));
  t.equal(r.sent, 120_000);
  t.equal(r.lost, 0, 'no result missing');
  t.equal(r.unexpected, 0, 'no duplicate or unknown row');
});

t.test('postgres: 200 devices x 10 Hz x 60 s, two ingests, one SIGKILLed', { skip: noBroker ?? postgresSkipReason(), timeout: 600_000 }, async (t) => {
  const pg = await startPostgres(t);
  const r = await benchIngest({ devices: 200, hz: 10, seconds: 60, db: pg.url, killAtS: 20, log });
  t.comment(JSON.stringify(r));
  t.equal(r.sent, 120_000);
  t.equal(r.lost, 0, 'no result missing');
  t.equal(r.unexpected, 0, 'no duplicate or unknown row');
});
