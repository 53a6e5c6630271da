// issue 18 finding 8: broker passwords in `--mqtt mqtt://user:pass@host` were logged verbatim.
// A real `run --demo --mqtt mqtt://user:PASS@127.0.0.1:PORT` against a mosquitto that requires
// that password (so the credentials are really used), then every byte the run printed and every
// message it published (status, results, events, command replies) is searched for the password.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { generateKeys } from '../../src/fleet/bundles/keys.js';
import { json, recorder, type Received } from '../fleet/mqtt-helpers.js';
import { findMosquitto, startBroker } from '../helpers/mosquitto.js';
import { ensureStopped, startRun, stateDir } from './run-helpers.js';

const DEVICE = 'cart-pw';
const USER = 'cart';
// Characters that URL-encode, so both forms are looked for.
const PASSWORD = 'Sup3r-s3cret/pw@1';
const ENCODED = encodeURIComponent(PASSWORD);

const havePasswd = spawnSync('mosquitto_passwd', ['-h']).error === undefined;
const skip = !findMosquitto() ? 'mosquitto is not installed' : !havePasswd ? 'mosquitto_passwd is not installed' : false;

function leaks(text: string): string[] {
  return [PASSWORD, ENCODED].filter((s) => text.includes(s));
}

t.test('run --mqtt with credentials: the password is in no log line, event, status or reply', { skip }, async (t) => {
  const dir = stateDir(t, 'redaction');
  const passwd = join(dir, 'passwd');
  writeFileSync(passwd, '');
  const made = spawnSync('mosquitto_passwd', ['-b', passwd, USER, PASSWORD]);
  t.equal(made.status, 0, made.stderr?.toString());
  spawnSync('mosquitto_passwd', ['-b', passwd, 'ops', 'ops-pass']);
  const broker = await startBroker({ t, allowAnonymous: false, extraConfig: `password_file ${passwd}` });
  const ops = await recorder(broker.url, [`lvunet/${DEVICE}/#`], { username: 'ops', password: 'ops-pass' });
  t.teardown(() => ops.close());

  const url = `mqtt://${USER}:${ENCODED}@127.0.0.1:${broker.port}`;
  const keys = generateKeys(join(dir, 'keys'));
  const p = startRun(['--demo', '--mqtt', url, '--device-id', DEVICE, '--fps', '10', '--sink', 'stdout', '--bundle-key', keys.publicPath], {
    LVUNET_STATE_DIR: join(dir, 'state'),
  });
  t.teardown(() => ensureStopped(p));
  const results = (ms: Received[]): Received[] => ms.filter((m) => m.topic === `lvunet/${DEVICE}/result`);
  await ops.until((ms) => results(ms).length >= 3, 'results over the password-protected broker', 90_000);

  // Ask for the status payload (link, supervisor, worker) and a command that fails.
  ops.client.publish(`lvunet/${DEVICE}/cmd/status`, JSON.stringify({ id: 'st' }), { qos: 1 });
  ops.client.publish(`lvunet/${DEVICE}/cmd/reload-model`, JSON.stringify({ id: 'rl', url: `http://${USER}:${ENCODED}@127.0.0.1:1/bundle` }), { qos: 1 });
  const replied = (id: string) => (ms: Received[]): boolean => ms.some((m) => m.topic.endsWith('/reply') && json(m).id === id);
  await ops.until(replied('st'), 'status reply', 30_000);
  await ops.until(replied('rl'), 'reload-model reply', 60_000);
  const rl = json(ops.messages.find((m) => m.topic.endsWith('/reply') && json(m).id === 'rl')!);
  t.equal(rl.ok, false);
  t.match(String(rl.error), `http://${USER}:***@127.0.0.1:1/bundle`, 'the failing URL is named, without its password');

  p.child.kill('SIGTERM');
  t.equal(await p.exited, 0, p.stderr());
  const stderr = p.stderr();
  t.match(stderr, new RegExp(`mqtt mqtt://${USER}:\\*\\*\\*@127\\.0\\.0\\.1:${broker.port} as ${DEVICE}`), 'the broker is named with the password redacted');
  t.match(stderr, /mqtt: all \d+ result\(s\) delivered|not yet delivered/);
  t.same(leaks(stderr), [], 'stderr');
  t.same(leaks(p.stdout()), [], 'stdout');
  // What the device published: everything but the two commands this test sent.
  const published = ops.messages
    .filter((m) => !/\/cmd\/[^/]+$/.test(m.topic))
    .map((m) => `${m.topic} ${m.payload.toString('utf8')}`)
    .join('\n');
  t.ok(ops.messages.some((m) => m.topic === `lvunet/${DEVICE}/event`), 'events were published (and searched)');
  t.same(leaks(published), [], 'everything published');
});

// No broker needed: the URL is refused before any connection.
t.test('a config error echoing a URL with a password is redacted too', async (t) => {
  const dir = stateDir(t, 'redaction-config');
  const p = startRun(['--demo', '--max-frames', '1', '--mqtt', `http://${USER}:${ENCODED}@127.0.0.1:1`], { LVUNET_STATE_DIR: dir, LVUNET_MQTT_PASSWORD: PASSWORD });
  t.teardown(() => ensureStopped(p));
  t.equal(await p.exited, 1, p.stderr());
  t.match(p.stderr(), `mqtt.url: "http://${USER}:***@127.0.0.1:1" must use mqtt://`);
  t.same(leaks(p.stderr() + p.stdout()), []);
});
