/**
 * The worker process of `lvunet-edge run` (forked by the Supervisor): it holds ONNX Runtime, the
 * native capture and the pipeline, so a native crash here never takes the supervisor, its MQTT
 * connection or its offline queue down with it. It speaks the JSON IPC protocol of ipc.ts.
 *
 * Exit codes: 0 after `stop` or when the source ends; EXIT_CONFIG (2) when it cannot start for a
 * reason a restart will not fix; 1 on any other failure.
 */
import { readFileSync, rmSync } from 'node:fs';

import type { BundleManifest } from '../fleet/bundles/format.js';
import type { RunModel } from '../fleet/bundles/golden.js';
import { encodePngRgb } from '../image/encode.js';
import type { GrayImage, RgbImage } from '../image/types.js';
import { loadModel, type LoadedModel } from '../runtime/model-loader.js';
import { letterboxOf, Pipeline, type RuntimeSettings } from '../runtime/pipeline/pipeline.js';
import { modelMaskToFrame } from '../runtime/postprocess/model-mask.js';
import type { LetterboxGeometry } from '../image/preprocess.js';
import { createSource } from '../runtime/pipeline/setup.js';
import { MaskDirSink, type ResultSink, type SinkItem } from '../runtime/sinks/index.js';
import type { DroppedFrame, Frame, FrameSource } from '../runtime/sources/types.js';
import { parseSourceSpec } from '../runtime/sources/index.js';
import { decodeJpegFrame, type OnnxRuntime, type OrtSession } from '../runtime/native/runtime.js';
import { isSupervisorMessage, type StartupReport, type SupervisorMessage, type WorkerEvent, type WorkerMessage } from './ipc.js';
import type { WorkerStart } from './run-supervised.js';
import { redactText } from '../util/redact.js';
import { loadRuntime, openConfiguredSession, type PlannedProvider, type SessionConfig } from './session.js';
import { EXIT_CONFIG } from './supervisor.js';

const log = (line: string): void => {
  process.stderr.write(`${redactText(line)}\n`);
};

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) {
      resolve();
      return;
    }
    // The callback fires once the message is handed to the channel: exiting before that loses it.
    process.send(message, undefined, {}, () => resolve());
  });
}

function event(type: string, severity: WorkerEvent['severity'], message: string, details?: Record<string, unknown>): Promise<void> {
  return send({ type: 'event', event: { type, severity, message, ...(details ? { details } : {}) } });
}

async function exit(code: number): Promise<never> {
  await send({ type: 'stats', stats: { frames: processed } });
  process.exit(code);
}

/** Wraps the real source so it can be closed and reopened under a running pipeline, and keeps recent frames for snapshots. */
class ReopenableSource implements FrameSource {
  readonly description: string;
  private inner: FrameSource;
  private wake: (() => void) | undefined;
  private opened = false;
  private lastBeat = 0;

  constructor(private readonly factory: () => FrameSource) {
    this.inner = factory();
    this.description = this.inner.description;
  }

  async open(): Promise<void> {
    if (this.opened) return;
    await this.inner.open();
    this.opened = true;
  }

  async next(): Promise<Frame | null> {
    for (;;) {
      const inner = this.inner;
      // A hung camera never answers next(); reopen() must be able to abandon that wait.
      const reopened = new Promise<'reopened'>((resolve) => {
        this.wake = () => resolve('reopened');
      });
      const got = await Promise.race([inner.next(), reopened]);
      if (got === 'reopened' || inner !== this.inner) continue;
      if (got !== null) this.beat();
      return got;
    }
  }

  private beat(): void {
    const now = Date.now();
    // Frames that are all dropped downstream still prove the camera is alive.
    if (now - this.lastBeat >= 500) {
      this.lastBeat = now;
      void send({ type: 'heartbeat', frames: processed });
    }
  }

  async reopen(): Promise<void> {
    const old = this.inner;
    await old.close().catch((err: unknown) => log(`closing ${old.description}: ${(err as Error).message}`));
    const fresh = this.factory();
    await fresh.open();
    this.inner = fresh;
    this.wake?.();
  }

  async close(): Promise<void> {
    this.wake?.();
    await this.inner.close();
  }
}

/** `TensorRT {device_id=0, trt_fp16_enable=1}, CUDA, CPU`: what the session was asked for. */
function formatPlan(p: readonly PlannedProvider[]): string {
  if (p.length === 0) return '(none: CPU)';
  return p.map((x) => {
    const opts = Object.entries(x.options);
    return opts.length === 0 ? x.name : `${x.name} {${opts.map(([k, v]) => `${k}=${v}`).join(', ')}}`;
  }).join(', ');
}

