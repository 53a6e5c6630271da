/**
 * Fleet load: N simulated devices, each a FleetLink publishing result-sized QoS 1 messages at
 * `hz` to one local mosquitto for `seconds`, and one operator subscriber counting by (device, seq).
 * Reports loss (must be 0), duplicates, publish-to-receive latency and throughput.
 *
 * The devices share one JS thread (and the subscriber has a worker thread) on the broker's machine,
 * so latency includes event-loop contention between 200 clients: an upper bound for what a single
 * real device sees.
 *
 *   node dist/bench/fleet-load.js [--devices 200] [--hz 10] [--seconds 60] [--store memory|disk] [--max-queued 0]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker, isMainThread, workerData, type MessagePort } from 'node:worker_threads';
import mqtt from 'mqtt';
import { startBroker } from '../test/helpers/mosquitto.js';
import { FleetLink } from '../src/fleet/publisher.js';
import { MemoryStore } from '../src/fleet/queue/memory.js';
import { arg, percentile, simulatedResult, sleep } from './fleet-sim.js';
import { parseTopic } from '../src/fleet/topics.js';

export interface FleetBenchOptions {
  /** Default 200. */
  devices?: number;
  /** Results per second per device; default 10. */
  hz?: number;
  /** Default 60. */
  seconds?: number;
  /**
   * Offline queue of each device; default memory. `disk` gives every simulated device its own
   * DiskStore (fsync interval) in this one process: 200 stores fsyncing on one JS thread measure
   * the bench machine's disk, not what one device sees.
   */
  store?: 'disk' | 'memory';
  /** Bytes of run-length mask in each result, to make it result-sized; default 600. */
  rleBytes?: number;
  /**
   * mosquitto max_queued_messages; default 0 (no limit). The stock and deploy/mosquitto value,
   * 1000, also caps what the broker holds for an online subscriber that falls behind, and QoS 1
   * messages beyond it are dropped: 200 devices at 10 Hz are 2000 msg/s, so any half-second
   * stall of the subscriber (or of the broker, on a loaded machine) loses results there. The
   * default measures the fleet path itself; pass 1000 to see the shipped config's behaviour.
   */
  maxQueuedMessages?: number;
  /** mosquitto max_inflight_messages (stock and deploy/mosquitto: 20). */
  maxInflightMessages?: number;
  /** Progress lines; default none. */
  log?: (line: string) => void;
}

export interface FleetBenchResult {
  devices: number;
  hz: number;
  seconds: number;
  store: 'disk' | 'memory';
  payload_bytes: number;
  sent: number;
  received_distinct: number;
  duplicates: number;
  lost: number;
  /** Queued results a device refused (queue full / oversized); counted into lost as well. */
  refused: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  /** Distinct results received per second, from the first publish to the last receipt. */
  msgs_per_s: number;
  /**
   * Results the broker acknowledged (PUBACK) to the devices. Equal to `sent` means nothing was lost
   * between devices and broker; a shortfall in received_distinct is then the broker dropping
   * messages for the subscriber (max_queued_messages).
   */
  broker_acked: number;
  /** Time after publishing stopped until every result had arrived (30 s cap). */
  drain_ms: number;
  /** CPU of the devices' thread (and mqtt.js sockets) while publishing; 100 = one core. */
  devices_thread_cpu_pct: number;
  /** Other work on the machine skews every figure here; the load average says how much there was. */
  machine: { cpus: number; loadavg_1m: number };
  broker: { version: string; max_inflight_messages: number | string; max_queued_messages: number | string };
}




/** Absolute milliseconds, comparable between threads (performance.now() is per thread). */
const nowAbs = (): number => performance.timeOrigin + performance.now();

interface SubscriberBatch {
  type: 'batch';
  /** Flattened [device index, seq, receive time] triples. */
  data: number[];
  duplicates: number;
}

/**
 * The operator side runs in its own thread (its own event loop), as it would on its own machine;
 * sharing the devices' thread would make the subscriber's PUBACKs wait behind 200 clients' work.
 */
