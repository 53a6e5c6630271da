/**
 * The worker's state and its answers to the supervisor: start (model, session, source, pipeline),
 * config updates, source reopening, commands, stop. Its process (IPC channel, exit, signals) is
 * injected by worker-main.ts, so nothing here lives in module-level state.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { loadModel, type LoadedModel } from '../../runtime/model-loader.js';
import { letterboxOf, Pipeline, type RuntimeSettings } from '../../runtime/pipeline/pipeline.js';
import { createSource } from '../../runtime/pipeline/setup.js';
import { MaskDirSink, type ResultSink, type SinkItem } from '../../runtime/sinks/index.js';
import type { DroppedFrame } from '../../runtime/sources/types.js';
import { parseSourceSpec } from '../../runtime/sources/index.js';
import { isSupervisorMessage, type StartupReport, type SupervisorMessage, type WorkerEvent, type WorkerMessage } from '../ipc.js';
import type { WorkerStart } from '../run-supervised.js';
import { loadRuntime, openConfiguredSession, type PlannedProvider } from '../session.js';
import { EXIT_CONFIG } from '../supervisor.js';
import { FpsWindow, InFlightFrames } from './frames.js';
import { describeModel, ModelSwap, stringArg } from './model-swap.js';
import { ReopenableSource } from './reopenable-source.js';
import { OverlayFiles } from './overlay-files.js';
import { PreviewMaker } from './preview.js';
import { renderSnapshot, type SnapshotSource } from './snapshot.js';

export interface WorkerProcess {
  /** Resolves once the message is handed to the channel: exiting before that loses it. */
  readonly send: (message: WorkerMessage) => Promise<void>;
  readonly exit: (code: number) => void;
  readonly log: (line: string) => void;
  readonly pid: number;
}

/** `TensorRT {device_id=0, trt_fp16_enable=1}, CUDA, CPU`: what the session was asked for. */
export function formatPlan(p: readonly PlannedProvider[]): string {
  if (p.length === 0) return '(none: CPU)';
  return p.map((x) => {
    const opts = Object.entries(x.options);
    return opts.length === 0 ? x.name : `${x.name} {${opts.map(([k, v]) => `${k}=${v}`).join(', ')}}`;
  }).join(', ');
}

/** Hands each result to the supervisor, which writes the sinks and publishes. */
class IpcSink implements ResultSink {
  readonly description = 'supervisor';
  constructor(private readonly send: (message: WorkerMessage) => Promise<void>) {}
  async open(): Promise<void> {}
  async write(item: SinkItem): Promise<void> {
    await this.send({ type: 'result', result: item.result as unknown as Record<string, unknown> });
  }
  async close(): Promise<void> {}
}

export class Worker {
  private processed = 0;
  private stopping = false;
  private pipeline: Pipeline | undefined;
  private source: ReopenableSource | undefined;
  /** The model being started, before its session exists (for status during start-up). */
  private startModel: LoadedModel | undefined;
  /** The serving session and the candidate beside it; set once the first session is open. */
  private swap: ModelSwap | undefined;
  /** The threshold an operator or the config set; undefined: each model's own (its manifest's). */
  private operatorThreshold: number | undefined;
  private lastSnapshot: SnapshotSource | undefined;
  private readonly frames = new InFlightFrames();
  private readonly fps = new FpsWindow();
  private readonly preview: PreviewMaker;

  constructor(private readonly proc: WorkerProcess) {
    this.preview = new PreviewMaker((m) => proc.send(m), proc.log);
  }

  /** One IPC message from the supervisor. */
  async handle(m: unknown): Promise<void> {
    if (!isSupervisorMessage(m)) {
      await this.event('fault', 'warning', 'worker got a malformed IPC message');
      return;
    }
    const msg: SupervisorMessage = m;
    switch (msg.type) {
      case 'start':
        await this.start(msg.config as WorkerStart);
        break;
      case 'update':
        try {
          const patch = msg.patch as RuntimeSettings;
          this.pipeline?.update(patch);
          if (patch.threshold !== undefined) this.operatorThreshold = patch.threshold;
          await this.event('config', 'info', `applied ${Object.keys(msg.patch).join(', ')}`, { settings: this.pipeline?.settings() ?? null });
        } catch (err) {
          await this.event('config', 'warning', `update refused: ${(err as Error).message}`);
        }
        break;
      case 'preview':
        this.preview.set({ fps: msg.fps, maxWidth: msg.maxWidth });
        break;
      case 'reopen-source':
        try {
          await this.source?.reopen();
          await this.event('source', 'info', `reopened ${this.source?.description ?? 'the source'}`);
        } catch (err) {
          await this.event('fault', 'error', `reopening the source failed: ${(err as Error).message}`);
        }
        break;
      case 'command':
        try {
          await this.proc.send({ type: 'reply', id: msg.id, ok: true, result: await this.command(msg.name, msg.args) });
        } catch (err) {
          const details = (err as { details?: Record<string, unknown> }).details;
          await this.proc.send({ type: 'reply', id: msg.id, ok: false, error: (err as Error).message, ...(details ? { details } : {}) });
        }
        break;
      case 'stop':
        this.stopping = true;
        if (this.pipeline) this.pipeline.stop();
        else this.proc.exit(0);
        break;
    }
  }