let processed = 0;
let pipeline: Pipeline | undefined;
let source: ReopenableSource | undefined;
let model: LoadedModel | undefined;
let session: OrtSession | undefined;
let plan: readonly PlannedProvider[] = [];
let runtime: OnnxRuntime | undefined;
let sessionConfig: SessionConfig | undefined;
/** The threshold an operator or the config set; undefined: each model's own (its manifest's). */
let operatorThreshold: number | undefined;
/** A model loaded beside the serving one by `prepare-model`, waiting for its self-test and switch. */
let candidate: { token: string; model: LoadedModel; session: OrtSession; plan: readonly PlannedProvider[] } | undefined;
let stopping = false;
/** The start message, for what later model loads share with the first (the size limit). */
let startConfig: WorkerStart | undefined;
let ortInfo = { version: '', path: '' };
/** The last result, its model-size mask and where the frame sat in the model input (letterbox), for a snapshot. */
let lastSnapshot: { result: SinkItem['result']; maskModel: GrayImage; letterbox: LetterboxGeometry | undefined; frame: Frame | undefined } | undefined;
const fpsWindow: number[] = [];
/**
 * Frames that went into inference and have no result yet, oldest first, for snapshots: a result is
 * a few frames behind capture, and in 'latest' mode some of these are replaced and never finish.
 */
const inFlight = new Map<string, Frame>();
const IN_FLIGHT_LIMIT = 8;

/** Keeps each captured frame for a later snapshot; as a capture hook it leaves the pipeline on its fused native path. */
function keepFrame(frame: Frame): void {
  inFlight.set(frame.id, frame);
  if (inFlight.size > IN_FLIGHT_LIMIT) {
    // The oldest frames are in inference and postprocessing and will have results; the ones after
    // them were replaced in the 'latest' queue and never will. Under load many are replaced
    // between two results, so let go of those rather than of the next result's frame.
    const keys = [...inFlight.keys()];
    inFlight.delete(keys[2]);
  }
}

/** The frame a result came from; frames before it are finished or were replaced. */
function takeFrame(id: string): Frame | undefined {
  const frame = inFlight.get(id);
  if (!frame) return undefined;
  for (const key of [...inFlight.keys()]) {
    inFlight.delete(key);
    if (key === id) break;
  }
  return frame;
}

/** Hands each result to the supervisor, which writes the sinks and publishes. */
class IpcSink implements ResultSink {
  readonly description = 'supervisor';
  async open(): Promise<void> {}
  async write(item: SinkItem): Promise<void> {
    await send({ type: 'result', result: item.result as unknown as Record<string, unknown> });
  }
  async close(): Promise<void> {}
}

function frameToRgb(frame: Frame): RgbImage {
  const { width: w, height: h, data } = frame;
  const out = new Uint8Array(w * h * 3);
  const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);
  if (frame.format === 'RGB24') return { width: w, height: h, data: data.subarray(0, w * h * 3) };
  // A snapshot (on request, not per frame) decodes the JPEG at full size with the same native decoder.
  if (frame.format === 'MJPEG') return decodeJpegFrame(frame, { width: w, height: h });
  if (frame.format === 'RGBA') {
    for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) out[i * 3 + c] = data[i * 4 + c];
  } else if (frame.format === 'YUYV') {
    for (let i = 0; i < w * h; i += 2) {
      const y0 = data[i * 2] - 16, u = data[i * 2 + 1] - 128, y1 = data[i * 2 + 2] - 16, v = data[i * 2 + 3] - 128;
      for (const [k, y] of [[i, y0], [i + 1, y1]] as const) {
        out[k * 3] = clamp(1.164 * y + 1.596 * v);
        out[k * 3 + 1] = clamp(1.164 * y - 0.392 * u - 0.813 * v);
        out[k * 3 + 2] = clamp(1.164 * y + 2.017 * u);
      }
    }
  } else {
    // GREY and NV12 start with a full-resolution luma plane: grey is enough for an overlay.
    for (let i = 0; i < w * h; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = data[i];
  }
  return { width: w, height: h, data: out };
}

