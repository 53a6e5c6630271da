/** `lvunet-edge fleet ...`: the operator's side of the fleet (src/fleet-ops/). */
import { parseArgs } from 'node:util';
import type { BrokerAccess } from '../fleet-ops/connection.js';
import type { FleetDb } from '../fleet-ops/db/fleet-db.js';
import { openFleetDb } from '../fleet-ops/db/open.js';
import { JetStreamIngest } from '../fleet-ops/ingest/jetstream-ingest.js';
import { MqttIngest } from '../fleet-ops/ingest/mqtt-ingest.js';
import { IngestWriter } from '../fleet-ops/ingest/writer.js';
import { abortRollout, createRollout, runRollout } from '../fleet-ops/rollout/runner.js';
import { parseShare, parseWaves } from '../fleet-ops/rollout/waves.js';
import { CommandClient, describeOutcome } from '../fleet-ops/send.js';
import { serveFleet } from '../fleet-ops/serve.js';
import { fleetStatus, statusTable } from '../fleet-ops/status.js';
import { isValidDeviceId } from '../fleet/topics.js';
import { UsageError } from './errors.js';
import { FLEET_GROUP_USAGE, FLEET_INGEST_USAGE, FLEET_ROLLOUT_USAGE, FLEET_SEND_USAGE, FLEET_SERVE_USAGE, FLEET_STATUS_USAGE } from './usage.js';

type Out = (text: string) => void;

const BROKER = {
  mqtt: { type: 'string' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'client-id': { type: 'string' },
  prefix: { type: 'string' },
  db: { type: 'string' },
} as const;

type BrokerValues = { mqtt?: string; ca?: string; cert?: string; key?: string; 'client-id'?: string };

function access(v: BrokerValues, defaultClientId: string, usage: string): BrokerAccess {
  if (!v.mqtt) throw new UsageError('--mqtt URL is required', usage);
  const tls = v.ca !== undefined || v.cert !== undefined || v.key !== undefined ? { ca: v.ca, cert: v.cert, key: v.key } : undefined;
  const password = process.env.LVUNET_MQTT_PASSWORD;
  return { url: v.mqtt, clientId: v['client-id'] ?? defaultClientId, tls, ...(password ? { password } : {}) };
}

async function withDb<T>(spec: string | undefined, usage: string, fn: (db: FleetDb) => Promise<T>): Promise<T> {
  if (!spec) throw new UsageError('--db sqlite:FILE or --db postgres://... is required', usage);
  const db = await openFleetDb(spec);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

function count(text: string | undefined, fallback: number, what: string, usage: string): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`${what} must be a whole number >= 1, got ${text}`, usage);
  return v;
}

