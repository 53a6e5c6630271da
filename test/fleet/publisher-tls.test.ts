// FleetLink over mutual TLS against mosquitto with the shipped ACL (deploy/mosquitto/acl): the
// certificate CN is the device id, and what the ACL refuses is counted, not retried forever.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDeployTlsBroker } from '../helpers/mosquitto.js';
import { FleetLink } from '../../src/fleet/publisher.js';
import { sampleBody } from './fixtures.js';
import { json, recorder } from './mqtt-helpers.js';

const tmp = await mkdtemp(path.join(os.tmpdir(), 'lvunet-fleet-tls-'));
t.teardown(() => rm(tmp, { recursive: true, force: true }));
const { broker, pki: files } = await startDeployTlsBroker(t, tmp, ['cart-a']);

t.test('a device connects with its certificate and publishes birth and results', async (t) => {
  const ops = await recorder(broker.url, ['lvunet/#'], { ...readFiles(files('operator')), protocolVersion: 5 });
  t.teardown(() => ops.close());
  const link = new FleetLink({ url: broker.url, device: 'cart-a', tls: files('cart-a'), reconnectMinMs: 200 });
  t.teardown(() => link.close(0));
  link.start();
  await link.waitFor('online', 10_000);
  t.equal(link.publishResult(sampleBody(0)), 0);
  t.ok(await link.drain(10_000));
  await ops.until((m) => m.some((x) => x.topic === 'lvunet/cart-a/result'), 'the result');
  t.equal(json(ops.messages.find((x) => x.topic === 'lvunet/cart-a/status')!).state, 'online');
  t.equal(link.stats().rejected, 0);
});

t.test("a device configured with another device's id is stopped at start, naming both (finding 2)", async (t) => {
  const link = new FleetLink({ url: broker.url, device: 'cart-b', tls: files('cart-a'), reconnectMinMs: 200 });
  t.teardown(() => link.close(0));
  t.throws(() => link.start(), /device id "cart-b" does not match the client certificate .*cart-a\.crt \(CN "cart-a"\)/);
  t.equal(link.state, 'idle', 'never connected, so nothing was queued to be refused');
});

t.test('a client without a certificate never gets online', async (t) => {
  const link = new FleetLink({ url: broker.url, device: 'cart-a', tls: { ca: files('cart-a').ca }, reconnectMinMs: 200, connectTimeoutMs: 2_000 });
  t.teardown(() => link.close(0));
  link.start();
  await t.rejects(link.waitFor('online', 2_000), /not online/);
  t.ok(['connecting', 'offline'].includes(link.state), link.state);
});

function readFiles(f: { ca: string; cert: string; key: string }): { ca: Buffer; cert: Buffer; key: Buffer } {
  return {
    ca: readFileSync(f.ca),
    cert: readFileSync(f.cert),
    key: readFileSync(f.key),
  };
}