/** Box-filter downscale of the (already tinted) overlay by an integer factor: averages k x k blocks. */
function shrink(rgb: Uint8Array, w: number, h: number, k: number): { rgb: Uint8Array; width: number; height: number } {
  const width = Math.max(1, Math.floor(w / k));
  const height = Math.max(1, Math.floor(h / k));
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0, n = 0;
      for (let dy = 0; dy < k && y * k + dy < h; dy++) {
        for (let dx = 0; dx < k && x * k + dx < w; dx++) {
          const i = (y * k + dy) * w + x * k + dx;
          r += rgb[i * 3];
          g += rgb[i * 3 + 1];
          b += rgb[i * 3 + 2];
          n++;
        }
      }
      const o = y * width + x;
      out[o * 3] = Math.round(r / n);
      out[o * 3 + 1] = Math.round(g / n);
      out[o * 3 + 2] = Math.round(b / n);
    }
  }
  return { rgb: out, width, height };
}

/**
 * The snapshot reply: a PNG overlay of the last frame, base64. `maxBytes` (from the supervisor:
 * the broker's limit less the reply envelope) caps the base64 text; a frame whose overlay does
 * not fit is scaled down by the smallest integer factor that fits, and the reply says so
 * (`scale`, `sourceWidth`, `sourceHeight`). Scaling, not parts: one message any dashboard can
 * show as is, that never holds the link for longer than one reply.
 */
function snapshot(args: unknown): Record<string, unknown> {
  const maxBytes = (args as { maxBytes?: unknown } | null)?.maxBytes;
  if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !(maxBytes > 0))) throw new TypeError('snapshot maxBytes must be a positive number');
  if (!lastSnapshot) throw new Error('no frame processed yet');
  const { result, maskModel, letterbox, frame } = lastSnapshot;
  if (!frame) throw new Error(`frame ${result.frame.id} is no longer held`);
  // Drawn from the model-size mask on request: the frame-size mask stays native for every frame.
  const mask = modelMaskToFrame(maskModel, frame, letterbox);
  const rgb = frameToRgb(frame);
  const data = Uint8Array.from(rgb.data);
  // Foreground tinted red at half strength: the frame stays recognisable under the mask.
  for (let i = 0; i < mask.data.length; i++) {
    if (mask.data[i]) {
      data[i * 3] = (data[i * 3] + 255) >> 1;
      data[i * 3 + 1] >>= 1;
      data[i * 3 + 2] >>= 1;
    }
  }
  const base = { frame: result.frame.id, coverage: result.coverage, mimeType: 'image/png' };
  let png = encodePngRgb({ width: rgb.width, height: rgb.height, data }).toString('base64');
  if (maxBytes === undefined || png.length <= maxBytes) return { ...base, width: rgb.width, height: rgb.height, png };
  // PNG size falls roughly with the pixel count: start at the factor that predicts, go up until it fits.
  for (let k = Math.max(2, Math.floor(Math.sqrt(png.length / maxBytes))); k <= Math.max(rgb.width, rgb.height); k++) {
    const small = shrink(data, rgb.width, rgb.height, k);
    png = encodePngRgb({ width: small.width, height: small.height, data: small.rgb }).toString('base64');
    if (png.length <= maxBytes) {
      return { ...base, width: small.width, height: small.height, scale: 1 / k, sourceWidth: rgb.width, sourceHeight: rgb.height, png };
    }
  }
  throw new Error(`a snapshot does not fit in ${maxBytes} bytes even at 1 pixel`);
}

function currentFps(): number {
  const now = Date.now();
  while (fpsWindow.length > 0 && now - fpsWindow[0] > 5000) fpsWindow.shift();
  if (fpsWindow.length < 2) return 0;
  return Math.round(((fpsWindow.length - 1) * 1000 * 10) / Math.max(1, fpsWindow[fpsWindow.length - 1] - fpsWindow[0])) / 10;
}

/** An error that tells the supervisor which model-update step failed and on which file. */
function stepError(step: 'hash' | 'load' | 'self-test' | 'switch', reason: string, file?: string): Error {
  return Object.assign(new Error(reason), { details: { step, ...(file === undefined ? {} : { file }) } });
}

function describeModel(m: LoadedModel): Record<string, unknown> {
  return { path: m.path, sha256: m.sha256, precision: m.precision, inputSize: [m.height, m.width], threshold: m.threshold };
}