  /** The supervisor went away (killed with SIGKILL): stop capture rather than hold the camera as an orphan. */
  onDisconnect(): void {
    this.stopping = true;
    this.pipeline?.stop();
  }

  async command(name: string, args: unknown): Promise<unknown> {
    switch (name) {
      case 'prepare-model':
        if (!this.swap) throw new Error('the pipeline is not running yet: try again once the worker is ready');
        return this.swap.prepare(args, this.operatorThreshold, this.pipeline !== undefined);
      case 'self-test-model':
        if (!this.swap) throw new Error('no model prepared (this worker has not started)');
        return this.swap.selfTest(args);
      case 'commit-model':
        if (!this.swap) throw new Error('the pipeline is not running');
        return this.swap.commit(args, this.pipeline);
      case 'abort-model':
        if (!this.swap) return (stringArg(args, 'token'), { released: false });
        return this.swap.abort(args);
      case 'status': {
        const serving = this.swap?.serving;
        const model = serving?.model ?? this.startModel;
        return {
          pid: this.proc.pid,
          model: model ? describeModel(model) : null,
          provider: serving?.session.providers.active[0] ?? null,
          providers: serving?.session.providers ?? null,
          plan: serving?.plan ?? [],
          fps: this.fps.current(),
          frames: this.processed,
          settings: this.pipeline?.settings() ?? null,
        };
      }
      case 'snapshot':
        return renderSnapshot(this.lastSnapshot, args);
      case 'set-threshold': {
        const value = (args as { value?: unknown } | null)?.value;
        if (typeof value !== 'number') throw new TypeError('set-threshold needs a numeric value');
        if (!this.pipeline) throw new Error('the pipeline is not running yet');
        this.pipeline.update({ threshold: value });
        this.operatorThreshold = value;
        return { threshold: value };
      }
      default:
        throw new Error(`command ${name} is not handled by the worker`);
    }
  }

  private event(type: string, severity: WorkerEvent['severity'], message: string, details?: Record<string, unknown>): Promise<void> {
    return this.proc.send({ type: 'event', event: { type, severity, message, ...(details ? { details } : {}) } });
  }

  private async exit(code: number): Promise<void> {
    await this.proc.send({ type: 'stats', stats: { frames: this.processed } });
    this.proc.exit(code);
  }