export async function fleetIngest(argv: string[], log: Out): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...BROKER,
      nats: { type: 'string' },
      group: { type: 'string' },
      'batch-rows': { type: 'string' },
      'batch-ms': { type: 'string' },
      'receive-maximum': { type: 'string' },
      'session-expiry-s': { type: 'string' },
      'max-ack-pending': { type: 'string' },
      'ack-wait-s': { type: 'string' },
    },
    allowPositionals: true,
  });
  const usage = FLEET_INGEST_USAGE;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, usage);
  if (values.nats !== undefined && values.mqtt !== undefined) throw new UsageError('give --mqtt URL or --nats URL[,URL...], not both', usage);
  const servers = values.nats?.split(',').filter((u) => u !== '');
  if (servers !== undefined && servers.length === 0) throw new UsageError('--nats needs at least one URL, e.g. tls://nats-1.fleet.lan:4222', usage);
  const broker = servers === undefined ? access(values, 'lvunet-ingest', usage) : undefined;
  await withDb(values.db, usage, async (db) => {
    const writer = new IngestWriter(db, {
      maxRows: count(values['batch-rows'], 500, '--batch-rows', usage),
      maxDelayMs: count(values['batch-ms'], 25, '--batch-ms', usage),
      onRetry: (err, ms, rows) => log(`ingest: commit of ${rows} row(s) to ${db.where} failed (${err.message}); retrying in ${ms} ms, deliveries stay unacknowledged`),
    });
    let ingest: JetStreamIngest | MqttIngest;
    if (servers !== undefined) {
      const tls = values.ca !== undefined || values.cert !== undefined || values.key !== undefined ? { ca: values.ca, cert: values.cert, key: values.key } : undefined;
      ingest = new JetStreamIngest({
        servers,
        tls,
        name: values['client-id'] ?? 'lvunet-ingest',
        writer,
        prefix: values.prefix,
        maxAckPending: count(values['max-ack-pending'], 2000, '--max-ack-pending', usage),
        ackWaitMs: count(values['ack-wait-s'], 30, '--ack-wait-s', usage) * 1000,
        log,
      });
      await ingest.start();
      log(`ingest: NATS ${servers.join(',')} → ${db.where}`);
    } else if (broker !== undefined) {
      const mqttIngest = new MqttIngest({
        ...broker,
        writer,
        group: values.group,
        prefix: values.prefix,
        receiveMaximum: count(values['receive-maximum'], 1000, '--receive-maximum', usage),
        sessionExpiryS: count(values['session-expiry-s'], 604_800, '--session-expiry-s', usage),
        log,
      });
      ingest = mqttIngest;
      await mqttIngest.start();
      log(`ingest: ${broker.url} as ${broker.clientId} → ${db.where}; subscribed to ${mqttIngest.filters().join(', ')}`);
    } else {
      throw new UsageError('--mqtt URL or --nats URL[,URL...] is required', usage);
    }
    const source = ingest;
    const report = (): void => {
      const w = writer.stats();
      log(`ingest: ${w.results} result(s) stored, ${w.duplicates} redelivered duplicate(s) ignored, ${w.events} event(s), ${w.rejected} rejected, ${source.stats().unacked} awaiting commit`);
    };
    const timer = setInterval(report, 10_000);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    clearInterval(timer);
    log('ingest: stopping: committing and acknowledging what arrived (at most 10 s if the database keeps failing)');
    // Together, not flush-then-close: a flush retries a failing database forever, while close gives
    // up after its timeout; what it gives up on was never acknowledged, so the broker keeps it, and
    // deliveries arriving meanwhile are refused by the closed writer and stay unacknowledged too.
    await Promise.all([writer.close(10_000), source.close()]);
    report();
  });
}

export async function fleetStatusCommand(argv: string[], print: Out): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: { db: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, FLEET_STATUS_USAGE);
  await withDb(values.db, FLEET_STATUS_USAGE, async (db) => {
    const rows = await fleetStatus(db);
    if (values.json) print(JSON.stringify({ devices: rows, rollouts: await db.rollouts() }, null, 2));
    else print(rows.length === 0 ? `no devices in ${db.where} yet (is 'fleet ingest' running?)` : statusTable(rows));
  });
}

export async function fleetSend(argv: string[], print: Out): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...BROKER, device: { type: 'string', multiple: true }, group: { type: 'string' }, args: { type: 'string' }, 'timeout-s': { type: 'string' }, json: { type: 'boolean' } },
    allowPositionals: true,
  });
  const usage = FLEET_SEND_USAGE;
  if (positionals.length !== 1) throw new UsageError('give one COMMAND', usage);
  if ((values.device === undefined) === (values.group === undefined)) throw new UsageError('give --device ID (repeatable) or --group NAME', usage);
  let args: Record<string, unknown> = {};
  if (values.args !== undefined) {
    try {
      args = JSON.parse(values.args) as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`--args is not JSON: ${(err as Error).message}`, usage);
    }
  }
  const timeoutMs = count(values['timeout-s'], 30, '--timeout-s', usage) * 1000;
  const broker = access(values, 'operator', usage);
  let failures = 0;
  await withDb(values.db, usage, async (db) => {
    const devices = values.group !== undefined ? await db.groupMembers(values.group) : (values.device ?? []);
    if (devices.length === 0) throw new Error(`group ${JSON.stringify(values.group)} has no devices in ${db.where}`);
    for (const d of devices) if (!isValidDeviceId(d)) throw new UsageError(`invalid device id ${JSON.stringify(d)}`, usage);
    const client = await CommandClient.connect(broker, { prefix: values.prefix, db });
    try {
      const outcomes = await Promise.all(devices.map((d) => client.send(d, positionals[0], args, timeoutMs)));
      failures = outcomes.filter((o) => o.reply?.ok !== true).length;
      print(values.json ? JSON.stringify(outcomes, null, 2) : outcomes.map(describeOutcome).join('\n'));
    } finally {
      await client.close();
    }
  });
  if (failures > 0) throw new Error(`${failures} device(s) failed, refused or did not answer`);
}

