/**
 * The ingest end to end against a real mosquitto: 20 simulated devices x 5 Hz x 5 s into two
 * `fleet ingest` processes, one of them killed with SIGKILL mid-run and restarted; SQLite and
 * PostgreSQL. Nothing sent may be missing from the database and no (device, seq) may be there
 * twice. The full-size run (200 x 10 Hz x 60 s) is test/soak/fleet-ingest.test.ts and `npm run bench`.
 */
import t from 'tap';
import { benchIngest } from '../../bench/fleet-ingest.js';
import { findMosquitto } from '../helpers/mosquitto.js';
import { postgresSkipReason, startPostgres } from '../helpers/postgres.js';

const noBroker = findMosquitto() === undefined ? 'mosquitto not installed (apt-get install mosquitto)' : undefined;

t.test('sqlite: two ingests, one killed and restarted: nothing lost, nothing twice', { skip: noBroker }, async (t) => {
  const r = await benchIngest({ devices: 20, hz: 5, seconds: 5, db: 'sqlite', killAtS: 2 });
  t.equal(r.sent, 500, 'every device published every result');
  t.equal(r.lost, 0, 'no result missing from the database');
  t.equal(r.unexpected, 0, 'no row that was not sent, none twice');
  t.equal(r.rows, r.sent);
});

t.test('postgres: two ingests, one killed and restarted: nothing lost, nothing twice', { skip: noBroker ?? postgresSkipReason() }, async (t) => {
  const pg = await startPostgres(t);
  const r = await benchIngest({ devices: 20, hz: 5, seconds: 5, db: pg.url, killAtS: 2 });
  t.equal(r.db, 'postgres');
  t.equal(r.sent, 500);
  t.equal(r.lost, 0, 'no result missing from the database');
  t.equal(r.unexpected, 0, 'no row that was not sent, none twice');
  t.equal(r.rows, r.sent);
});
