/**
 * Fleet on a three-node NATS cluster, with failures: N simulated devices (FleetLink, MQTT 3.1.1,
 * mutual TLS, in-memory offline queues, spread over the three nodes' MQTT listeners with the other
 * two as failover) publish result-sized QoS 1 results at `hz` for `seconds`; two real
 * `lvunet-edge fleet ingest --nats` processes pull the replicated JetStream stream into one SQLite
 * file. At `killNodeAtS` the node leading nats-server's MQTT message stream ($MQTT_msgs) is killed with SIGKILL and started
 * again `nodeDownS` later; at `killIngestAtS` ingest-1 is killed with SIGKILL and started again a
 * second later. Afterwards the database is compared with what the devices queued: lost (queued,
 * no row), unexpected (a row never queued, or a second row for one), rows/s, device→row latency
 * (row written_at at commit minus the result's scheduled publish time, one machine's clock) and
 * the gaps the two failures cause.
 *
 * Everything (three servers, 200 device connections in one process, two ingests, SQLite) shares
 * this machine's cores: the figures are an upper bound for latency, a lower bound for throughput.
 *
 *   node dist/bench/fleet-cluster.js [--devices 200] [--hz 10] [--seconds 60] [--kill-node-at 20] [--kill-ingest-at 40]
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { connect, type NatsConnection } from 'nats';
import { startNatsCluster, type NatsCluster } from '../test/helpers/nats-cluster.js';
import { openFleetDb } from '../src/fleet-ops/db/open.js';
import { MQTT_STREAM } from '../src/fleet-ops/ingest/jetstream-stream.js';
import { FleetLink } from '../src/fleet/publisher.js';
import { MemoryStore } from '../src/fleet/queue/memory.js';
import { arg, IngestProcess, percentile, simulatedResult, sleep } from './fleet-sim.js';

export interface ClusterBenchOptions {
  devices?: number;
  hz?: number;
  seconds?: number;
  /** SIGKILL the stream's leader node at this second of publishing; default 20; null: never. */
  killNodeAtS?: number | null;
  /** How long the killed node stays down; default 10 s. */
  nodeDownS?: number;
  /** SIGKILL ingest-1 at this second, restart it 1 s later; default 40; null: never. */
  killIngestAtS?: number | null;
  /** The shared consumer's ack_wait: how long a dead ingest's deliveries wait; default 5 s. */
  ackWaitS?: number;
  rleBytes?: number;
  log?: (line: string) => void;
}

export interface ClusterBenchResult {
  devices: number;
  hz: number;
  seconds: number;
  ingests: number;
  sent: number;
  rows: number;
  /** Results the devices queued that have no row: must be 0. */
  lost: number;
  /** Where lost results came from: `node<N>@<second of publishing>` → count. */
  lost_by_home_node_and_second: Record<string, number>;
  /** Rows for results never queued, or a second row for one: must be 0 ((device, seq) is the key). */
  unexpected: number;
  /** Redeliveries the ingests got and did not store again (from their final reports). */
  redelivered_ignored: number | null;
  rows_per_s: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  /** Every device's queue empty and nothing in flight, this long after publishing stopped. */
  queues_drained_ms: number;
  queues_drained: boolean;
  drain_ms: number;
  node_failure: null | {
    node: string;
    was_stream_leader: boolean;
    at_s: number;
    down_s: number;
    /** Devices that were connected to it and reconnected to another node. */
    devices_moved: number;
    /** From the SIGKILL until every moved device was online again. */
    devices_back_ms: number;
    /** Longest interval without any row committed, from the kill to 10 s after the restart. */
    commit_gap_ms: number;
    /** Device→row latency of the results scheduled within 5 s after the kill. */
    latency_after_kill_ms: { p99: number; max: number };
  };
  ingest_failure: null | {
    at_s: number;
    /** Longest interval without any row committed, from the kill to ack_wait + 5 s after it. */
    commit_gap_ms: number;
    latency_after_kill_ms: { p99: number; max: number };
    ack_wait_s: number;
  };
  server: string;
  machine: { cpus: number; loadavg_1m: number };
}





