/**
 * Back-pressure: with the database stalled, the ingest holds at most `receiveMaximum` deliveries
 * (the broker keeps the rest, none acknowledged); once the database moves again every result is
 * stored exactly once, in batches never larger than that window (mosquitto 2.0.11 overshoots the
 * window after the first PUBACKs; the ingest's own high-water mark keeps it). Real mosquitto, real
 * FleetLink device, SQLite behind a gate.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { FleetDb } from '../../src/fleet-ops/db/fleet-db.js';
import { openSqlite } from '../../src/fleet-ops/db/sqlite.js';
import { MqttIngest } from '../../src/fleet-ops/ingest/mqtt-ingest.js';
import type { IngestRecord } from '../../src/fleet-ops/ingest/records.js';
import { IngestWriter, type RowSink } from '../../src/fleet-ops/ingest/writer.js';
import { FleetLink } from '../../src/fleet/publisher.js';
import { MemoryStore } from '../../src/fleet/queue/memory.js';
import { RESULT_SCHEMA } from '../../src/fleet/schemas.js';
import { findMosquitto, startBroker } from '../helpers/mosquitto.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('a stalled database holds deliveries at the broker, not in memory', { skip: findMosquitto() ? undefined : 'mosquitto not installed' }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lvunet-backpressure-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const broker = await startBroker({ t, persistence: false, extraConfig: 'max_queued_messages 200000' });
  const db = await FleetDb.open(openSqlite(path.join(dir, 'fleet.db')));
  t.teardown(() => db.close());
  let open: () => void = () => {};
  const gate = new Promise<void>((r) => (open = r));
  let maxBatch = 0;
  const sizes: number[] = [];
  const stalled: RowSink = {
    async writeBatch(records: readonly IngestRecord[]) {
      maxBatch = Math.max(maxBatch, records.length);
      sizes.push(records.length);
      await gate;
      return db.writeBatch(records);
    },
  };
  const writer = new IngestWriter(stalled, { maxRows: 500, maxDelayMs: 5 });
  const window = 20;
  const ingest = new MqttIngest({ url: broker.url, clientId: 'ingest-bp', writer, receiveMaximum: window });
  await ingest.start();
  t.teardown(() => ingest.close());

  const device = new FleetLink({ url: broker.url, device: 'cart-bp', queue: new MemoryStore() });
  device.start();
  t.teardown(() => device.close(0));
  await device.waitFor('online', 10_000);
  const n = 300;
  for (let i = 0; i < n; i++) {
    device.publishResult({
      schema: RESULT_SCHEMA,
      frame: { id: `f${i}`, seq: i, width: 64, height: 48, format: 'RGB24' },
      model: { sha256: 'e'.repeat(64), precision: 'fp32' },
      provider: 'CPUExecutionProvider',
      captureTime: new Date().toISOString(),
      completionTime: new Date().toISOString(),
      latencyMs: { capture: 1, preprocess: 1, queue: 0, inference: 5, postprocess: 1, total: 8 },
      coverage: 0,
      components: [],
      droppedComponents: 0,
    });
  }
  // The device gets its PUBACKs from the broker; the broker stops at the ingest's window.
  const deadline = Date.now() + 10_000;
  while (device.stats().acked < n && Date.now() < deadline) await sleep(50);
  t.equal(device.stats().acked, n, 'the broker took all results from the device');
  await sleep(500);
  const held = ingest.stats();
  t.ok(held.received <= window, `the ingest received at most its window while the database is stalled (${held.received} <= ${window})`);
  t.ok(writer.stats().pending <= window, `records in memory bounded by the window (${writer.stats().pending})`);
  t.equal(held.acked, 0, 'nothing acknowledged before its commit');

  open();
  const done = Date.now() + 20_000;
  while ((await db.resultCounts()).get('cart-bp')?.rows !== n && Date.now() < done) await sleep(50);
  t.equal((await db.resultCounts()).get('cart-bp')?.rows, n, 'every result stored once the database moves');
  t.ok(maxBatch <= window, `no batch larger than the window (${sizes.join(',')})`);
  while (ingest.stats().unacked > 0 && Date.now() < done) await sleep(20);
  t.equal(ingest.stats().unacked, 0, 'and acknowledged');
});
