// fleet ingest --nats in process, against the deploy/nats recipe on loopback (three nodes): it
// waits for nats-server's MQTT stream, stores what devices publish over MQTT 3.1.1 one row per
// (device, seq), skips commands and replies, and acknowledges only what it committed.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { connect } from 'nats';
import { FleetDb } from '../../src/fleet-ops/db/fleet-db.js';
import { openSqlite } from '../../src/fleet-ops/db/sqlite.js';
import { JetStreamIngest } from '../../src/fleet-ops/ingest/jetstream-ingest.js';
import { INGEST_DURABLE, MQTT_STREAM } from '../../src/fleet-ops/ingest/jetstream-stream.js';
import { IngestWriter } from '../../src/fleet-ops/ingest/writer.js';
import { FleetLink } from '../../src/fleet/publisher.js';
import { sampleBody } from '../fleet/fixtures.js';
import { findNatsServer, startNatsCluster } from '../helpers/nats-cluster.js';
import { sqliteSkipReason } from '../helpers/sqlite.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const sqliteMissing = sqliteSkipReason();
if (!findNatsServer()) {
  t.plan(0, 'nats-server is not installed (apt-get install nats-server)');
} else if (sqliteMissing !== undefined) {
  t.plan(0, sqliteMissing);
} else {
  t.test('results and events from MQTT devices become rows once, acknowledged after the commit', async (t) => {
    const devices = ['cart-101', 'cart-102'];
    const cluster = await startNatsCluster({ t, devices });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lvunet-js-ingest-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const db = await FleetDb.open(await openSqlite(path.join(dir, 'fleet.db')));
    t.teardown(() => db.close());
    const writer = new IngestWriter(db, { maxDelayMs: 10 });
    const lines: string[] = [];
    const ingest = new JetStreamIngest({ servers: cluster.nodes.map((n) => n.natsUrl), tls: cluster.tls('ingest-1'), writer, log: (l) => lines.push(l), ackWaitMs: 5_000 });
    // Started before any MQTT client: the server has not created its MQTT stream yet.
    const started = ingest.start();
    const waitDeadline = Date.now() + 20_000;
    while (!lines.some((l) => /does not exist yet.*retrying/.test(l)) && Date.now() < waitDeadline) await sleep(50);
    t.match(lines.join('\n'), /does not exist yet.*retrying/, 'the ingest says it waits for the stream');

    const urls = cluster.nodes.map((n) => n.mqttUrl);
    const links = devices.map(
      (device, i) =>
        new FleetLink({
          url: urls[i],
          failoverUrls: urls.filter((_, j) => j !== i),
          protocolVersion: 4,
          device,
          tls: cluster.tls(device),
          reconnectMinMs: 200,
          telemetry: { intervalMs: 200, source: () => ({ fps: 9.9, latency_ms: { p50: 20, p95: 25, p99: 31 }, drops: 0, provider: 'cpu', model: null }) },
        }),
    );
    for (const l of links) {
      l.start();
      t.teardown(() => l.close(0));
    }
    await Promise.all(links.map((l) => l.waitFor('online', 30_000)));
    await started;
    t.match(lines.join('\n'), /JetStream stream \$MQTT_msgs \(3 replicas\), durable consumer ingest/);

    for (let i = 0; i < 20; i++) for (const l of links) l.publishResult(sampleBody(i));
    links[0].publishEvent('fault', 'warning', 'test event', { kind: 'test' });
    // A command and its reply are QoS 1 under the prefix too: acknowledged, not stored.
    const tls = cluster.tls('operator');
    const operator = await mqtt.connectAsync(urls[2], { clientId: 'operator', protocolVersion: 4, ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
    t.teardown(() => operator.endAsync(true));
    await operator.subscribeAsync('lvunet/cart-102/cmd/status/reply', { qos: 1 });
    const replied = new Promise<void>((resolve) => operator.once('message', () => resolve()));
    await operator.publishAsync('lvunet/cart-102/cmd/status', JSON.stringify({ id: 'js-1' }), { qos: 1 });
    await replied;
    t.ok(await Promise.all(links.map((l) => l.drain(20_000))).then((ok) => ok.every(Boolean)), 'devices got every PUBACK');

    const deadline = Date.now() + 20_000;
    let counts = await db.resultCounts();
    while (Date.now() < deadline && [...counts.values()].reduce((s, c) => s + c.rows, 0) < 40) {
      await sleep(100);
      counts = await db.resultCounts();
    }
    t.same(
      [...counts.entries()].sort().map(([d, c]) => [d, c.rows, c.maxSeq]),
      [
        ['cart-101', 20, 19],
        ['cart-102', 20, 19],
      ],
    );
    while (Date.now() < deadline && (await db.events('cart-101')).length === 0) await sleep(100);
    t.match(await db.events('cart-101'), [{ type: 'fault', message: 'test event' }]);
    while (Date.now() < deadline && ingest.stats().skipped < 2) await sleep(100);
    t.equal(ingest.stats().skipped, 2, 'the command and its reply: acknowledged without a row');
    t.ok(ingest.stats().telemetry > 0, `telemetry (QoS 0) read live: ${ingest.stats().telemetry} message(s)`);

    await writer.flush();
    await ingest.close();
    // Everything received was acknowledged: nothing left pending on the shared consumer.
    const nc = await connect({ servers: cluster.nodes.map((n) => n.natsUrl), tls: { caFile: tls.ca, certFile: tls.cert, keyFile: tls.key } });
    t.teardown(() => nc.close());
    const info = await (await nc.jetstreamManager()).consumers.info(MQTT_STREAM, INGEST_DURABLE);
    t.equal(info.num_ack_pending, 0, 'no delivery left unacknowledged');
    t.equal(info.num_pending, 0, 'nothing left to deliver');
    t.equal(writer.stats().results, 40);
  });
}