/** Longest interval within [from, to] without a commit (the window's ends count as bounds). */
function longestGap(sortedWrittenAt: Float64Array, from: number, to: number): number {
  let prev = from;
  let gap = 0;
  for (const t of sortedWrittenAt) {
    if (t < from) continue;
    if (t > to) break;
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return Math.round(Math.max(gap, to - prev));
}

async function streamLeader(nc: NatsConnection): Promise<string | undefined> {
  const jsm = await nc.jetstreamManager();
  return (await jsm.streams.info(MQTT_STREAM)).cluster?.leader;
}

export async function benchCluster(options: ClusterBenchOptions = {}): Promise<ClusterBenchResult> {
  const devices = options.devices ?? 200;
  const hz = options.hz ?? 10;
  const seconds = options.seconds ?? 60;
  const killNodeAtS = options.killNodeAtS === undefined ? 20 : options.killNodeAtS;
  const nodeDownS = options.nodeDownS ?? 10;
  const killIngestAtS = options.killIngestAtS === undefined ? 40 : options.killIngestAtS;
  const ackWaitS = options.ackWaitS ?? 5;
  const rleBytes = options.rleBytes ?? 600;
  const log = options.log ?? (() => {});
  const ids = Array.from({ length: devices }, (_, d) => `sim-${String(d).padStart(4, '0')}`);
  log(`cluster bench: issuing ${devices} device certificates, starting three nats-server nodes`);
  const cluster: NatsCluster = await startNatsCluster({ devices: ids, ingest: ['ingest-1', 'ingest-2'] });
  const dbSpec = `sqlite:${path.join(cluster.dir, 'fleet.db')}`;
  const links: FleetLink[] = [];
  const ingests: IngestProcess[] = [];
  const db = await openFleetDb(dbSpec);
  const watcherTls = cluster.tls('operator');
  let nc: NatsConnection | undefined;
  try {
    const servers = cluster.nodes.map((n) => n.natsUrl);
    nc = await connect({ servers, tls: { caFile: watcherTls.ca, certFile: watcherTls.cert, keyFile: watcherTls.key }, maxReconnectAttempts: -1 });
    const home = ids.map((_, d) => d % 3);
    for (let d = 0; d < devices; d++) {
      const urls = cluster.nodes.map((n) => n.mqttUrl);
      const own = urls[home[d]];
      const link = new FleetLink({
        url: own,
        failoverUrls: urls.filter((u) => u !== own),
        protocolVersion: 4,
        device: ids[d],
        tls: cluster.tls(ids[d]),
        queue: new MemoryStore(),
        reconnectMinMs: 500,
        reconnectMaxMs: 2000,
        versions: { 'lvunet-edge': 'bench' },
      });
      link.on('fault', () => {});
      link.start();
      links.push(link);
    }
    await Promise.all(links.map((l) => l.waitFor('online', 120_000)));
    // After the devices: nats-server creates its MQTT stream, which the ingests' consumer reads,
    // on the first MQTT connection.
    for (const name of ['ingest-1', 'ingest-2']) {
      const tls = cluster.tls(name);
      const p = new IngestProcess(['--nats', servers.join(','), '--db', dbSpec, '--ca', tls.ca, '--cert', tls.cert, '--key', tls.key, '--client-id', name, '--ack-wait-s', String(ackWaitS)], 'ingest: NATS');
      await p.start();
      ingests.push(p);
    }
    log(`cluster bench: ${devices} devices online (MQTT 3.1.1 over TLS, a third on each node), 2 ingest processes → ${db.where}`);

    const sentAt = links.map(() => new Float64Array(Math.ceil(hz * seconds) + 16));
    let sent = 0;
    let refused = 0;
    const start = Date.now();
    const stopAt = start + seconds * 1000;
    const periodMs = 1000 / hz;
    const due = links.map((_, d) => start + (d / devices) * periodMs);
    const frames = links.map(() => 0);
    let nodeFailure: Promise<{ node: string; leader: boolean; killedAt: number; restartedAt: number; moved: number; backMs: number }> | undefined;
    let ingestFailure: Promise<number> | undefined;
    const failNode = async (): Promise<{ node: string; leader: boolean; killedAt: number; restartedAt: number; moved: number; backMs: number }> => {
      const leader = nc ? await streamLeader(nc).catch(() => undefined) : undefined;
      const victim = cluster.nodes.find((n) => n.name === leader) ?? cluster.nodes[0];
      const index = cluster.nodes.indexOf(victim);
      const moved = links.filter((_, d) => home[d] === index);
      const connects0 = moved.map((l) => l.stats().connects);
      const killedAt = Date.now();
      log(`cluster bench: SIGKILL ${victim.name}${leader === victim.name ? ' (leader of the stream)' : ''} at ${((killedAt - start) / 1000).toFixed(1)} s`);
      await victim.kill();
      // Moved devices: back online once each has connected again (to another node).
      let backMs = -1;
      const backWatch = (async () => {
        while (Date.now() - killedAt < 60_000) {
          if (moved.every((l, i) => l.stats().connects > connects0[i] && l.state === 'online')) {
            backMs = Date.now() - killedAt;
            return;
          }
          await sleep(20);
        }
      })();
      await sleep(nodeDownS * 1000);
      await victim.start();
      const restartedAt = Date.now();
      log(`cluster bench: ${victim.name} restarted`);
      await backWatch;
      return { node: victim.name, leader: leader === victim.name, killedAt, restartedAt, moved: moved.length, backMs };
    };
    const failIngest = async (): Promise<number> => {
      const at = Date.now();
      log(`cluster bench: SIGKILL ingest-1 at ${((at - start) / 1000).toFixed(1)} s`);
      await ingests[0].kill('SIGKILL');
      await sleep(1000);
      await ingests[0].start();
      log('cluster bench: ingest-1 restarted');
      return at;
    };
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = Date.now();
        if (killNodeAtS !== null && nodeFailure === undefined && now - start >= killNodeAtS * 1000) nodeFailure = failNode();
        if (killIngestAtS !== null && ingestFailure === undefined && now - start >= killIngestAtS * 1000) ingestFailure = failIngest();
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
    const publishEnd = Date.now();
    const node = await nodeFailure;
    const ingestKilledAt = await ingestFailure;
    log(`cluster bench: published ${sent} results; waiting for the devices' queues and the rows`);
    const drained = await Promise.all(links.map((l) => l.drain(120_000)));
    const queuesDrainedMs = Date.now() - publishEnd;
    let rows = 0;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      rows = [...(await db.resultCounts()).values()].reduce((s, c) => s + c.rows, 0);
      if (rows >= sent) break;
      await sleep(250);
    }
    const drainMs = Date.now() - publishEnd;
    for (const p of ingests) await p.kill('SIGTERM');

    const keys = await db.resultKeys();
    const seen = links.map(() => new Uint8Array(Math.ceil(hz * seconds) + 16));
    const latencies: number[] = [];
    const written: number[] = [];
    const afterNode: number[] = [];
    const afterIngest: number[] = [];
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
      const latency = k.writtenAt - t0;
      latencies.push(latency);
      written.push(k.writtenAt);
      if (node && t0 >= node.killedAt && t0 < node.killedAt + 5000) afterNode.push(latency);
      if (ingestKilledAt !== undefined && t0 >= ingestKilledAt && t0 < ingestKilledAt + 5000) afterIngest.push(latency);
      if (k.writtenAt > lastWritten) lastWritten = k.writtenAt;
    }
    const lostAt: Record<string, number> = {};
    for (let d = 0; d < devices; d++) {
      for (let q = 0; q < sentAt[d].length; q++) {
        if (sentAt[d][q] > 0 && seen[d][q] === 0) {
          const key = `node${home[d] + 1}@${Math.floor((sentAt[d][q] - start) / 1000)}s`;
          lostAt[key] = (lostAt[key] ?? 0) + 1;
        }
      }
    }
    const sorted = Float64Array.from(latencies).sort();
    const writtenSorted = Float64Array.from(written).sort();
    const tail = (xs: number[]): { p99: number; max: number } => {
      const s = Float64Array.from(xs).sort();
      return { p99: percentile(s, 99), max: percentile(s, 100) };
    };
    const redelivered = ingests.map((p) => p.redelivered());
    return {
      devices,
      hz,
      seconds,
      ingests: ingests.length,
      sent,
      rows: keys.length,
      lost: sent - latencies.length + refused,
      lost_by_home_node_and_second: lostAt,
      unexpected,
      redelivered_ignored: redelivered.every((r) => r !== undefined) ? redelivered.reduce((s: number, r) => s + (r ?? 0), 0) : null,
      rows_per_s: Math.round((latencies.length / (Math.max(publishEnd, lastWritten) - start)) * 1000),
      latency_ms: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: percentile(sorted, 100) },
      queues_drained_ms: queuesDrainedMs,
      queues_drained: drained.every(Boolean),
      drain_ms: drainMs,
      node_failure: node
        ? {
            node: node.node,
            was_stream_leader: node.leader,
            at_s: Math.round((node.killedAt - start) / 100) / 10,
            down_s: Math.round((node.restartedAt - node.killedAt) / 100) / 10,
            devices_moved: node.moved,
            devices_back_ms: node.backMs,
            commit_gap_ms: longestGap(writtenSorted, node.killedAt, Math.min(publishEnd, node.restartedAt + 10_000)),
            latency_after_kill_ms: tail(afterNode),
          }
        : null,
      ingest_failure:
        ingestKilledAt !== undefined
          ? {
              at_s: Math.round((ingestKilledAt - start) / 100) / 10,
              commit_gap_ms: longestGap(writtenSorted, ingestKilledAt, Math.min(publishEnd, ingestKilledAt + (ackWaitS + 5) * 1000)),
              latency_after_kill_ms: tail(afterIngest),
              ack_wait_s: ackWaitS,
            }
          : null,
      server: /Version:\s+(\S+)/.exec(cluster.nodes[0].logs())?.[1] ?? 'unknown',
      machine: { cpus: os.cpus().length, loadavg_1m: Math.round(os.loadavg()[0] * 100) / 100 },
    };
  } finally {
    await Promise.all(links.map((l) => l.close(0)));
    for (const p of ingests) await p.kill('SIGKILL');
    const keep = process.env.LVUNET_BENCH_LOG_DIR;
    if (keep) {
      for (const n of cluster.nodes) writeFileSync(path.join(keep, `${n.name}.log`), n.logs());
      ingests.forEach((p, i) => writeFileSync(path.join(keep, `ingest-${i + 1}.log`), p.output));
    }
    await nc?.close();
    await db.close();
    await cluster.close();
  }
}


if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const num = (name: string): number | undefined => (arg(name) === undefined ? undefined : Number(arg(name)));
  const result = await benchCluster({
    devices: num('devices'),
    hz: num('hz'),
    seconds: num('seconds'),
    killNodeAtS: num('kill-node-at'),
    killIngestAtS: num('kill-ingest-at'),
    nodeDownS: num('node-down'),
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  if (result.lost !== 0 || result.unexpected !== 0 || !result.queues_drained) process.exitCode = 1;
}
