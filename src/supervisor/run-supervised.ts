/**
 * The supervisor side of `lvunet-edge run`: forks the worker (worker-main.ts), writes its results to
 * the local sinks, publishes them (and events, telemetry, command replies) through FleetLink when a
 * broker is configured, and applies hot config changes. The MQTT connection and its disk queue live
 * here, so a worker crash loses at most the frames it had in flight, never a queued result.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Config, LoadedConfig } from '../config/index.js';
import { watchConfig, type ConfigWatcher } from '../config/index.js';
import { FleetLink, type EventType, type Percentiles, type Severity } from '../fleet/index.js';
import type { Precision } from '../model/manifest.js';
import type { Fit } from '../runtime/native/binding.js';
import { packageRoot } from '../runtime/native/binding.js';
import type { QueueMode } from '../runtime/pipeline/queue.js';
import { assertResultV1, type ResultSink, type ResultV1 } from '../runtime/sinks/index.js';
import type { SourceFactoryOptions } from '../runtime/sources/index.js';
import type { StartupReport, WorkerEvent } from './ipc.js';
import { Supervisor } from './supervisor.js';
import { systemdNotifier } from './systemd.js';

/** What postprocessing uses; threshold undefined: the model manifest's. */
export interface WorkerSettings {
  threshold?: number;
  minArea: number;
  rle: boolean;
  contours: boolean;
}

/** The `start` message's config: everything the worker needs, resolved by the supervisor. */
export interface WorkerStart {
  /** 0 for the first worker of this run, then one more per restart. */
  readonly attempt: number;
  readonly model: string;
  readonly precision?: Precision;
  readonly providers: readonly string[];
  readonly strict: boolean;
  readonly threads: number;
  readonly ortLibrary?: string;
  readonly source: string;
  readonly sourceOptions: Omit<SourceFactoryOptions, 'onDrop'>;
  readonly fit: Fit;
  readonly queue: QueueMode;
  /** Results still wanted in this run (a restarted worker does the rest of --max-frames). */
  readonly maxFrames?: number;
  readonly saveMasks?: string;
  readonly settings: WorkerSettings;
}

export interface SupervisedRunOptions {
  readonly start: Omit<WorkerStart, 'attempt' | 'maxFrames'>;
  readonly maxFrames?: number;
  readonly sinks: readonly ResultSink[];
  readonly loaded: LoadedConfig;
  /** Watched for hot changes (inference.*, publish.*) when given. */
  readonly configFile?: string;
  /** CLI overrides, re-applied on every reload of the config file. */
  readonly cliOverrides?: Readonly<Record<string, unknown>>;
  readonly log: (line: string) => void;
  /** How long the end of a run waits for MQTT to take the queue; what is left stays on disk. */
  readonly mqttDrainMs?: number;
}

const EVENT_TYPES: Record<string, EventType> = { restart: 'restart', fault: 'fault', fallback: 'fallback', config: 'config', drop: 'drop', command: 'command' };
const EMPTY_MASK = { width: 0, height: 0, data: new Uint8Array(0) };

function workerPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), 'worker-main.js');
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p95: 0, p99: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

/** The postprocessing settings a config asks for, with CLI choices kept where the config is silent. */
export function settingsFromConfig(config: Config, origins: Readonly<Record<string, string>>, base: WorkerSettings): WorkerSettings {
  const set = (key: string): boolean => origins[key] !== undefined && origins[key] !== 'default';
  return {
    threshold: set('inference.threshold') ? config.inference.threshold : base.threshold,
    minArea: set('inference.min_area_px') ? config.inference.min_area_px : base.minArea,
    rle: set('publish.rle') ? config.publish.rle : base.rle,
    contours: set('publish.contours') ? config.publish.contours : base.contours,
  };
}

