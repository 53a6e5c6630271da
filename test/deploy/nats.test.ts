// deploy/nats/ without a server: the consumer definition operators read is the one the ingest
// creates, make-accounts.sh confines each device to its own subjects and refuses ids the broker
// cannot carry, and the harness's rewrite of nats-server.conf touches only addresses and paths.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ingestConsumerConfig, MQTT_STREAM } from '../../src/fleet-ops/ingest/jetstream-stream.js';
import { nodeConfig } from '../helpers/nats-cluster.js';
import { REPO_ROOT } from '../helpers/paths.js';

const run = promisify(execFile);
const DEPLOY = path.join(REPO_ROOT, 'deploy', 'nats');

t.test('deploy/nats/ingest-consumer.json is the consumer fleet ingest --nats creates (defaults)', async (t) => {
  const shipped: unknown = JSON.parse(await readFile(path.join(DEPLOY, 'ingest-consumer.json'), 'utf8'));
  t.same(shipped, { stream: MQTT_STREAM, ...ingestConsumerConfig('lvunet', 2000, 30_000) });
  // A prefix of several MQTT levels filters on the server's '.'-separated subjects.
  t.equal(ingestConsumerConfig('site-a/lvunet', 2000, 30_000).filter_subject, '$MQTT.msgs.site-a.lvunet.>');
});

t.test('make-accounts.sh: one user per device certificate, its own subjects only', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lvunet-nats-accounts-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'accounts.conf');
  await run(path.join(DEPLOY, 'make-accounts.sh'), [out, '--ingest', 'ingest-1', 'cart-001', 'cart-002']);
  const text = await readFile(out, 'utf8');
  const user = (cn: string): string => {
    const start = text.indexOf(`{ user: "CN=${cn}"`);
    t.not(start, -1, `user CN=${cn}`);
    return text.slice(start, text.indexOf('} } }', start));
  };
  const cart = user('cart-001');
  t.match(cart, /publish: \{ allow: \["lvunet\.cart-001\.status", "lvunet\.cart-001\.result", "lvunet\.cart-001\.telemetry", "lvunet\.cart-001\.event", "lvunet\.cart-001\.cmd\.\*\.reply"\] \}/);
  t.match(cart, /subscribe: \{ allow: \["lvunet\.cart-001\.cmd\.\*", "\$MQTT\.sub\.>"\]/);
  t.notMatch(cart, /cart-002/);
  t.match(user('ingest-1'), /\$JS\.API\.CONSUMER\.MSG\.NEXT\.\$MQTT_msgs\.ingest/);
  t.match(user('ingest-1'), /subscribe: \{ allow: \["_INBOX\.>", "lvunet\.\*\.telemetry"\]/, 'telemetry (QoS 0) is read live');
  t.notMatch(user('ingest-1'), /lvunet\.\*\.(result|event|status|cmd)/, 'everything else only from the stream');
  t.match(user('operator'), /"lvunet\.\*\.cmd\.\*"/);
  t.match(text, /system_account: SYS/);
});

t.test('make-accounts.sh refuses ids the broker cannot carry or that are reserved', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lvunet-nats-accounts-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [id, why] of [
    ['cart.001', /no '\.'/],
    ['cart/1', /invalid id/],
    ['operator', /reserved/],
    ['ingest-2', /ingest identity/],
  ] as const) {
    const err = await run(path.join(DEPLOY, 'make-accounts.sh'), [path.join(dir, 'a.conf'), id]).then(
      () => undefined,
      (e: unknown) => e as { code: number; stderr: string },
    );
    t.equal(err?.code, 2, `${id} refused`);
    t.match(err?.stderr ?? '', why, `${id}: says why`);
  }
});

t.test('the harness rewrites only addresses, ports, routes, the store and the PKI paths', async (t) => {
  const shipped = await readFile(path.join(DEPLOY, 'nats-server.conf'), 'utf8');
  const node = { clientPort: 1001, mqttPort: 1002, clusterPort: 1003, monitorPort: 1004, storeDir: '/tmp/x/nats-1' };
  const text = nodeConfig(shipped, node, [1003, 2003, 3003], '/tmp/x/pki');
  t.match(text, /^listen: 127\.0\.0\.1:1001$/m);
  t.match(text, /^\s+listen: 127\.0\.0\.1:1002$/m);
  t.match(text, /^\s+listen: 127\.0\.0\.1:1003$/m);
  t.match(text, /nats-route:\/\/127\.0\.0\.1:2003/);
  t.notMatch(text, /\/etc\/nats\/lvunet\//);
  const strip = (s: string): string[] =>
    s
      .split('\n')
      .filter((l) => !/listen:|http:|store_dir:|nats-route:|_file:/.test(l))
      .map((l) => l.trim());
  t.same(strip(text), strip(shipped), 'every other line as shipped (TLS, verify_and_map, replicas, limits)');
  t.throws(() => nodeConfig(shipped, node, [1, 2, 3], '/p', { no_such_key: '1' }), /no "no_such_key:" line/);
});
