/**
 * The supervisor side of `lvunet-edge run`: forks the worker (worker-main.ts), writes its results to
 * the local sinks, publishes them (and events, telemetry, command replies) through FleetLink when a
 * broker is configured, and applies hot config changes. The MQTT connection and its disk queue live
 * here, so a worker crash loses at most the frames it had in flight, never a queued result.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Config, LoadedConfig } from '../config/index.js';
import { saveLastKnownGood, watchConfig, type ConfigWatcher } from '../config/index.js';
import { reasonOf } from '../fleet/bundles/errors.js';
import type { Precision } from '../model/manifest.js';
import type { Fit } from '../runtime/native/binding.js';
import type { QueueMode } from '../runtime/pipeline/queue.js';
import type { ResultSink } from '../runtime/sinks/index.js';
import type { SourceFactoryOptions } from '../runtime/sources/index.js';
import { registerRunCommands } from './fleet-commands.js';
import { connectFleet, deliverySummary, FleetEvents } from './fleet-wiring.js';
import { ModelUpdater } from './model-update.js';
import { ResultIntake } from './result-intake.js';
import { openModels, ServingState } from './serving.js';
import type { SessionConfig } from './session.js';
import { Supervisor } from './supervisor.js';
import { systemdNotifier } from './systemd.js';
import { WorkerRpc } from './worker-rpc.js';
import { WorkerStats } from './worker-stats.js';
import type { ListenAddress } from '../view/listen.js';
import type { LiveFigures } from '../view/live-figures.js';
import type { ViewServer } from '../view/server.js';

/** The live view's modules, loaded only when it is on: a run without it never loads ws or prom-client. */
async function loadView(): Promise<typeof import('../view/live-figures.js') & typeof import('../view/metrics.js') & typeof import('../view/server.js')> {
  const [figures, metrics, server] = await Promise.all([import('../view/live-figures.js'), import('../view/metrics.js'), import('../view/server.js')]);
  return { ...figures, ...metrics, ...server };
}

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
  /** --save-overlays: each frame with its overlay as a PNG in this folder. */
  readonly saveOverlays?: string;
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
  /** The live view, /metrics and /healthz (src/view/); off when absent. */
  readonly ui?: UiOptions;
}

export interface UiOptions {
  readonly listen: ListenAddress;
  readonly token?: string;
  /** Pictures a second to viewers, and their widest size. */
  readonly maxFps: number;
  readonly maxWidth: number;
}

function workerPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), 'worker-main.js');
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

export { deliverySummary, resolveDeviceId } from './fleet-wiring.js';

/** Opens the sinks in order (a sink that cannot open ends the run before any worker starts). */
async function openSinks(sinks: readonly ResultSink[]): Promise<ResultSink[]> {
  const opened: ResultSink[] = [];
  for (const sink of sinks) {
    await sink.open();
    opened.push(sink);
  }
  return opened;
}

/**
 * The config file this run started from has now produced a result end to end (model, source,
 * pipeline): it becomes the last-known-good that a broken file falls back to at the next start.
 * A run on the last-known-good itself or on defaults has nothing new to record.
 */
function saveKnownGood(loaded: LoadedConfig, log: (line: string) => void, events: FleetEvents): void {
  if (loaded.origin !== 'file') return;
  const stateDir = loaded.config.state_dir;
  try {
    const path = saveLastKnownGood(stateDir, loaded);
    log(`config: ${loaded.file ?? 'the config'} saved as last-known-good (${path})`);
  } catch (err) {
    log(`config: cannot save the last-known-good config in ${stateDir}: ${reasonOf(err)}`);
    events.emit('config', 'warning', `cannot save the last-known-good config: ${reasonOf(err)}`);
  }
}