export async function runSupervised(options: SupervisedRunOptions): Promise<void> {
  const { log, loaded, maxFrames } = options;
  const config = loaded.config;
  let settings: WorkerSettings = { ...options.start.settings };
  let results = 0;
  let everyN = config.publish.every_n;
  let attempt = 0;
  let lastReport: StartupReport | undefined;
  let lastFault: string | undefined;
  let workerFps = 0;
  let workerDrops = 0;
  const latencies: number[] = [];

  const opened: ResultSink[] = [];
  for (const sink of options.sinks) {
    await sink.open();
    opened.push(sink);
  }

  let link: FleetLink | undefined;
  const mqtt = config.mqtt;
  if (mqtt.url !== null) {
    link = new FleetLink({
      url: mqtt.url,
      device: config.device.id,
      prefix: mqtt.prefix,
      username: mqtt.username ?? undefined,
      password: mqtt.password ?? undefined,
      tls: mqtt.url.startsWith('mqtts:') || mqtt.url.startsWith('wss:')
        ? { ca: mqtt.tls.ca ?? undefined, cert: mqtt.tls.cert ?? undefined, key: mqtt.tls.key ?? undefined, rejectUnauthorized: mqtt.tls.reject_unauthorized }
        : undefined,
      keepaliveS: mqtt.keepalive_s,
      queue: { dir: mqtt.queue.dir ?? join(config.state_dir, 'mqtt-queue'), maxMessages: mqtt.queue.max_messages, dropPolicy: mqtt.queue.drop_policy },
      versions: { 'lvunet-edge': packageVersion(), node: process.version },
      telemetry: {
        intervalMs: config.telemetry.interval_s * 1000,
        source: () => ({
          fps: workerFps,
          latency_ms: percentiles(latencies),
          drops: workerDrops,
          provider: lastReport?.providers.active[0] ?? 'none',
          model: lastReport ? { sha256: lastReport.model.sha256, precision: lastReport.model.precision } : null,
        }),
      },
    });
    link.on('fault', (err) => log(`mqtt: ${err.message}`));
    link.on('state', (state) => log(`mqtt: ${state}`));
    link.on('rejected', (m, err) => log(`mqtt: result/event on ${m.topic} will not be delivered: ${err.message}`));
    link.start();
    log(`mqtt ${mqtt.url} as ${config.device.id} (topics ${link.topics.base}/..., offline queue ${mqtt.queue.dir ?? join(config.state_dir, 'mqtt-queue')})`);
  }

  const publishEvent = (e: WorkerEvent): void => {
    if (!link) return;
    const severity: Severity = e.severity;
    link.publishEvent(EVENT_TYPES[e.type] ?? 'other', severity, e.message, e.details);
  };

  const supervisor = new Supervisor({
    workerPath: workerPath(),
    heartbeatTimeoutMs: config.supervisor.heartbeat_timeout_s * 1000,
    restart: {
      initialMs: config.supervisor.restart.initial_ms,
      maxMs: config.supervisor.restart.max_ms,
      crashLoopMax: config.supervisor.restart.crash_loop_max,
      crashLoopWindowMs: config.supervisor.restart.crash_loop_window_s * 1000,
    },
    systemd: systemdNotifier(process.env, log),
    config: (): WorkerStart => ({
      ...options.start,
      attempt: attempt++,
      maxFrames: maxFrames === undefined ? undefined : Math.max(0, maxFrames - results),
      settings,
    }),
  });

  let writes: Promise<void> = Promise.resolve();
  let finish!: () => void;
  let fail!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });

  supervisor.on('ready', (report) => {
    lastReport = report;
    log(`worker pid ${supervisor.workerPid ?? '?'} ready: ${report.providers.active[0] ?? '?'} on ${report.source}`);
    for (const f of report.providers.fallbacks) {
      publishEvent({ type: 'fallback', severity: 'warning', message: `${f.provider} not used: ${f.reason}`, details: { provider: f.provider, active: report.providers.active } });
    }
  });
  supervisor.on('result', (raw) => {
    if (maxFrames !== undefined && results >= maxFrames) return;
    try {
      assertResultV1(raw);
    } catch (err) {
      publishEvent({ type: 'fault', severity: 'warning', message: `worker sent a bad result: ${(err as Error).message}` });
      return;
    }
    const result: ResultV1 = raw;
    results++;
    latencies.push(result.latencyMs.total);
    if (latencies.length > 500) latencies.shift();
    // publish.every_n thins the MQTT stream only; local sinks keep every result.
    if ((results - 1) % everyN === 0) link?.publishResult(result);
    writes = writes.then(async () => {
      for (const sink of opened) await sink.write({ result, mask: EMPTY_MASK });
    });
    writes.catch((err: unknown) => fail(err instanceof Error ? err : new Error(String(err))));
    if (maxFrames !== undefined && results >= maxFrames) finish();
  });
  supervisor.on('event', (e) => {
    if (e.severity === 'error') lastFault = e.message;
    log(`${e.type}${e.severity === 'info' ? '' : ` (${e.severity})`}: ${e.message}`);
    publishEvent(e);
  });
  supervisor.on('stats', (s) => {
    if (typeof s.fps === 'number') workerFps = s.fps;
    if (typeof s.drops === 'number') workerDrops = s.drops;
  });
  supervisor.on('stopped', (s) => {
    if (s.reason === 'end') log(`source finished after ${s.frames} result(s) from this worker`);
    finish();
  });
  supervisor.on('fatal', (err) => {
    fail(new Error(lastFault ? `${lastFault}\n(${err.message})` : err.message));
  });

  // Commands go to the worker; a reply that does not come back (worker killed meanwhile) times out.
  const pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 0;
  supervisor.on('reply', (r) => {
    const p = pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.ok) p.resolve(r.result);
    else p.reject(new Error(r.error ?? 'worker refused the command'));
  });
  const askWorker = (name: string, args: unknown, timeoutMs = 10_000): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = `c${nextId++}`;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`worker did not answer ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer });
      if (!supervisor.send({ type: 'command', id, name, args })) {
        pending.delete(id);
        clearTimeout(timer);
        reject(new Error(`worker is not running (${supervisor.status}): try again shortly`));
      }
    });

  if (link) {
    const l = link;
    l.onCommand('status', async () => ({
      device: config.device.id,
      supervisor: { pid: process.pid, state: supervisor.status, restarts: supervisor.restarts, results },
      worker: await askWorker('status', {}),
      link: l.stats(),
    }));
    l.onCommand('snapshot', () => askWorker('snapshot', {}));
    l.onCommand('set-threshold', async (c) => {
      const r = await askWorker('set-threshold', { value: c.value });
      // A restarted worker keeps the operator's threshold.
      settings = { ...settings, threshold: c.value };
      l.publishEvent('config', 'info', `threshold set to ${c.value} by command ${c.id}`);
      return r;
    });
    l.onCommand('reload-model', () => {
      throw new Error('reload-model is not supported yet: install a signed bundle with `lvunet-edge bundle install` and restart the service');
    });
  }

  let watcher: ConfigWatcher | undefined;
  if (options.configFile) {
    try {
      watcher = watchConfig(
        options.configFile,
        (change) => {
          if (change.kind === 'rejected') {
            log(`config: change rejected, keeping the running one: ${change.message}`);
            publishEvent({ type: 'config', severity: 'warning', message: `config change rejected: ${change.message}` });
            return;
          }
          settings = settingsFromConfig(change.config.config, change.config.origins, settings);
          everyN = change.config.config.publish.every_n;
          supervisor.send({ type: 'update', patch: { ...settings } });
          const restartKeys = change.kind === 'restart-required' ? change.restartKeys : [];
          const message = `config: applied ${change.changed.join(', ')}${restartKeys.length ? `; ${restartKeys.join(', ')} take effect after a restart` : ''}`;
          log(message);
          publishEvent({ type: 'config', severity: 'info', message });
        },
        { initial: loaded, cli: options.cliOverrides },
      );
    } catch (err) {
      log(`config: not watching ${options.configFile}: ${(err as Error).message}`);
    }
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping capture, draining frames in flight`);
    finish();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  supervisor.start();
  let failure: Error | undefined;
  try {
    await done;
  } catch (err) {
    failure = err as Error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    watcher?.close();
    await supervisor.stop();
    for (const p of pending.values()) clearTimeout(p.timer);
    await writes.catch((err: unknown) => {
      failure ??= err as Error;
    });
    for (const sink of opened) await sink.close().catch((err: unknown) => log(`closing ${sink.description}: ${(err as Error).message}`));
    if (link) {
      // A run that failed has little to flush (events); the disk queue keeps it for the next start.
      const drainMs = failure ? 2_000 : (options.mqttDrainMs ?? 10_000);
      const drained = await link.drain(drainMs);
      const left = link.stats().queue.pending;
      await link.close(2_000);
      log(drained ? `mqtt: all ${results} result(s) delivered` : `mqtt: ${left} message(s) not yet delivered stay queued for the next start`);
    }
    log(`${results} result(s), ${supervisor.restarts} worker restart(s)`);
  }
  if (failure) throw failure;
}