export async function fleetGroup(argv: string[], print: Out): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: { db: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true });
  const usage = FLEET_GROUP_USAGE;
  const [action, name, ...devices] = positionals;
  await withDb(values.db, usage, async (db) => {
    if (action === 'list') {
      const groups = await db.groups();
      print(values.json ? JSON.stringify(Object.fromEntries(groups), null, 2) : [...groups].map(([g, m]) => `${g}: ${m.join(' ')}`).join('\n') || 'no groups');
      return;
    }
    if ((action !== 'add' && action !== 'remove') || name === undefined || devices.length === 0) throw new UsageError('give add|remove NAME DEVICE... or list', usage);
    for (const d of devices) if (!isValidDeviceId(d)) throw new UsageError(`invalid device id ${JSON.stringify(d)}`, usage);
    const n = action === 'add' ? await db.addToGroup(name, devices) : await db.removeFromGroup(name, devices);
    print(`${name}: ${action === 'add' ? 'added' : 'removed'} ${n} device(s); members: ${(await db.groupMembers(name)).join(' ') || '(none)'}`);
  });
}

export async function fleetRollout(argv: string[], log: Out, print: Out): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...BROKER,
      group: { type: 'string' },
      waves: { type: 'string' },
      'max-failures': { type: 'string' },
      'timeout-s': { type: 'string' },
      sha256: { type: 'string' },
      precision: { type: 'string' },
      resume: { type: 'string' },
      abort: { type: 'string' },
      list: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    allowPositionals: true,
  });
  const usage = FLEET_ROLLOUT_USAGE;
  await withDb(values.db, usage, async (db) => {
    if (values.list) {
      const all = await db.rollouts();
      print(values.json ? JSON.stringify(all, null, 2) : all.map((r) => `${r.id}  ${r.state}  group ${r.group}  wave ${r.wave + 1}/${r.waves.length}  ${r.bundle}${r.reason ? `  (${r.reason})` : ''}`).join('\n') || 'no rollouts');
      return;
    }
    if (values.abort !== undefined) {
      const r = await abortRollout(db, values.abort);
      print(`rollout ${r.id}: aborted at wave ${r.wave + 1}/${r.waves.length}`);
      return;
    }
    let id = values.resume;
    if (id === undefined) {
      if (positionals.length !== 1) throw new UsageError('give one BUNDLE (URL or device path), or --resume/--abort ID', usage);
      if (!values.group) throw new UsageError('--group NAME is required', usage);
      const precision = values.precision;
      if (precision !== undefined && precision !== 'fp32' && precision !== 'fp16' && precision !== 'int8') throw new UsageError(`--precision must be fp32, fp16 or int8`, usage);
      id = await createRollout(db, {
        bundle: positionals[0],
        group: values.group,
        waves: parseWaves(values.waves ?? '1,10,50,100'),
        maxFailures: parseShare(values['max-failures'] ?? '0', '--max-failures'),
        replyTimeoutMs: count(values['timeout-s'], 2760, '--timeout-s', usage) * 1000,
        sha256: values.sha256,
        precision,
      });
      log(`rollout ${id}: created for group ${values.group}`);
    }
    const client = await CommandClient.connect(access(values, 'operator', usage), { prefix: values.prefix, db });
    try {
      const r = await runRollout(db, client, id, log);
      print(`rollout ${r.id}: ${r.state}${r.reason ? `: ${r.reason}` : ''}`);
      if (r.state === 'halted') throw new Error(`rollout ${r.id} halted; see 'fleet status', then --resume ${r.id} or --abort ${r.id}`);
    } finally {
      await client.close();
    }
  });
}

export async function fleetServe(argv: string[], log: Out): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: { db: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' } }, allowPositionals: true });
  const usage = FLEET_SERVE_USAGE;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, usage);
  const port = values.port === undefined ? 8090 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got ${values.port}`, usage);
  await withDb(values.db, usage, async (db) => {
    const server = await serveFleet(db, { host: values.host, port, log });
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
}