  private async start(config: WorkerStart): Promise<void> {
    const log = this.proc.log;
    let swap: ModelSwap;
    let ortInfo: { version: string; path: string };
    try {
      const loaded = loadModel(config.model, { precision: config.precision, maxBytes: config.maxModelBytes });
      this.operatorThreshold = config.settings.threshold;
      const model = this.operatorThreshold === undefined ? loaded : { ...loaded, threshold: this.operatorThreshold };
      this.startModel = model;
      const runtime = loadRuntime(config.ortLibrary);
      const opened = await openConfiguredSession(runtime, model, config.session);
      swap = new ModelSwap(runtime, config.session, config.maxModelBytes, { model, session: opened.session, plan: opened.plan }, log);
      this.swap = swap;
      const { info } = runtime;
      ortInfo = { version: info.version, path: info.path };
      const p = opened.session.providers;
      log(`ONNX Runtime ${info.version} (C API ${info.apiVersion}) from ${info.path}`);
      log(`provider plan: ${formatPlan(opened.plan)}`);
      log(`providers: requested ${p.requested.length ? p.requested.join(', ') : '(none: CPU)'}; active ${p.active.join(', ')}`);
      for (const f of p.fallbacks) log(`  fallback: ${f.provider} not used: ${f.reason}`);
      log(`model ${model.path} (${model.precision}, sha256 ${model.sha256}, described by ${model.describedBy})`);
      const threads = config.session.runtime.threads;
      log(`input ${model.inputName} 1x3x${model.height}x${model.width}, intra-op threads ${threads || 'ONNX Runtime default'}, threshold ${model.threshold}`);
    } catch (err) {
      await this.event('fault', 'error', (err as Error).message, { stage: 'start', code: (err as { code?: unknown }).code ?? null });
      return this.exit(EXIT_CONFIG);
    }

    let onDrop: (drop: DroppedFrame) => void = () => {};
    let src: ReopenableSource;
    try {
      const spec = parseSourceSpec(config.source);
      src = new ReopenableSource(
        () => createSource(spec, { ...config.sourceOptions, onDrop: (d) => onDrop(d) }),
        () => void this.proc.send({ type: 'heartbeat', frames: this.processed }),
        log,
      );
      await src.open();
      this.source = src;
    } catch (err) {
      // A source that was never there is a configuration problem; one that vanished after a crash may come back.
      await this.event('fault', 'error', `source ${config.source}: ${(err as Error).message}`, { stage: 'source' });
      return this.exit(config.attempt === 0 ? EXIT_CONFIG : 1);
    }

    const { model, session, plan } = swap.serving;
    const report: StartupReport = {
      ortVersion: ortInfo.version,
      ortLibrary: ortInfo.path,
      providers: session.providers,
      plan,
      model: { path: model.path, ...(model.name !== undefined ? { name: model.name } : {}), sha256: model.sha256, precision: model.precision, inputSize: [model.height, model.width] },
      source: src.description,
    };
    let overlays: OverlayFiles | undefined;
    try {
      overlays = config.saveOverlays ? new OverlayFiles(config.saveOverlays, (message) => void this.event('fault', 'warning', message)) : undefined;
    } catch (err) {
      await this.event('fault', 'error', (err as Error).message, { stage: 'start' });
      return this.exit(EXIT_CONFIG);
    }
    const sinks: ResultSink[] = [new IpcSink(this.proc.send)];
    if (config.saveMasks) sinks.push(new MaskDirSink(config.saveMasks));
    const pipeline = new Pipeline({
      createSource: (drop) => {
        onDrop = drop;
        return src;
      },
      session,
      model,
      sinks,
      mode: config.queue,
      fit: config.fit,
      onCapture: (frame) => this.frames.keep(frame),
      postprocess: { rle: config.settings.rle, contours: config.settings.contours, minArea: config.settings.minArea },
      log,
      onResult: (result, summary) => {
        this.processed++;
        // --max-frames counts results: under 'latest' queues some captured frames never become one.
        if (config.maxFrames !== undefined && this.processed >= config.maxFrames) this.pipeline?.stop();
        this.fps.record();
        const frame = this.frames.take(result.frame.id);
        this.lastSnapshot = {
          result,
          maskModel: summary.maskModel,
          letterbox: config.fit === 'letterbox' && frame ? letterboxOf(frame, summary.maskModel) : undefined,
          frame,
        };
        this.preview.offer(this.lastSnapshot);
        overlays?.write(this.lastSnapshot);
      },
    });
    this.pipeline = pipeline;
    await this.proc.send({ type: 'ready', report });
    if (this.stopping || config.maxFrames === 0) pipeline.stop();
    // The worker's own event-loop delay, reported per stats interval (the live view and /metrics
    // show it beside the supervisor's): what a preview or a busy JS thread costs the pipeline.
    const lag = monitorEventLoopDelay({ resolution: 1 });
    lag.enable();
    const statsTimer = setInterval(() => {
      const live = pipeline.live();
      const ms = (ns: number): number => Math.round(ns / 1e3) / 1e3;
      const loopLagMs = { p50: ms(lag.percentile(50)), p99: ms(lag.percentile(99)), max: ms(lag.max) };
      lag.reset();
      void this.proc.send({
        type: 'stats',
        stats: { frames: this.processed, fps: this.fps.current(), threshold: pipeline.settings().threshold, captured: live.captured, drops: live.drops.total, dropsByReason: live.drops.byReason, loopLagMs, previews: this.preview.sent },
      });
    }, 1000);
    try {
      const result = await pipeline.run();
      clearInterval(statsTimer);
      lag.disable();
      await overlays?.settled();
      // Loaded only now: the CLI module graph would slow every worker start (and so every restart).
      const { formatReport } = await import('../../cli/run-command.js');
      for (const line of formatReport(result)) log(line);
      await this.proc.send({ type: 'stats', stats: { frames: this.processed, fps: result.fps, drops: result.drops.total, final: true } });
      await this.proc.send({ type: 'stopped', frames: this.processed, reason: this.stopping ? 'stop' : 'end' });
      swap.release();
      swap.serving.session.release();
      this.proc.exit(0);
    } catch (err) {
      clearInterval(statsTimer);
      lag.disable();
      await this.event('fault', 'error', `pipeline failed: ${(err as Error).message}`, { stage: 'run' });
      return this.exit(1);
    }
  }
}