function runSubscriber(url: string, port: MessagePort): void {
  const client = mqtt.connect(url, { clientId: 'bench-operator', reconnectPeriod: 500 });
  const seen = new Map<number, Set<number>>();
  let data: number[] = [];
  let duplicates = 0;
  const flush = (): void => {
    if (data.length === 0 && duplicates === 0) return;
    const batch: SubscriberBatch = { type: 'batch', data, duplicates };
    port.postMessage(batch);
    data = [];
    duplicates = 0;
  };
  const timer = setInterval(flush, 100);
  client.on('message', (topic, payload) => {
    const at = nowAbs();
    const parsed = parseTopic(topic);
    if (!parsed || parsed.kind !== 'result') return;
    // Only seq is needed; a full JSON.parse of every message would be part of the measurement.
    const m = /"seq":(\d+)/.exec(payload.toString('latin1', 0, 200));
    if (!m) return;
    const device = Number(parsed.device.slice('bench-'.length));
    const seq = Number(m[1]);
    let set = seen.get(device);
    if (!set) seen.set(device, (set = new Set()));
    if (set.has(seq)) {
      duplicates++;
      return;
    }
    set.add(seq);
    data.push(device, seq, at);
  });
  client.once('connect', () => {
    void client.subscribeAsync('lvunet/+/result', { qos: 1 }).then(() => port.postMessage({ type: 'ready' }));
  });
  port.on('message', (msg: { type: string }) => {
    if (msg.type !== 'stop') return;
    clearInterval(timer);
    flush();
    void client.endAsync(true).then(() => {
      port.postMessage({ type: 'stopped' });
      port.close();
    });
  });
}

