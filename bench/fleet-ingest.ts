/**
 * Fleet ingest load: N simulated devices (FleetLink, in-memory queues) publish result-sized QoS 1
 * results at `hz` to one local mosquitto for `seconds`; `ingests` real `lvunet-edge fleet ingest`
 * processes share the subscription and write to one database (SQLite file or PostgreSQL). With
 * `killAtS`, ingest #1 is killed with SIGKILL at that second and restarted a second later (its
 * persistent session holds what arrives meanwhile). Afterwards the database is compared with
 * what was sent: lost (sent, no row), unexpected (row never sent) and rows/s; device→row latency
 * is the row's written_at (ingest clock, at commit) minus the result's scheduled publish time,
 * both on this machine's clock.
 *
 *   node dist/bench/fleet-ingest.js [--devices 200] [--hz 10] [--seconds 60] [--db sqlite|postgres URL] [--kill-at 20]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startBroker } from '../test/helpers/mosquitto.js';
import { openFleetDb } from '../src/fleet-ops/db/open.js';
import { FleetLink } from '../src/fleet/publisher.js';
import { MemoryStore } from '../src/fleet/queue/memory.js';
import { arg, IngestProcess, percentile, simulatedResult, sleep } from './fleet-sim.js';

export interface IngestBenchOptions {
  devices?: number;
  hz?: number;
  seconds?: number;
  /** `sqlite` (a temp file) or a postgres:// URL (an empty database). */
  db?: string;
  /** Ingest processes sharing the subscription; default 2. */
  ingests?: number;
  /** SIGKILL ingest #1 at this second of publishing, restart it 1 s later; default never. */
  killAtS?: number;
  /** Bytes of run-length mask per result; default 600. */
  rleBytes?: number;
  log?: (line: string) => void;
}

export interface IngestBenchResult {
  devices: number;
  hz: number;
  seconds: number;
  db: 'sqlite' | 'postgres';
  ingests: number;
  killed_at_s: number | null;
  sent: number;
  rows: number;
  lost: number;
  /** Rows for results never sent (or twice for one): must be 0; (device, seq) is the primary key. */
  unexpected: number;
  /** Redeliveries the ingests received and did not store again (from their final reports). */
  redelivered_ignored: number | null;
  /** Commits that failed and were retried (ingest log lines), e.g. a lock timeout or deadlock. */
  commit_retries: number;
  rows_per_s: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  /** From the end of publishing until the last row was in the database. */
  drain_ms: number;
  machine: { cpus: number; loadavg_1m: number };
}