function stringArg(args: unknown, key: string, optional = false): string | undefined {
  const v = (args as Record<string, unknown> | null)?.[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new TypeError(`argument ${key} must be a non-empty string`);
  return v;
}

function releaseCandidate(): void {
  const c = candidate;
  candidate = undefined;
  c?.session.release();
}

function candidateFor(token: string): NonNullable<typeof candidate> {
  if (!candidate || candidate.token !== token) throw new Error(`no model prepared under ${token} (a newer prepare replaced it, or this worker restarted)`);
  return candidate;
}

/**
 * Loads a model beside the serving one (the pipeline keeps running on the old session) and runs it
 * once on a blank input: a model that loads but cannot run fails here, and the first frame after
 * the switch does not pay for ONNX Runtime's lazy initialisation.
 */
async function prepareModel(args: unknown): Promise<unknown> {
  const token = stringArg(args, 'token') as string;
  const path = stringArg(args, 'path') as string;
  const sha256 = stringArg(args, 'sha256', true);
  const precision = stringArg(args, 'precision', true);
  if (!pipeline || !runtime || !sessionConfig) throw new Error('the pipeline is not running yet: try again once the worker is ready');
  releaseCandidate();
  const started = Date.now();
  const loaded = loadModel(path, { maxBytes: startConfig?.maxModelBytes });
  if (sha256 !== undefined && loaded.sha256 !== sha256) throw stepError('hash', `model sha256 is ${loaded.sha256}, the command expects ${sha256}`, path);
  if (precision !== undefined && loaded.precision !== precision) throw stepError('load', `model is ${loaded.precision}, the command expects ${precision}`, path);
  const next = operatorThreshold === undefined ? loaded : { ...loaded, threshold: operatorThreshold };
  const opened = await openConfiguredSession(runtime, next, sessionConfig);
  const loadMs = Date.now() - started;
  try {
    const out = await opened.session.run(new Float32Array(3 * next.height * next.width), [1, 3, next.height, next.width]);
    if (out.data.length !== next.width * next.height) throw new Error(`output [${out.dims.join(', ')}] is not one ${next.height}x${next.width} logit map`);
  } catch (err) {
    opened.session.release();
    throw stepError('load', `the model loads but does not run: ${(err as Error).message}`, path);
  }
  candidate = { token, model: next, session: opened.session, plan: opened.plan };
  log(`model ${path} loaded beside the serving one in ${loadMs} ms (sha256 ${next.sha256}, ${opened.session.providers.active[0] ?? '?'})`);
  return { model: describeModel(next), providers: opened.session.providers, plan: opened.plan, loadMs, warmupMs: Date.now() - started - loadMs };
}

/** The golden self-test on the prepared session itself: the one that will serve, with this device's providers. */
async function selfTestModel(args: unknown): Promise<unknown> {
  const token = stringArg(args, 'token') as string;
  const dir = stringArg(args, 'dir') as string;
  const manifest = (args as { manifest?: unknown } | null)?.manifest;
  if (typeof manifest !== 'object' || manifest === null) throw new TypeError('argument manifest must be a bundle manifest');
  const c = candidateFor(token);
  // Loaded here, not at start-up: image decoding is only needed for model updates.
  const { runSelfTest, logitsToMask } = await import('../fleet/bundles/golden.js');
  const { BundleError } = await import('../fleet/bundles/errors.js');
  const { preprocessRgb } = await import('../image/preprocess.js');
  const run: RunModel = async (_path, frames, info) => {
    const masks: GrayImage[] = [];
    for (const frame of frames) {
      const input = preprocessRgb(frame, { width: info.width, height: info.height });
      const out = await c.session.run(input, [1, 3, info.height, info.width]);
      masks.push(logitsToMask(out.data, info.width, info.height, info.threshold));
    }
    return masks;
  };
  try {
    return (await runSelfTest(dir, manifest as BundleManifest, run)) ?? null;
  } catch (err) {
    if (err instanceof BundleError) throw stepError(err.step === 'load' ? 'load' : 'self-test', err.reason, err.file);
    throw err;
  }
}

/** Switches the running pipeline to the prepared model between two frames, then releases the old session. */
async function commitModel(args: unknown): Promise<unknown> {
  const token = stringArg(args, 'token') as string;
  const c = candidateFor(token);
  const p = pipeline;
  if (!p) throw new Error('the pipeline is not running');
  const started = Date.now();
  const { framesLost } = await p.swapModel(c.session, c.model);
  const old = session;
  candidate = undefined;
  model = c.model;
  session = c.session;
  plan = c.plan;
  // Deterministic whatever swapModel does with thresholds: the new model's own unless one was set.
  p.update({ threshold: c.model.threshold });
  old?.release();
  const switchMs = Date.now() - started;
  log(`now serving ${c.model.path} (sha256 ${c.model.sha256}); ${framesLost} frame(s) lost during the switch (${switchMs} ms)`);
  return { framesLost, switchMs, model: describeModel(c.model), providers: c.session.providers, plan };
}

/**
 * Test hook for the crash drills: when $LVUNET_TEST_WORKER_CRASH names a file holding a command
 * name, the worker dies by signal on receiving that command, once (the file is removed), as a
 * native crash inside ONNX Runtime would kill it.
 */
function crashDrill(name: string): void {
  const file = process.env.LVUNET_TEST_WORKER_CRASH;
  if (!file) return;
  let wanted: string;
  try {
    wanted = readFileSync(file, 'utf8').trim();
  } catch {
    return;
  }
  if (wanted !== name) return;
  rmSync(file, { force: true });
  log(`crash drill: dying on ${name}`);
  process.kill(process.pid, 'SIGKILL');
}

async function command(name: string, args: unknown): Promise<unknown> {
  crashDrill(name);
  switch (name) {
    case 'prepare-model':
      return prepareModel(args);
    case 'self-test-model':
      return selfTestModel(args);
    case 'commit-model':
      return commitModel(args);
    case 'abort-model': {
      const token = stringArg(args, 'token') as string;
      const held = candidate?.token === token;
      if (held) releaseCandidate();
      return { released: held };
    }
    case 'status':
      return {
        pid: process.pid,
        model: model ? describeModel(model) : null,
        provider: session?.providers.active[0] ?? null,
        providers: session?.providers ?? null,
        plan,
        fps: currentFps(),
        frames: processed,
        settings: pipeline?.settings() ?? null,
      };
    case 'snapshot':
      return snapshot(args);
    case 'set-threshold': {
      const value = (args as { value?: unknown } | null)?.value;
      if (typeof value !== 'number') throw new TypeError('set-threshold needs a numeric value');
      if (!pipeline) throw new Error('the pipeline is not running yet');
      pipeline.update({ threshold: value });
      operatorThreshold = value;
      return { threshold: value };
    }
    default:
      throw new Error(`command ${name} is not handled by the worker`);
  }
}

async function start(config: WorkerStart): Promise<void> {
  try {
    startConfig = config;
    const loaded = loadModel(config.model, { precision: config.precision, maxBytes: config.maxModelBytes });
    operatorThreshold = config.settings.threshold;
    model = operatorThreshold === undefined ? loaded : { ...loaded, threshold: operatorThreshold };
    sessionConfig = config.session;
    runtime = loadRuntime(config.ortLibrary);
    const opened = await openConfiguredSession(runtime, model, config.session);
    session = opened.session;
    plan = opened.plan;
    const { info } = runtime;
    ortInfo = { version: info.version, path: info.path };
    const p = session.providers;
    log(`ONNX Runtime ${info.version} (C API ${info.apiVersion}) from ${info.path}`);
    log(`provider plan: ${formatPlan(plan)}`);
    log(`providers: requested ${p.requested.length ? p.requested.join(', ') : '(none: CPU)'}; active ${p.active.join(', ')}`);
    for (const f of p.fallbacks) log(`  fallback: ${f.provider} not used: ${f.reason}`);
    log(`model ${model.path} (${model.precision}, sha256 ${model.sha256}, described by ${model.describedBy})`);
    const threads = config.session.runtime.threads;
    log(`input ${model.inputName} 1x3x${model.height}x${model.width}, intra-op threads ${threads || 'ONNX Runtime default'}, threshold ${model.threshold}`);
  } catch (err) {
    await event('fault', 'error', (err as Error).message, { stage: 'start', code: (err as { code?: unknown }).code ?? null });
    return exit(EXIT_CONFIG);
  }

  let onDrop: (drop: DroppedFrame) => void = () => {};
  try {
    const spec = parseSourceSpec(config.source);
    const src = new ReopenableSource(() => createSource(spec, { ...config.sourceOptions, onDrop: (d) => onDrop(d) }));
    await src.open();
    source = src;
  } catch (err) {
    // A source that was never there is a configuration problem; one that vanished after a crash may come back.
    await event('fault', 'error', `source ${config.source}: ${(err as Error).message}`, { stage: 'source' });
    return exit(config.attempt === 0 ? EXIT_CONFIG : 1);
  }

  const report: StartupReport = {
    ortVersion: ortInfo.version,
    ortLibrary: ortInfo.path,
    providers: session.providers,
    plan,
    model: { path: model.path, sha256: model.sha256, precision: model.precision, inputSize: [model.height, model.width] },
    source: source.description,
  };
  const sinks: ResultSink[] = [new IpcSink()];
  if (config.saveMasks) sinks.push(new MaskDirSink(config.saveMasks));
  const src = source;
  pipeline = new Pipeline({
    createSource: (drop) => {
      onDrop = drop;
      return src;
    },
    session,
    model,
    sinks,
    mode: config.queue,
    fit: config.fit,
    onCapture: keepFrame,
    postprocess: { rle: config.settings.rle, contours: config.settings.contours, minArea: config.settings.minArea },
    log,
    onResult: (result, summary) => {
      processed++;
      // --max-frames counts results: under 'latest' queues some captured frames never become one.
      if (config.maxFrames !== undefined && processed >= config.maxFrames) pipeline?.stop();
      fpsWindow.push(Date.now());
      if (fpsWindow.length > 300) fpsWindow.shift();
      const frame = takeFrame(result.frame.id);
      lastSnapshot = { result, maskModel: summary.maskModel, letterbox: config.fit === 'letterbox' && frame ? letterboxOf(frame, summary.maskModel) : undefined, frame };
    },
  });
  await send({ type: 'ready', report });
  if (stopping || config.maxFrames === 0) pipeline.stop();
  const statsTimer = setInterval(() => {
    void send({ type: 'stats', stats: { frames: processed, fps: currentFps() } });
  }, 1000);
  try {
    const result = await pipeline.run();
    clearInterval(statsTimer);
    // Loaded only now: the CLI module graph would slow every worker start (and so every restart).
    const { formatReport } = await import('../cli/run-command.js');
    for (const line of formatReport(result)) log(line);
    await send({ type: 'stats', stats: { frames: processed, fps: result.fps, drops: result.drops.total, final: true } });
    await send({ type: 'stopped', frames: processed, reason: stopping ? 'stop' : 'end' });
    releaseCandidate();
    session?.release();
    process.exit(0);
  } catch (err) {
    clearInterval(statsTimer);
    await event('fault', 'error', `pipeline failed: ${(err as Error).message}`, { stage: 'run' });
    return exit(1);
  }
}

async function handle(m: unknown): Promise<void> {
  if (!isSupervisorMessage(m)) {
    await event('fault', 'warning', 'worker got a malformed IPC message');
    return;
  }
  const msg: SupervisorMessage = m;
  switch (msg.type) {
    case 'start':
      await start(msg.config as WorkerStart);
      break;
    case 'update':
      try {
        const patch = msg.patch as RuntimeSettings;
        pipeline?.update(patch);
        if (patch.threshold !== undefined) operatorThreshold = patch.threshold;
        await event('config', 'info', `applied ${Object.keys(msg.patch).join(', ')}`, { settings: pipeline?.settings() ?? null });
      } catch (err) {
        await event('config', 'warning', `update refused: ${(err as Error).message}`);
      }
      break;
    case 'reopen-source':
      try {
        await source?.reopen();
        await event('source', 'info', `reopened ${source?.description ?? 'the source'}`);
      } catch (err) {
        await event('fault', 'error', `reopening the source failed: ${(err as Error).message}`);
      }
      break;
    case 'command':
      try {
        await send({ type: 'reply', id: msg.id, ok: true, result: await command(msg.name, msg.args) });
      } catch (err) {
        const details = (err as { details?: Record<string, unknown> }).details;
        await send({ type: 'reply', id: msg.id, ok: false, error: (err as Error).message, ...(details ? { details } : {}) });
      }
      break;
    case 'stop':
      stopping = true;
      if (pipeline) pipeline.stop();
      else process.exit(0);
      break;
  }
}

// Handled on the next turn: Node 20 crashes (child_process.js:732) if a handler for a message that
// was queued before the listener existed disconnects the channel synchronously.
process.on('message', (m: unknown) => setImmediate(() => void handle(m)));
// The supervisor going away (killed with SIGKILL) must not leave an orphan holding the camera.
process.on('disconnect', () => {
  stopping = true;
  pipeline?.stop();
  setTimeout(() => process.exit(0), 5000).unref();
});
// systemd sends SIGTERM to the whole control group; the supervisor's `stop` drives our shutdown.
process.on('SIGTERM', () => {});
process.on('SIGINT', () => {});