export async function benchFleet(options: FleetBenchOptions = {}): Promise<FleetBenchResult> {
  const devices = options.devices ?? 200;
  const hz = options.hz ?? 10;
  const seconds = options.seconds ?? 60;
  const storeKind = options.store ?? 'memory';
  const rleBytes = options.rleBytes ?? 600;
  const maxQueued = options.maxQueuedMessages ?? 0;
  const maxInflight = options.maxInflightMessages ?? 20;
  const log = options.log ?? (() => {});
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'lvunet-fleet-bench-'));
  const broker = await startBroker({
    persistence: false,
    // set_tcp_nodelay: without it mosquitto's small PUBACK/PUBLISH writes wait on Nagle.
    extraConfig: [`max_inflight_messages ${maxInflight}`, `max_queued_messages ${maxQueued}`, 'set_tcp_nodelay true'].join('\n'),
  });
  const version = /mosquitto version (\S+)/.exec(broker.logs())?.[1] ?? 'unknown';
  const links: FleetLink[] = [];
  const timers: NodeJS.Timeout[] = [];
  const channel = new MessageChannel();
  const worker = new Worker(new URL(import.meta.url), {
    workerData: { role: 'fleet-subscriber', url: broker.url, port: channel.port2 },
    transferList: [channel.port2],
  });
  const sentAt: Float64Array[] = [];
  const latencies: number[] = [];
  let received = 0;
  let duplicates = 0;
  let lastReceivedAt = 0;
  let ready: () => void = () => {};
  let stopped: () => void = () => {};
  const readyP = new Promise<void>((r) => (ready = r));
  const stoppedP = new Promise<void>((r) => (stopped = r));
  channel.port1.on('message', (msg: SubscriberBatch | { type: 'ready' | 'stopped' }) => {
    if (msg.type === 'ready') ready();
    else if (msg.type === 'stopped') stopped();
    else if (msg.type === 'batch') {
      duplicates += msg.duplicates;
      for (let i = 0; i < msg.data.length; i += 3) {
        received++;
        if (msg.data[i + 2] > lastReceivedAt) lastReceivedAt = msg.data[i + 2];
        const t0 = sentAt[msg.data[i]]?.[msg.data[i + 1]];
        if (t0 !== undefined && t0 > 0) latencies.push(msg.data[i + 2] - t0);
      }
    }
  });
  worker.on('error', (err) => log(`fleet bench: subscriber thread failed: ${err.message}`));
  try {
    await readyP;
    log(`fleet bench: starting ${devices} devices (${storeKind} queues) against mosquitto ${version} on ${broker.url}`);
    for (let d = 0; d < devices; d++) {
      const device = `bench-${String(d).padStart(4, '0')}`;
      const link = new FleetLink({
        url: broker.url,
        device,
        queue: storeKind === 'disk' ? { dir: path.join(tmp, device), fsync: 'interval' } : new MemoryStore(),
        reconnectMinMs: 500,
      });
      link.start();
      links.push(link);
      sentAt.push(new Float64Array(Math.ceil(hz * seconds) + 16));
    }
    await Promise.all(links.map((l) => l.waitFor('online', 60_000)));
    log('fleet bench: all devices online');

    let sent = 0;
    let refused = 0;
    const cpu0 = process.cpuUsage();
    const start = nowAbs();
    const stopAt = start + seconds * 1000;
    const periodMs = 1000 / hz;
    // One scheduler for all devices instead of one setInterval each: intervals drift by their
    // callback delay every period, which under load cost ~15% of the requested rate. Device d
    // publishes at start + offset_d + k * period and catches up on any tick it missed; latency
    // counts from the scheduled time, so a late scheduler shows up in it.
    const due = links.map((_, d) => start + (d / devices) * periodMs);
    const frames = links.map(() => 0);
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = nowAbs();
        let active = false;
        for (let d = 0; d < links.length; d++) {
          while (due[d] <= now && due[d] < stopAt) {
            const seq = links[d].publishResult(simulatedResult(frames[d]++, rleBytes));
            if (seq === undefined) refused++;
            else {
              if (seq < sentAt[d].length) sentAt[d][seq] = due[d];
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
      timers.push(tick);
    });
    const publishEnd = nowAbs();
    const cpu = process.cpuUsage(cpu0);
    log(`fleet bench: published ${sent} results in ${((publishEnd - start) / 1000).toFixed(1)} s; waiting for delivery`);
    const deadline = publishEnd + 30_000;
    while (received < sent && nowAbs() < deadline) await sleep(50);
    const drainMs = nowAbs() - publishEnd;
    channel.port1.postMessage({ type: 'stop' });
    await Promise.race([stoppedP, sleep(5_000)]);
    const sorted = Float64Array.from(latencies).sort();
    return {
      devices,
      hz,
      seconds,
      store: storeKind,
      payload_bytes: Buffer.byteLength(JSON.stringify({ ...simulatedResult(0, rleBytes), device: 'bench-0000', seq: 0 })),
      sent,
      received_distinct: received,
      duplicates,
      lost: sent - received + refused,
      refused,
      latency_ms: { p50: percentile(sorted, 50, 2), p90: percentile(sorted, 90, 2), p99: percentile(sorted, 99, 2), max: percentile(sorted, 100, 2) },
      msgs_per_s: Math.round((received / (Math.max(publishEnd, lastReceivedAt) - start)) * 1000),
      broker_acked: links.reduce((sum, l) => sum + l.stats().acked, 0),
      drain_ms: Math.round(drainMs),
      devices_thread_cpu_pct: Math.round(((cpu.user + cpu.system) / 1000 / (publishEnd - start)) * 1000) / 10,
      machine: { cpus: os.cpus().length, loadavg_1m: Math.round(os.loadavg()[0] * 100) / 100 },
      broker: { version, max_inflight_messages: maxInflight, max_queued_messages: maxQueued },
    };
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await Promise.all(links.map((l) => l.close(0)));
    await worker.terminate();
    channel.port1.close();
    await broker.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}


const role = (workerData as { role?: unknown } | null)?.role;
if (!isMainThread && role === 'fleet-subscriber') {
  const data = workerData as { url: string; port: MessagePort };
  runSubscriber(data.url, data.port);
} else if (isMainThread && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const num = (name: string): number | undefined => (arg(name) === undefined ? undefined : Number(arg(name)));
  const store = arg('store');
  if (store !== undefined && store !== 'disk' && store !== 'memory') throw new Error('--store must be disk or memory');
  const result = await benchFleet({
    devices: num('devices'),
    hz: num('hz'),
    seconds: num('seconds'),
    store,
    maxQueuedMessages: num('max-queued'),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  if (result.lost !== 0) process.exitCode = 1;
}