export async function benchIngest(options: IngestBenchOptions = {}): Promise<IngestBenchResult> {
  const devices = options.devices ?? 200;
  const hz = options.hz ?? 10;
  const seconds = options.seconds ?? 60;
  const ingestCount = options.ingests ?? 2;
  const rleBytes = options.rleBytes ?? 600;
  const log = options.log ?? (() => {});
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'lvunet-ingest-bench-'));
  const dbSpec = options.db === undefined || options.db === 'sqlite' ? `sqlite:${path.join(tmp, 'fleet.db')}` : options.db;
  const broker = await startBroker({ persistence: false, extraConfig: ['max_queued_messages 0', 'max_inflight_messages 20', 'set_tcp_nodelay true'].join('\n') });
  const links: FleetLink[] = [];
  const ingests: IngestProcess[] = [];
  // Migrate once before the ingests start, so their start-up is not part of the measurement.
  const db = await openFleetDb(dbSpec);
  try {
    for (let i = 0; i < ingestCount; i++) {
      const p = new IngestProcess(['--mqtt', broker.url, '--db', dbSpec, '--client-id', `ingest-${i + 1}`], 'subscribed to', (line) => {
        if (line.includes('ingest: commit of')) log(`ingest bench: ingest-${i + 1}: ${line}`);
      });
      await p.start();
      ingests.push(p);
    }
    for (let d = 0; d < devices; d++) {
      const link = new FleetLink({
        url: broker.url,
        device: `sim-${String(d).padStart(4, '0')}`,
        queue: new MemoryStore(),
        reconnectMinMs: 500,
        versions: { 'lvunet-edge': 'bench' },
      });
      link.start();
      links.push(link);
    }
    await Promise.all(links.map((l) => l.waitFor('online', 60_000)));
    log(`ingest bench: ${devices} devices online, ${ingestCount} ingest process(es) → ${db.where}`);
    const sentAt = links.map(() => new Float64Array(Math.ceil(hz * seconds) + 16));
    let sent = 0;
    let refused = 0;
    const start = Date.now();
    const stopAt = start + seconds * 1000;
    const periodMs = 1000 / hz;
    const due = links.map((_, d) => start + (d / devices) * periodMs);
    const frames = links.map(() => 0);
    let killed: Promise<void> | undefined;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = Date.now();
        if (options.killAtS !== undefined && killed === undefined && now - start >= options.killAtS * 1000) {
          log(`ingest bench: SIGKILL ingest-1 at ${options.killAtS} s`);
          killed = ingests[0]
            .kill('SIGKILL')
            .then(() => sleep(1000))
            .then(() => ingests[0].start())
            .then(() => log('ingest bench: ingest-1 restarted'));
        }
        let active = false;
        for (let d = 0; d < links.length; d++) {
          while (due[d] <= now && due[d] < stopAt) {
            const seq = links[d].publishResult(simulatedResult(frames[d]++, rleBytes));
            if (seq === undefined) refused++;
            else {
              sentAt[d][seq] = due[d];
              sent++;
            }
            due[d] += periodMs;
          }
          if (due[d] < stopAt) active = true;
        }
        if (!active) {
          clearInterval(tick);
          resolve();
        }
      }, 2);
    });
    await killed;
    const publishEnd = Date.now();
    log(`ingest bench: published ${sent} results; waiting for the rows`);
    let rows = 0;
    const deadline = publishEnd + 120_000;
    while (Date.now() < deadline) {
      rows = (await db.resultCounts()).size === 0 ? 0 : [...(await db.resultCounts()).values()].reduce((s, c) => s + c.rows, 0);
      if (rows >= sent) break;
      await sleep(250);
    }
    const drainMs = Date.now() - publishEnd;
    for (const p of ingests) await p.kill('SIGTERM');
    const keys = await db.resultKeys();
    const seen = links.map(() => new Uint8Array(Math.ceil(hz * seconds) + 16));
    const latencies: number[] = [];
    let unexpected = 0;
    let lastWritten = 0;
    for (const k of keys) {
      const d = Number(k.device.slice('sim-'.length));
      const t0 = sentAt[d]?.[k.seq];
      if (t0 === undefined || t0 === 0 || seen[d][k.seq] === 1) {
        unexpected++;
        continue;
      }
      seen[d][k.seq] = 1;
      latencies.push(k.writtenAt - t0);
      if (k.writtenAt > lastWritten) lastWritten = k.writtenAt;
    }
    const sorted = Float64Array.from(latencies).sort();
    const redelivered = ingests.map((p) => p.redelivered());
    return {
      devices,
      hz,
      seconds,
      db: dbSpec.startsWith('sqlite:') ? 'sqlite' : 'postgres',
      ingests: ingestCount,
      killed_at_s: options.killAtS ?? null,
      sent,
      rows: keys.length,
      lost: sent - latencies.length + refused,
      unexpected,
      redelivered_ignored: redelivered.every((r) => r !== undefined) ? redelivered.reduce((s: number, r) => s + (r ?? 0), 0) : null,
      commit_retries: ingests.reduce((s, p) => s + p.retries(), 0),
      rows_per_s: Math.round((latencies.length / (Math.max(publishEnd, lastWritten) - start)) * 1000),
      latency_ms: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: percentile(sorted, 100) },
      drain_ms: drainMs,
      machine: { cpus: os.cpus().length, loadavg_1m: Math.round(os.loadavg()[0] * 100) / 100 },
    };
  } finally {
    await Promise.all(links.map((l) => l.close(0)));
    for (const p of ingests) await p.kill('SIGKILL');
    await db.close();
    await broker.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}


if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const num = (name: string): number | undefined => (arg(name) === undefined ? undefined : Number(arg(name)));
  const result = await benchIngest({ devices: num('devices'), hz: num('hz'), seconds: num('seconds'), db: arg('db'), killAtS: num('kill-at'), log: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  if (result.lost !== 0 || result.unexpected !== 0) process.exitCode = 1;
}
