/**
 * The supervisor side of `lvunet-edge run`: forks the worker (worker-main.ts), writes its results to
 * the local sinks, publishes them (and events, telemetry, command replies) through FleetLink when a
 * broker is configured, and applies hot config changes. The MQTT connection and its disk queue live
 * here, so a worker crash loses at most the frames it had in flight, never a queued result.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Config, LoadedConfig } from '../config/index.js';
import { saveLastKnownGood, watchConfig, type ConfigWatcher } from '../config/index.js';
import { BundleError, reasonOf, type InstallStep } from '../fleet/bundles/errors.js';
import type { SelfTestResult } from '../fleet/bundles/golden.js';
import { ModelStore, type InstalledVersion, type PreparedModel } from '../fleet/bundles/store.js';
import { FleetLink, type EventType, type Percentiles, type ReloadModelCommand, type Severity } from '../fleet/index.js';
import { certificateCommonName } from '../fleet/publisher.js';
import type { Precision } from '../model/manifest.js';
import type { Fit } from '../runtime/native/binding.js';
import { packageRoot } from '../runtime/native/binding.js';
import type { QueueMode } from '../runtime/pipeline/queue.js';
import { assertResultV1, type ResultSink, type ResultV1 } from '../runtime/sinks/index.js';
import type { SourceFactoryOptions } from '../runtime/sources/index.js';
import type { StartupReport, WorkerEvent } from './ipc.js';
import type { PlannedProvider, SessionConfig } from './session.js';
import { Supervisor } from './supervisor.js';
import { systemdNotifier } from './systemd.js';
import { redactText, redactValue } from '../util/redact.js';

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
  /** Largest model file the worker reads (config model.max_bytes). */
  readonly maxModelBytes?: number;
  /** The provider plan (names, options with placeholders), threads and strictness for sessions. */
  readonly session: SessionConfig;
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

/** Where reload-model gets its trust anchors. */
export interface BundleOptions {
  /** PEM files of the public keys bundles may be signed with (re-read for every update). */
  readonly trustedKeys: readonly string[];
  /** Where an operator puts them, for the error when there are none. */
  readonly keysHint: string;
  /** Refuse bundles without golden frames. */
  readonly requireGolden?: boolean;
}