export async function runSupervised(options: SupervisedRunOptions): Promise<void> {
  const { log, loaded, maxFrames } = options;
  const config = loaded.config;
  /** Changed by the config file and set-threshold; every (re)started worker gets the latest. */
  let settings: WorkerSettings = { ...options.start.settings };
  let attempt = 0;
  let lastFault: string | undefined;

  const opened = await openSinks(options.sinks);
  const serving = new ServingState({ model: options.start.model, precision: options.start.precision });
  const stats = new WorkerStats(serving);

  // The supervisor is built after the link; until then no worker has restarted.
  let workerRestarts = (): number => 0;
  let fleet: Awaited<ReturnType<typeof connectFleet>>;
  try {
    fleet = await connectFleet(loaded, () => ({ ...stats.telemetry(), worker_restarts: workerRestarts() }), log);
  } catch (err) {
    for (const sink of opened) await sink.close().catch(() => undefined);
    throw err;
  }
  const link = fleet?.link;
  // Read lazily: the supervisor and the view server exist only further down.
  const later: { supervisor?: Supervisor } = {};
  let view: ViewServer | undefined;
  const viewModules = options.ui ? await loadView() : undefined;
  const figures: LiveFigures | undefined = viewModules && new viewModules.LiveFigures({
    worker: () => ({ state: later.supervisor?.status ?? 'idle', pid: later.supervisor?.workerPid, restarts: later.supervisor?.restarts ?? 0 }),
    version: () => serving.current.version,
    report: () => serving.report,
    link: () => link?.stats(),
    viewers: () => view?.viewerCount ?? 0,
  });

  const events = new FleetEvents(link, (e) => figures?.onEvent(e));

  const bundleKeys = options.bundles?.trustedKeys ?? [];
  const models = await openModels({
    stateDir: config.state_dir,
    fleet: config.mqtt.url !== null,
    trustedKeys: bundleKeys,
    requireGolden: options.bundles?.requireGolden,
    deviceGroup: config.device.group ?? undefined,
    modelExplicit: options.modelExplicit,
    configured: serving.current,
    log,
  });
  serving.current = models.serving;
  if (models.expired !== undefined) events.emit('fault', 'warning', models.expired, { kind: 'model-expired', version: serving.current.version ?? null });
  // Running on the last-known-good because the file is broken must be loud on the fleet too
  // (run-command has logged it); queued, so it goes out whenever the broker is reached.
  for (const e of loaded.events) {
    if (e.type !== 'config.fallback') continue;
    events.emit('config', 'error', e.message, { kind: 'config.fallback', file: e.file, issues: e.issues.map((i) => ({ ...i })), lastKnownGood: { ...e.lastKnownGood } });
  }

  let finish!: () => void;
  let fail!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const intake = new ResultIntake({
    sinks: opened,
    maxFrames,
    everyN: config.publish.every_n,
    publish: (result) => {
      // Counted only where there is a broker link to publish on: no link, nothing "published".
      if (!link) return;
      figures?.onPublished();
      link.publishResult(result);
    },
    onFirst: () => saveKnownGood(loaded, log, events),
    onLatency: (ms) => stats.onLatency(ms),
    onResult: (result) => figures?.onResult(result),
    onBad: (message) => events.fromWorker({ type: 'fault', severity: 'warning', message }),
    onLimit: () => finish(),
    onWriteError: (err) => fail(err),
  });

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
      model: serving.current.model,
      precision: serving.current.precision,
      attempt: attempt++,
      maxFrames: intake.remaining(),
      settings,
    }),
  });
  later.supervisor = supervisor;
  workerRestarts = () => supervisor.restarts;
  const rpc = new WorkerRpc({ send: (m) => supervisor.send(m), workerState: () => supervisor.status });
  /** The one threshold path: the fleet's set-threshold command and the live view's slider. */
  const setThreshold = async (value: number, by: string): Promise<unknown> => {
    const r = await rpc.ask('set-threshold', { value });
    // A restarted worker keeps the operator's threshold.
    settings = { ...settings, threshold: value };
    figures?.onThreshold(value);
    events.emit('config', 'info', `threshold set to ${value} by ${by}`);
    return r;
  };
  const ui = options.ui;
  /** Pictures only while someone watches: the worker makes none without a viewer. */
  const askPreviews = (): void => {
    if (ui) supervisor.send({ type: 'preview', fps: (view?.viewerCount ?? 0) > 0 ? ui.maxFps : 0, maxWidth: ui.maxWidth });
  };

  supervisor.on('ready', (report) => {
    serving.report = report;
    figures?.onReady();
    askPreviews();
    log(`worker pid ${supervisor.workerPid ?? '?'} ready: ${report.providers.active[0] ?? '?'} on ${report.source}`);
    for (const f of report.providers.fallbacks) {
      events.fromWorker({ type: 'fallback', severity: 'warning', message: `${f.provider} not used: ${f.reason}`, details: { provider: f.provider, active: report.providers.active, plan: report.plan } });
    }
  });
  supervisor.on('result', (raw) => intake.take(raw));
  supervisor.on('event', (e) => {
    if (e.severity === 'error') lastFault = e.message;
    log(`${e.type}${e.severity === 'info' ? '' : ` (${e.severity})`}: ${e.message}`);
    events.fromWorker(e);
  });
  supervisor.on('stats', (s) => {
    stats.onStats(s);
    figures?.onStats(s);
  });
  supervisor.on('preview', (p) => view?.onPreview(p));
  supervisor.on('stopped', (s) => {
    if (s.reason === 'end') log(`source finished after ${s.frames} result(s) from this worker`);
    finish();
  });
  supervisor.on('fatal', (err) => {
    fail(new Error(lastFault ? `${lastFault}\n(${err.message})` : err.message));
  });
  supervisor.on('reply', (r) => rpc.onReply(r));
  supervisor.on('exit', ({ code, signal }) => {
    figures?.onWorkerExit();
    rpc.onExit(code, signal);
  });

  if (fleet) {
    const ask = (name: string, args: unknown, timeoutMs?: number): Promise<unknown> => rpc.ask(name, args, timeoutMs);
    const updater = new ModelUpdater({
      store: models.store,
      stateDir: config.state_dir,
      trustedKeys: bundleKeys,
      keysHint: options.bundles?.keysHint,
      serving,
      ask,
      killWorker: () => {
        const pid = supervisor.workerPid;
        if (pid === undefined) return false;
        process.kill(pid, 'SIGKILL');
        return true;
      },
      log,
      emitEvent: (type, severity, message, details) => events.emit(type, severity, message, details),
    });
    registerRunCommands(fleet.link, {
      deviceId: fleet.deviceId,
      group: config.device.group,
      serving,
      store: models.store,
      supervisor: () => ({ pid: process.pid, state: supervisor.status, restarts: supervisor.restarts, results: intake.results }),
      ask,
      updater,
      setThreshold,
    });
  }

  if (ui && viewModules && figures) {
    try {
      view = new viewModules.ViewServer({
        listen: ui.listen,
        token: ui.token,
        figures,
        metrics: viewModules.createMetrics(figures),
        setThreshold: (value) => setThreshold(value, 'the live view'),
        onViewers: () => askPreviews(),
        log,
      });
      await view.start();
    } catch (err) {
      figures.close();
      for (const sink of opened) await sink.close().catch(() => undefined);
      await fleet?.link.close(2_000);
      throw new Error(`live view: ${(err as Error).message}`, { cause: err });
    }
  }

  let watcher: ConfigWatcher | undefined;
  if (options.configFile) {
    try {
      watcher = watchConfig(
        options.configFile,
        (change) => {
          if (change.kind === 'rejected') {
            log(`config: change rejected, keeping the running one: ${change.message}`);
            events.fromWorker({ type: 'config', severity: 'warning', message: `config change rejected: ${change.message}` });
            return;
          }
          settings = settingsFromConfig(change.config.config, change.config.origins, settings);
          intake.everyN = change.config.config.publish.every_n;
          supervisor.send({ type: 'update', patch: { ...settings } });
          const restartKeys = change.kind === 'restart-required' ? change.restartKeys : [];
          const message = `config: applied ${change.changed.join(', ')}${restartKeys.length ? `; ${restartKeys.join(', ')} take effect after a restart` : ''}`;
          log(message);
          events.fromWorker({ type: 'config', severity: 'info', message });
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
    await view?.close();
    figures?.close();
    await supervisor.stop();
    rpc.close();
    const writeError = await intake.settled();
    failure ??= writeError;
    for (const sink of opened) await sink.close().catch((err: unknown) => log(`closing ${sink.description}: ${(err as Error).message}`));
    if (fleet) {
      // A run that failed has little to flush (events); the disk queue keeps it for the next start.
      const drainMs = failure ? 2_000 : (options.mqttDrainMs ?? 10_000);
      await fleet.link.drain(drainMs);
      // Taken before close(): a closed store no longer counts what it keeps on disk.
      const final = fleet.link.stats();
      await fleet.link.close(2_000);
      for (const line of deliverySummary(intake.results, intake.everyN, fleet.droppedAtStart, final)) log(line);
    }
    const extra = intake.pastLimit > 0 ? `; ${intake.pastLimit} more from frames in flight at --max-frames were not published` : '';
    log(`${intake.results} result(s), ${supervisor.restarts} worker restart(s)${extra}`);
  }
  if (failure) throw failure;
}
