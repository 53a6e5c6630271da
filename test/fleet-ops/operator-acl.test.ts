/**
 * The operator tools against the shipped broker security (deploy/mosquitto: mutual TLS, CN as
 * username and client id, the shipped ACL): the ingest identity reads every device through its
 * shared subscription but cannot command; the operator commands a device and gets its reply; a
 * device can neither command another device nor read another device's results.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { FleetDb } from '../../src/fleet-ops/db/fleet-db.js';
import { openSqlite } from '../../src/fleet-ops/db/sqlite.js';
import { MqttIngest } from '../../src/fleet-ops/ingest/mqtt-ingest.js';
import { IngestWriter } from '../../src/fleet-ops/ingest/writer.js';
import { CommandClient } from '../../src/fleet-ops/send.js';
import { FleetLink } from '../../src/fleet/publisher.js';
import { MemoryStore } from '../../src/fleet/queue/memory.js';
import { RESULT_SCHEMA, type ResultBody } from '../../src/fleet/schemas.js';
import { findMosquitto, startDeployTlsBroker } from '../helpers/mosquitto.js';

const body: ResultBody = {
  schema: RESULT_SCHEMA,
  frame: { id: 'f', seq: 0, width: 64, height: 48, format: 'RGB24' },
  model: { sha256: 'c'.repeat(64), precision: 'fp32' },
  provider: 'CPUExecutionProvider',
  captureTime: new Date().toISOString(),
  completionTime: new Date().toISOString(),
  latencyMs: { capture: 1, preprocess: 1, queue: 0, inference: 6, postprocess: 2, total: 10 },
  coverage: 0.1,
  components: [],
  droppedComponents: 0,
};

t.test('operator, ingest and device identities on the deploy broker', { skip: findMosquitto() ? undefined : 'mosquitto not installed' }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lvunet-operator-acl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { broker, pki } = await startDeployTlsBroker(t, dir, ['cart-a', 'cart-b']);
  const url = `mqtts://localhost:${broker.port}`;
  const device = (id: string): FleetLink => {
    const l = new FleetLink({ url, device: id, tls: pki(id), queue: new MemoryStore(), reconnectMinMs: 200 });
    l.onCommand('set-threshold', ({ value }) => ({ threshold: value }));
    l.start();
    t.teardown(() => l.close(0));
    return l;
  };
  const a = device('cart-a');
  const b = device('cart-b');
  await Promise.all([a.waitFor('online', 20_000), b.waitFor('online', 20_000)]);

  // The ingest identity: shared subscriptions granted, every device's results stored.
  const ingestDb = await FleetDb.open(openSqlite(path.join(dir, 'ingest.db')));
  t.teardown(() => ingestDb.close());
  const ingest = new MqttIngest({ url, clientId: 'ingest-1', tls: pki('ingest-1'), writer: new IngestWriter(ingestDb, { maxDelayMs: 5 }) });
  await ingest.start();
  t.teardown(() => ingest.close());
  // A device running the same ingest code: mosquitto grants the SUBSCRIBE but its read rules let
  // only the device's own commands through, so nothing of another device arrives.
  const snoopDb = await FleetDb.open(openSqlite(path.join(dir, 'snoop.db')));
  t.teardown(() => snoopDb.close());
  const snoop = new MqttIngest({ url, clientId: 'cart-a', group: 'snoop', tls: pki('cart-a'), writer: new IngestWriter(snoopDb, { maxDelayMs: 5 }) });

  for (let i = 0; i < 5; i++) {
    a.publishResult({ ...body, frame: { ...body.frame, seq: i } });
    b.publishResult({ ...body, frame: { ...body.frame, seq: i } });
  }
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && [...(await ingestDb.resultCounts()).values()].reduce((s, c) => s + c.rows, 0) < 10) await new Promise((r) => setTimeout(r, 100));
  const counts = await ingestDb.resultCounts();
  t.equal(counts.get('cart-a')?.rows, 5, 'ingest-1 stored cart-a results');
  t.equal(counts.get('cart-b')?.rows, 5, 'ingest-1 stored cart-b results');
  t.same(
    (await ingestDb.devices()).map((d) => [d.device, d.state]),
    [
      ['cart-a', 'online'],
      ['cart-b', 'online'],
    ],
    'and their birth messages',
  );

  // The ingest identity cannot command.
  const ingestAsOperator = await CommandClient.connect({ url, clientId: 'ingest-1-cmd', tls: pki('ingest-2') });
  t.teardown(() => ingestAsOperator.close());
  const refused = await ingestAsOperator.send('cart-b', 'set-threshold', { value: 0.3 }, 2_000);
  t.match(refused.error, /the broker refused set-threshold to cart-b: .*[Nn]ot authori[sz]ed/, 'ingest-2 cannot command a device');

  // The operator commands a device and reads its reply.
  const op = await CommandClient.connect({ url, clientId: 'operator', tls: pki('operator') });
  t.teardown(() => op.close());
  const ok = await op.send('cart-b', 'set-threshold', { value: 0.7 }, 10_000);
  t.same(ok.reply?.result, { threshold: 0.7 }, 'operator: reply from cart-b');

  // A device cannot command another device, nor read another device's results.
  const asDevice = await CommandClient.connect({ url, clientId: 'cart-a', tls: pki('cart-a') });
  t.teardown(() => asDevice.close());
  const forged = await asDevice.send('cart-b', 'set-threshold', { value: 0.1 }, 2_000);
  t.match(forged.error, /refused .*[Nn]ot authori[sz]ed/, 'cart-a cannot command cart-b');
  await asDevice.close();
  await a.close(0);
  await snoop.start();
  b.publishResult({ ...body, frame: { ...body.frame, seq: 99 } });
  await new Promise((r) => setTimeout(r, 1500));
  t.equal((await snoopDb.resultCounts()).size, 0, "cart-a's subscriptions yield none of cart-b's results");
  await snoop.close();
});