export interface SupervisedRunOptions {
  readonly start: Omit<WorkerStart, 'attempt' | 'maxFrames'>;
  /** --model was given on the command line: it serves at start-up even when a bundle is installed. */
  readonly modelExplicit?: boolean;
  readonly bundles?: BundleOptions;
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

// A TensorRT engine build for a new model takes minutes on a Jetson; downloads are bounded by the fetch limits.
const PREPARE_TIMEOUT_MS = 20 * 60_000;
const SELF_TEST_TIMEOUT_MS = 5 * 60_000;
const COMMIT_TIMEOUT_MS = 60_000;
const RELOAD_TIMEOUT_MS = 45 * 60_000;
const INSTALL_STEPS: readonly InstallStep[] = ['fetch', 'signature', 'policy', 'hash', 'load', 'self-test', 'switch'];

/** What the worker serves: the configured model, or an installed bundle version. */
interface Serving {
  readonly model: string;
  readonly precision?: Precision;
  /** The bundle version (sha256 of its manifest) when the model came from the store. */
  readonly version?: string;
}

interface WorkerModel {
  readonly path: string;
  readonly sha256: string;
  readonly precision: string;
  readonly inputSize: readonly [number, number];
  readonly threshold: number;
}

interface CommitReply {
  readonly framesLost: number;
  readonly switchMs: number;
  readonly model: WorkerModel;
  readonly providers: StartupReport['providers'];
  readonly plan: readonly PlannedProvider[];
}

/** A worker's refusal that names the update step (and file) turns back into the BundleError it was. */
function asBundleError(err: unknown): unknown {
  const details = (err as { details?: { step?: unknown; file?: unknown } }).details;
  const step = details?.step;
  if (typeof step !== 'string' || !(INSTALL_STEPS as readonly string[]).includes(step)) return err;
  return new BundleError(step as InstallStep, reasonOf(err), typeof details?.file === 'string' ? details.file : undefined, { cause: err });
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

/**
 * The device id the link uses. An explicit device.id must match the client certificate (checked
 * again by FleetLink.start). Without one, the certificate CN is the id when there is a certificate
 * (the deploy broker knows the device by it anyway); otherwise the host name, said out loud,
 * because a re-imaged or renamed host silently becomes another device.
 */
export function resolveDeviceId(configured: string, origin: string | undefined, certFile: string | undefined, log: (line: string) => void): string {
  const explicit = origin !== undefined && origin !== 'default';
  if (explicit) return configured;
  if (certFile !== undefined) {
    const cn = certificateCommonName(certFile);
    if (cn !== undefined) {
      log(`device.id is not set: using ${JSON.stringify(cn)}, the CN of the client certificate ${certFile}`);
      return cn;
    }
  }
  log(`WARNING: device.id is not set: using the host name ${JSON.stringify(configured)}. Set device.id (config, LVUNET_DEVICE_ID or --device-id) to the id the broker knows this device by; a renamed host would otherwise publish as another device`);
  return configured;
}

/** The end-of-run lines about delivery: "all delivered" only when every result was acknowledged and nothing was lost. */
export function deliverySummary(results: number, everyN: number, droppedBefore: number, s: ReturnType<FleetLink['stats']>): string[] {
  const published = Math.ceil(results / everyN);
  const left = s.queue.pending;
  const dropped = s.queue.dropped - droppedBefore;
  const lost = s.rejected + s.unpublished + dropped + s.queue.damaged;
  if (left === 0 && s.inflight === 0 && lost === 0 && s.refused === 0) {
    return [`mqtt: all ${published} result(s) delivered${everyN > 1 ? ` (every ${everyN}th of ${results})` : ''}`];
  }
  const lines = [`mqtt: NOT all results delivered: ${s.acked} message(s) acknowledged by the broker, ${left} still queued for the next start`];
  if (s.refused > 0) lines.push(`mqtt: the broker refused ${s.refused} publish(es) (kept queued; see the REFUSED lines: device id, ACL or quota)`);
  if (lost > 0) {
    lines.push(
      `mqtt: LOST ${lost} message(s): ${s.rejected} over the broker size limit, ${dropped} dropped by the queue (bounds or disk writes), ` +
        `${s.queue.damaged} damaged on disk, ${s.unpublished} without a seq number`,
    );
  }
  return lines;
}

export async function runSupervised(options: SupervisedRunOptions): Promise<void> {
  const { log, loaded, maxFrames } = options;
  const config = loaded.config;
  let settings: WorkerSettings = { ...options.start.settings };
  let results = 0;
  let pastLimit = 0;
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
  let deviceId = config.device.id;
  let droppedAtStart = 0;
  if (mqtt.url !== null) {
    const tlsOn = mqtt.url.startsWith('mqtts:') || mqtt.url.startsWith('wss:');
    const certFile = tlsOn ? (mqtt.tls.cert ?? undefined) : undefined;
    try {
      deviceId = resolveDeviceId(config.device.id, loaded.origins['device.id'], certFile, log);
      const queueDir = mqtt.queue.dir ?? join(config.state_dir, 'mqtt-queue');
      link = new FleetLink({
        url: mqtt.url,
        device: deviceId,
        prefix: mqtt.prefix,
        username: mqtt.username ?? undefined,
        password: mqtt.password ?? undefined,
        tls: tlsOn ? { ca: mqtt.tls.ca ?? undefined, cert: certFile, key: mqtt.tls.key ?? undefined, rejectUnauthorized: mqtt.tls.reject_unauthorized } : undefined,
        keepaliveS: mqtt.keepalive_s,
        queue: { dir: queueDir, maxMessages: mqtt.queue.max_messages, dropPolicy: mqtt.queue.drop_policy },
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
      link.on('rejected', (m, err) => log(`mqtt: LOST: message on ${m.topic} will not be delivered: ${err.message}`));
      link.on('refused', (m, err) => {
        if (m.retryMs > 0) log(`mqtt: REFUSED by the broker: message ${m.id} on ${m.topic} (${err.message}, reason 0x${m.reasonCode.toString(16)}); kept queued, retrying in ${Math.round(m.retryMs / 1000)} s (${link?.stats().refused ?? 0} refusal(s) so far)`);
      });
      link.on('incident', (i) => log(`mqtt queue: ${(i.lost ?? 0) > 0 ? `LOST ${i.lost} message(s): ` : ''}${i.message}`));
      link.start();
      droppedAtStart = link.stats().queue.dropped;
      log(`mqtt ${mqtt.url} as ${deviceId} (topics ${link.topics.base}/..., offline queue ${queueDir})`);
    } catch (err) {
      await link?.close(0);
      for (const sink of opened) await sink.close().catch(() => undefined);
      throw err;
    }
  }

  // The model store: installed bundles under <state_dir>/models. Opened when this device can be
  // told to update (a broker) or already has bundles; a store it cannot open only disables updates.
  let serving: Serving = { model: options.start.model, precision: options.start.precision };
  let expiredAtStart: string | undefined;
  let store: ModelStore | undefined;
  const bundleKeys = options.bundles?.trustedKeys ?? [];
  if (mqtt.url !== null || existsSync(join(config.state_dir, 'models'))) {
    try {
      store = await ModelStore.open({
        stateDir: config.state_dir,
        trustedKeys: bundleKeys,
        requireGolden: options.bundles?.requireGolden,
        // Version, group and expiry of every bundle are checked against this (policy.ts); the fleet link never downgrades.
        deviceGroup: config.device.group ?? undefined,
        // Never used: every load and self-test goes through the worker (prepare hook below).
        runModel: () => Promise.reject(new Error('models are only run in the worker process')),
      });
      const installed = store.current();
      if (installed && options.modelExplicit) {
        log(`models: installed bundle ${installed.version} not used at start-up: --model ${options.start.model} was given`);
      } else if (installed) {
        serving = { model: installed.modelPath, version: installed.version };
        log(`models: serving installed bundle ${installed.version} (${installed.modelPath}) instead of ${options.start.model}`);
        const notAfter = installed.manifest.release?.notAfter;
        if (notAfter !== undefined && Date.now() > Date.parse(notAfter)) {
          // Serving never stops on a date (or a wrong clock); the fleet should replace it.
          expiredAtStart = `installed bundle ${installed.version} expired at ${notAfter}; it keeps serving, but a rollback to it would be refused: install a current bundle`;
          log(`models: ${expiredAtStart}`);
        }
      }
    } catch (err) {
      log(`models: cannot open the model store under ${join(config.state_dir, 'models')}: ${(err as Error).message}; reload-model is unavailable`);
    }
  }

  // Every event leaves through here, redacted: a broker URL or password in a message (an error
  // from a config file, a source path) must not be published to the fleet.
  const emitEvent = (type: EventType, severity: Severity, message: string, details?: Record<string, unknown>): void => {
    link?.publishEvent(type, severity, redactText(message), details === undefined ? undefined : redactValue(details));
  };
  // The config file this run started from has now produced a result end to end (model, source,
  // pipeline): it becomes the last-known-good that a broken file falls back to at the next start.
  // A run on the last-known-good itself or on defaults has nothing new to record.
  const saveKnownGood = (): void => {
    if (loaded.origin !== 'file') return;
    try {
      const path = saveLastKnownGood(config.state_dir, loaded);
      log(`config: ${loaded.file ?? 'the config'} saved as last-known-good (${path})`);
    } catch (err) {
      log(`config: cannot save the last-known-good config in ${config.state_dir}: ${reasonOf(err)}`);
      emitEvent('config', 'warning', `cannot save the last-known-good config: ${reasonOf(err)}`);
    }
  };
  const publishEvent = (e: WorkerEvent): void => {
    emitEvent(EVENT_TYPES[e.type] ?? 'other', e.severity, e.message, e.details);
  };
  // Running on the last-known-good because the file is broken must be loud on the fleet too
  // (run-command has logged it); queued, so it goes out whenever the broker is reached.
  if (expiredAtStart !== undefined) emitEvent('fault', 'warning', expiredAtStart, { kind: 'model-expired', version: serving.version ?? null });
  for (const e of loaded.events) {
    if (e.type !== 'config.fallback') continue;
    emitEvent('config', 'error', e.message, { kind: 'config.fallback', file: e.file, issues: e.issues.map((i) => ({ ...i })), lastKnownGood: { ...e.lastKnownGood } });
  }

  const supervisor = new Supervisor({
    workerPath: workerPath(),
    heartbeatTimeoutMs: config.supervisor.heartbeat_timeout_s * 1000,
    drainTimeoutMs: config.supervisor.drain_timeout_s * 1000,
    restart: {
      initialMs: config.supervisor.restart.initial_ms,
      maxMs: config.supervisor.restart.max_ms,
      crashLoopMax: config.supervisor.restart.crash_loop_max,
      crashLoopWindowMs: config.supervisor.restart.crash_loop_window_s * 1000,
    },
    systemd: systemdNotifier(process.env, log),
    config: (): WorkerStart => ({
      ...options.start,
      // A restarted worker serves what was last switched to, never a half-done update's model.
      model: serving.model,
      precision: serving.precision,
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
      publishEvent({ type: 'fallback', severity: 'warning', message: `${f.provider} not used: ${f.reason}`, details: { provider: f.provider, active: report.providers.active, plan: report.plan } });
    }
  });
  supervisor.on('result', (raw) => {
    if (maxFrames !== undefined && results >= maxFrames) {
      // Frames already in flight when the limit was reached still finish in the worker.
      pastLimit++;
      return;
    }
    try {
      assertResultV1(raw);
    } catch (err) {
      publishEvent({ type: 'fault', severity: 'warning', message: `worker sent a bad result: ${(err as Error).message}` });
      return;
    }
    const result: ResultV1 = raw;
    results++;
    if (results === 1) saveKnownGood();
    latencies.push(result.latencyMs.total);
    if (latencies.length > 500) latencies.shift();
    // publish.every_n thins the MQTT stream only; local sinks keep every result.
    if ((results - 1) % everyN === 0) link?.publishResult(result);
    // (A result the link cannot publish is counted there: rejected, unpublished, dropped.)
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
  const pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; name: string }>();
  let nextId = 0;
  supervisor.on('reply', (r) => {
    const p = pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.ok) p.resolve(r.result);
    else p.reject(Object.assign(new Error(r.error ?? 'worker refused the command'), r.details ? { details: r.details } : {}));
  });
  // A worker that died (a native crash while loading a model, a kill) will never answer.
  supervisor.on('exit', ({ code, signal }) => {
    for (const [id, p] of [...pending]) {
      pending.delete(id);
      clearTimeout(p.timer);
      p.reject(Object.assign(new Error(`the worker exited (${signal ? `signal ${signal}` : `exit code ${code}`}) before answering ${p.name}`), { workerExited: true }));
    }
  });
  const askWorker = (name: string, args: unknown, timeoutMs = 10_000): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = `c${nextId++}`;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`worker did not answer ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer, name });
      if (!supervisor.send({ type: 'command', id, name, args })) {
        pending.delete(id);
        clearTimeout(timer);
        reject(new Error(`worker is not running (${supervisor.status}): try again shortly`));
      }
    });

  if (link) {
    const l = link;
    l.onCommand('status', async () => ({
      device: deviceId,
      group: config.device.group,
      bundle: serving.version ? { version: serving.version, release: store?.current()?.manifest.release ?? null } : null,
      supervisor: { pid: process.pid, state: supervisor.status, restarts: supervisor.restarts, results },
      worker: await askWorker('status', {}),
      link: l.stats(),
    }));
    // Sized to fit one reply under the broker's limit (the reply envelope takes a few hundred bytes).
    l.onCommand('snapshot', () => askWorker('snapshot', { maxBytes: l.replyBudget('snapshot') - 1024 }));
    l.onCommand('set-threshold', async (c) => {
      const r = await askWorker('set-threshold', { value: c.value });
      // A restarted worker keeps the operator's threshold.
      settings = { ...settings, threshold: c.value };
      emitEvent('config', 'info', `threshold set to ${c.value} by command ${c.id}`);
      return r;
    });
    l.onCommand('reload-model', (c) => reloadModel(c), { timeoutMs: RELOAD_TIMEOUT_MS });
  }

  /**
   * Loads `next` in the worker beside the serving model; the store then self-tests it there, moves
   * its pointers and commits (the worker switches sessions between two frames). Anything that goes
   * wrong before the commit leaves the worker on its old session; a commit that cannot be confirmed
   * restarts the worker, which comes back on the model `serving` names (still the old one).
   */
  let nextToken = 0;
  const prepareInWorker = async (next: InstalledVersion, c: ReloadModelCommand): Promise<PreparedModel> => {
    const token = `m${nextToken++}`;
    try {
      await askWorker('prepare-model', { token, path: next.modelPath, sha256: c.sha256, precision: c.precision }, PREPARE_TIMEOUT_MS);
    } catch (err) {
      throw asBundleError(err);
    }
    let committed: CommitReply | undefined;
    return {
      selfTest: async (v) => {
        try {
          return ((await askWorker('self-test-model', { token, dir: v.dir, manifest: v.manifest }, SELF_TEST_TIMEOUT_MS)) ?? undefined) as SelfTestResult | undefined;
        } catch (err) {
          throw asBundleError(err);
        }
      },
      commit: async () => {
        try {
          committed = (await askWorker('commit-model', { token }, COMMIT_TIMEOUT_MS)) as CommitReply;
        } catch (err) {
          if (!(err as { workerExited?: boolean }).workerExited && supervisor.workerPid !== undefined) {
            // Switched or not, we cannot tell: a fresh worker on the old model is a known state.
            log(`reload-model ${c.id}: the switch was not confirmed (${(err as Error).message}); restarting the worker on the old model`);
            process.kill(supervisor.workerPid, 'SIGKILL');
          }
          throw asBundleError(err);
        }
        serving = { model: next.modelPath, version: next.version };
        if (lastReport) lastReport = { ...lastReport, model: committed.model, providers: committed.providers, plan: committed.plan };
        return { framesLost: committed.framesLost };
      },
      abort: async () => {
        await askWorker('abort-model', { token }, 10_000).catch(() => undefined);
      },
    };
  };

  const describeServing = (): string => (serving.version ? `bundle ${serving.version} (${serving.model})` : serving.model);

  const reloadModel = async (c: ReloadModelCommand): Promise<Record<string, unknown>> => {
    const operation = c.rollback ? 'rollback' : 'install';
    const source = c.path ?? c.url;
    const fail = (step: InstallStep | 'unavailable', reason: string, file?: string, cause?: unknown, code?: string): never => {
      const message = `model ${operation} ${c.id} failed at ${step}${file ? ` (${file})` : ''}: ${reason}; still serving ${describeServing()}`;
      log(`reload-model: ${message}`);
      emitEvent('fault', 'error', message, {
        kind: 'model-update-failed',
        id: c.id,
        operation,
        source: source ?? null,
        step,
        // policy refusals: 'downgrade', 'wrong-group' or 'expired'.
        code: code ?? null,
        file: file ?? null,
        serving: { model: serving.model, version: serving.version ?? null },
      });
      throw new Error(message, { cause });
    };
    if (!store) return fail('unavailable', `the model store under ${join(config.state_dir, 'models')} could not be opened (see the start-up log)`);
    if (bundleKeys.length === 0) {
      return fail('unavailable', `no trusted bundle keys: ${options.bundles?.keysHint ?? 'pass --bundle-key public.pem to run'}`);
    }
    log(`reload-model ${c.id}: ${operation}${source ? ` ${source}` : ''}`);
    const from = serving;
    const prepare = (next: InstalledVersion): Promise<PreparedModel> => prepareInWorker(next, c);
    let changed: boolean;
    let current: InstalledVersion;
    let previous: InstalledVersion | undefined;
    let selfTest: SelfTestResult | undefined;
    let framesLost: number | undefined;
    try {
      if (c.rollback) {
        let seen: { selfTest: SelfTestResult | undefined; framesLost: number | undefined } | undefined;
        const listener = (e: { selfTest: SelfTestResult | undefined; framesLost: number | undefined }): void => {
          seen = e;
        };
        store.once('model-changed', listener);
        try {
          current = await store.rollback({ prepare, reason: c.id });
        } finally {
          store.off('model-changed', listener);
        }
        changed = true;
        previous = store.previous();
        selfTest = seen?.selfTest;
        framesLost = seen?.framesLost;
      } else {
        const r = await store.install(source as string, { prepare, reason: c.id });
        ({ changed, current, previous, selfTest, framesLost } = r);
      }
    } catch (err) {
      if (err instanceof BundleError) return fail(err.step, err.reason, err.file, err, err.code);
      return fail('switch', reasonOf(err), undefined, err);
    }
    if (!changed && serving.version !== current.version) {
      // Installed already, but not what this worker serves (it was started with --model).
      return fail('switch', `bundle ${current.version} is already installed but not serving (the run was started with --model); restart without --model to serve it`);
    }
    const model = lastReport?.model;
    const details: Record<string, unknown> = {
      id: c.id,
      cause: operation,
      changed,
      version: current.version,
      // What the signer said the bundle is for (version, group, expiry); null for a legacy bundle.
      release: current.manifest.release ?? null,
      previous: changed ? (from.version ?? null) : (previous?.version ?? null),
      previousModel: changed ? from.model : null,
      source: source ?? null,
      model: model ? { path: model.path, sha256: model.sha256, precision: model.precision } : null,
      selfTest: selfTest ? { meanDice: selfTest.meanDice, threshold: selfTest.threshold, frames: selfTest.perFrame.length } : null,
      framesLost: framesLost ?? 0,
    };
    if (changed) {
      const message = `model ${operation === 'rollback' ? 'rolled back' : 'installed'} by ${c.id}: now serving bundle ${current.version}` +
        `${model ? ` (sha256 ${model.sha256}, ${model.precision})` : ''}; ${framesLost ?? 0} frame(s) lost during the switch`;
      log(`reload-model: ${message}`);
      emitEvent('model-changed', 'info', message, details);
    } else {
      log(`reload-model ${c.id}: bundle ${current.version} is already serving; nothing switched`);
    }
    return details;
  };

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

  // The first signal drains; a second one does not wait for the worker (its drain is bounded
  // anyway, and a worker stuck in a blocking call is killed as soon as it goes silent).
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signals++ === 0) {
      log(`${signal}: stopping capture, draining frames in flight (send it again to stop at once)`);
      finish();
    } else {
      log(`${signal} again: stopping without waiting for the worker`);
      supervisor.kill(`${signal} received twice`);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
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
      await link.drain(drainMs);
      // Taken before close(): a closed store no longer counts what it keeps on disk.
      const final = link.stats();
      await link.close(2_000);
      for (const line of deliverySummary(results, everyN, droppedAtStart, final)) log(line);
    }
    const extra = pastLimit > 0 ? `; ${pastLimit} more from frames in flight at --max-frames were not published` : '';
    log(`${results} result(s), ${supervisor.restarts} worker restart(s)${extra}`);
  }
  if (failure) throw failure;
}
