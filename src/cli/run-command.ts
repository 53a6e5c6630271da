/** `lvunet-edge run`: the inference pipeline from a source to sinks, with a start-up report on stderr. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { loadConfig, type Config, type ProviderSpec } from '../config/index.js';
import { buildModelDir, seededModelWeights } from '../model/build.js';
import { packageRoot } from '../runtime/native/binding.js';
import { runSupervised, settingsFromConfig, type UiOptions } from '../supervisor/run-supervised.js';
import { parseListen } from '../view/listen.js';

import type { Precision } from '../model/manifest.js';
import type { Fit } from '../runtime/native/binding.js';
import { loadModel, PRECISIONS, type LoadedModel } from '../runtime/model-loader.js';
import { createSource, openSession, parseProviders, Pipeline, type PipelineReport, type QueueMode, type SessionSetup } from '../runtime/pipeline/index.js';
import { createSink, MaskDirSink, parseSinkSpec, type ResultSink } from '../runtime/sinks/index.js';
import { parsePixelFormat } from '../runtime/sources/raw-file-source.js';
import { parseSourceSpec, type SourceSpec } from '../runtime/sources/index.js';
import type { SourceFactoryOptions } from '../runtime/sources/index.js';
import { UsageError } from './errors.js';
import { RUN_USAGE } from './usage.js';
import { registerSecret } from '../util/redact.js';

export const PIPELINE_ARG_OPTIONS = {
  model: { type: 'string' },
  precision: { type: 'string' },
  source: { type: 'string' },
  ep: { type: 'string' },
  strict: { type: 'boolean', default: false },
  threads: { type: 'string' },
  fps: { type: 'string' },
  width: { type: 'string' },
  height: { type: 'string' },
  format: { type: 'string' },
  fit: { type: 'string', default: 'stretch' },
  queue: { type: 'string' },
  loops: { type: 'string' },
  threshold: { type: 'string' },
  'max-frame-mp': { type: 'string' },
} as const;

export interface PipelineArgs {
  model: string;
  precision?: Precision;
  source: SourceSpec;
  sourceText: string;
  providers: string[];
  strict: boolean;
  threads: number;
  fps?: number;
  width?: number;
  height?: number;
  format?: ReturnType<typeof parsePixelFormat>;
  fit: Fit;
  queue?: QueueMode;
  loops?: number;
  threshold?: number;
  /** Largest model file read (config model.max_bytes); default the loader's. */
  maxModelBytes?: number;
  /** Largest frame a file or folder source accepts, megapixels (sources/limits.ts; default 36). */
  maxFrameMp?: number;
}

/**
 * The pipeline's JS thread needs a core of its own for preprocessing and postprocessing; ONNX Runtime's
 * default (a spinning thread per core) takes them all, so on 2 cores the stages stop overlapping.
 */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

export function intArg(flag: string, text: string | undefined, usage: string, min = 0): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isInteger(v) || v < min) throw new UsageError(`${flag} ${JSON.stringify(text)} is not an integer >= ${min}`, usage);
  return v;
}

type PipelineValues = { [K in keyof typeof PIPELINE_ARG_OPTIONS]?: (typeof PIPELINE_ARG_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

export function parsePipelineArgs(values: PipelineValues, usage: string): PipelineArgs {
  if (!values.model) throw new UsageError('--model DIR|FILE is required', usage);
  if (!values.source) throw new UsageError('--source is required', usage);
  let source: SourceSpec;
  try {
    source = parseSourceSpec(values.source);
  } catch (err) {
    throw new UsageError((err as Error).message, usage);
  }
  if (values.precision !== undefined && !PRECISIONS.includes(values.precision as Precision)) {
    throw new UsageError(`--precision ${JSON.stringify(values.precision)}: use ${PRECISIONS.join(', ')}`, usage);
  }
  if (values.fit !== 'stretch' && values.fit !== 'letterbox') throw new UsageError(`--fit ${JSON.stringify(values.fit)}: use stretch or letterbox`, usage);
  if (values.queue !== undefined && values.queue !== 'latest' && values.queue !== 'backpressure') {
    throw new UsageError(`--queue ${JSON.stringify(values.queue)}: use latest or backpressure`, usage);
  }
  let format: PipelineArgs['format'];
  if (values.format !== undefined) {
    try {
      format = parsePixelFormat(values.format);
    } catch (err) {
      throw new UsageError(`--format: ${(err as Error).message}`, usage);
    }
  }
  let providers: string[] = [];
  if (values.ep !== undefined) {
    try {
      providers = parseProviders(values.ep);
    } catch (err) {
      throw new UsageError((err as Error).message, usage);
    }
  }
  const threshold = values.threshold === undefined ? undefined : Number(values.threshold);
  if (threshold !== undefined && !(values.threshold?.trim() !== '' && threshold >= 0 && threshold <= 1)) {
    throw new UsageError(`--threshold ${JSON.stringify(values.threshold)} is not a number in [0, 1]`, usage);
  }
  const fps = values.fps === undefined ? undefined : Number(values.fps);
  if (fps !== undefined && !(fps > 0 && Number.isFinite(fps))) throw new UsageError(`--fps ${JSON.stringify(values.fps)} is not a positive number`, usage);
  const maxFrameMp = values['max-frame-mp'] === undefined ? undefined : Number(values['max-frame-mp']);
  if (maxFrameMp !== undefined && !(maxFrameMp > 0 && Number.isFinite(maxFrameMp))) {
    throw new UsageError(`--max-frame-mp ${JSON.stringify(values['max-frame-mp'])} is not a positive number`, usage);
  }
  return {
    model: values.model,
    precision: values.precision as Precision | undefined,
    source,
    sourceText: values.source,
    providers,
    strict: values.strict ?? false,
    threads: intArg('--threads', values.threads, usage) ?? defaultThreads(),
    fps,
    width: intArg('--width', values.width, usage, 1),
    height: intArg('--height', values.height, usage, 1),
    format,
    fit: values.fit,
    queue: values.queue as QueueMode | undefined,
    loops: intArg('--loops', values.loops, usage, 1),
    threshold,
    maxFrameMp,
  };
}

/** Live sources and paced replay keep the newest frame; replay as fast as possible waits instead of dropping. */
export function queueModeFor(args: PipelineArgs): QueueMode {
  return args.queue ?? (args.source.kind === 'v4l2' || args.fps !== undefined ? 'latest' : 'backpressure');
}

export function sourceOptions(args: PipelineArgs, extra: SourceFactoryOptions = {}): SourceFactoryOptions {
  if (args.source.kind === 'synthetic' && args.format !== undefined && args.format !== 'RGB24' && args.format !== 'YUYV') {
    throw new UsageError(`synthetic frames are rgb24 or yuyv, not ${args.format.toLowerCase()}`);
  }
  return {
    fps: args.fps,
    loops: args.loops,
    width: args.width,
    height: args.height,
    format: args.format as SourceFactoryOptions['format'],
    ...(args.maxFrameMp !== undefined ? { maxFramePixels: Math.round(args.maxFrameMp * 1e6) } : {}),
    ...extra,
  };
}

/** Model, ONNX Runtime and session, with the start-up report; the first failure names its file. */
export async function setUp(args: PipelineArgs, log: (line: string) => void): Promise<{ model: LoadedModel } & SessionSetup> {
  const loaded = loadModel(args.model, { precision: args.precision, maxBytes: args.maxModelBytes });
  const model = args.threshold === undefined ? loaded : { ...loaded, threshold: args.threshold };
  const { runtime, session } = await openSession(model, { providers: args.providers, strict: args.strict, threads: args.threads });
  const { info } = runtime;
  const p = session.providers;
  log(`ONNX Runtime ${info.version} (C API ${info.apiVersion}) from ${info.path}`);
  log(`providers: requested ${p.requested.length ? p.requested.join(', ') : '(none: CPU)'}; active ${p.active.join(', ')}`);
  for (const f of p.fallbacks) log(`  fallback: ${f.provider} not used: ${f.reason}`);
  log(`model ${model.path} (${model.precision}, sha256 ${model.sha256}, described by ${model.describedBy})`);
  log(`input ${model.inputName} 1x3x${model.height}x${model.width}, intra-op threads ${args.threads || 'ONNX Runtime default'}, threshold ${model.threshold}`);
  return { model, runtime, session };
}

export function formatReport(r: PipelineReport): string[] {
  const l = r.latencyMs;
  const lines = [
    `${r.processed} results from ${r.captured} frames in ${(r.wallMs / 1000).toFixed(2)} s (${r.fps.toFixed(1)} fps, ${r.mode})`,
    `latency p50/p99 ms: preprocess ${l.preprocess.p50}/${l.preprocess.p99}, inference ${l.inference.p50}/${l.inference.p99}, ` +
      `postprocess ${l.postprocess.p50}/${l.postprocess.p99}, total ${l.total.p50}/${l.total.p99}`,
  ];
  if (r.drops.total > 0) lines.push(`dropped ${r.drops.total}: ${Object.entries(r.drops.byReason).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return lines;
}

/** The model this package ships, trained on Kvasir-SEG by `lvunet-edge train` (see its manifest). */
export const TRAINED_DEMO_MODEL = join(packageRoot(), 'models', 'lvunet-kvasir');

/** The demo model: the trained one where the checkout has it, else seeded random weights built once into the state folder. */
export function demoModel(stateDir: string, log: (line: string) => void, trained = TRAINED_DEMO_MODEL): string {
  if (existsSync(join(trained, 'manifest.json'))) {
    log(`demo: using the trained model ${trained}`);
    return trained;
  }
  const dir = join(stateDir, 'demo-model');
  const banner = [
    '*'.repeat(78),
    '* DEMO MODEL WITH RANDOM WEIGHTS: its masks mean nothing.',
    '* No trained model ships with lvunet-edge yet (models/lvunet-kvasir is missing);',
    `* this one is built from seed 1 into ${dir}.`,
    '* Use --model DIR with a model built from trained weights for real results.',
    '*'.repeat(78),
  ];
  for (const line of banner) log(line);
  if (!existsSync(join(dir, 'manifest.json'))) buildModelDir(seededModelWeights(1), { height: 256, width: 256 }, dir, log);
  return dir;
}

export async function runCommand(argv: string[], log: (line: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...PIPELINE_ARG_OPTIONS,
      sink: { type: 'string', default: 'stdout' },
      'max-frames': { type: 'string' },
      'save-masks': { type: 'string' },
      'save-overlays': { type: 'string' },
      ui: { type: 'string' },
      'ui-token': { type: 'string' },
      rle: { type: 'boolean', default: false },
      contours: { type: 'boolean', default: false },
      config: { type: 'string' },
      mqtt: { type: 'string' },
      'device-id': { type: 'string' },
      demo: { type: 'boolean', default: false },
      'in-process': { type: 'boolean', default: false },
      'bundle-key': { type: 'string', multiple: true },
      'require-golden': { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, RUN_USAGE);
  const maxFrames = intArg('--max-frames', values['max-frames'], RUN_USAGE);
  let sinks: ResultSink[];
  try {
    sinks = [createSink(parseSinkSpec(values.sink))];
  } catch (err) {
    throw new UsageError((err as Error).message, RUN_USAGE);
  }

  const cliOverrides: Record<string, unknown> = {};
  if (values.mqtt !== undefined) cliOverrides['mqtt.url'] = values.mqtt;
  if (values['device-id'] !== undefined) cliOverrides['device.id'] = values['device-id'];
  if (values.ui !== undefined) cliOverrides['ui.listen'] = values.ui;
  registerSecret(values['ui-token']);
  registerSecret(process.env.LVUNET_UI_TOKEN);
  // Before the config is read, so that even an error about it cannot print the password.
  registerSecret(process.env.LVUNET_MQTT_PASSWORD);
  const loaded = loadConfig({ path: values.config, cli: cliOverrides, lastKnownGood: values.config !== undefined });
  const { config, origins } = loaded;
  // From here on the password is redacted wherever it shows up (logs, events, replies), not only in URLs.
  registerSecret(config.mqtt.password);
  // The view's token too, wherever it came from (a ui.token in the YAML file as well).
  registerSecret(config.ui.token);
  for (const e of loaded.events) log(`config: ${e.message}`);
  const fromConfig = (key: string): boolean => origins[key] !== undefined && origins[key] !== 'default';

  const model = values.demo ? (values.model ?? demoModel(config.state_dir, log)) : (values.model ?? (fromConfig('model.path') ? config.model.path : undefined));
  const sourceFromConfig = values.source === undefined && !values.demo && (loaded.file !== null || fromConfig('source.uri'));
  const source = values.source ?? (values.demo ? 'synthetic' : sourceFromConfig ? config.source.uri : undefined);
  const args = parsePipelineArgs({ ...values, model, source, precision: values.precision ?? (fromConfig('model.precision') && !values.demo ? config.model.precision : undefined) }, RUN_USAGE);
  if (values.ep === undefined && config.runtime.providers) args.providers = config.runtime.providers.map((p) => p.name).filter((n) => n !== 'CPU');
  args.strict ||= config.runtime.strict;
  if (values.threads === undefined && fromConfig('runtime.threads')) args.threads = config.runtime.threads;
  if (sourceFromConfig) {
    if (values.fps === undefined && config.source.fps > 0) args.fps = config.source.fps;
    args.width ??= config.source.width;
    args.height ??= config.source.height;
    if (values.format === undefined && config.source.format !== 'auto') args.format = config.source.format;
  }
  if (values.fit === 'stretch' && fromConfig('inference.fit')) args.fit = config.inference.fit;

  args.maxModelBytes = config.model.max_bytes;
  if (values['in-process']) return runInProcess(args, sinks, { maxFrames, saveMasks: values['save-masks'], rle: values.rle, contours: values.contours }, log);

  const publishing = config.mqtt.url !== null;
  const settings = settingsFromConfig(config, origins, {
    threshold: args.threshold,
    minArea: 0,
    // Local runs keep results small unless asked; a fleet device follows publish.* (rle on by default).
    rle: values.rle || (publishing && config.publish.rle),
    contours: values.contours || (publishing && config.publish.contours),
  });
  if (args.threshold !== undefined) settings.threshold = args.threshold;
  if (values.rle) settings.rle = true;
  if (values.contours) settings.contours = true;
  // No frame count on the source: the worker stops after --max-frames results, which a restarted
  // worker or 'latest' queues (dropping frames) would otherwise never reach.
  const options = sourceOptions(args);
  const mode = queueModeFor(args);
  log(`source ${args.sourceText}, sinks ${sinks.map((s) => s.description).join(', ')}${publishing ? ', mqtt' : ''}, queues ${mode}`);
  // The worker opens its session from this plan (sessionOptionsFromConfig): the profile's providers
  // with their options, unless --ep named providers, which carry none.
  const planned = values.ep === undefined && config.runtime.providers ? config.runtime.providers : args.providers.map((name) => ({ name: name as ProviderSpec['name'], options: {} }));
  const keysDir = loaded.file ? join(dirname(resolve(loaded.file)), 'bundle-keys') : undefined;
  await runSupervised({
    start: {
      model: args.model,
      precision: args.precision,
      maxModelBytes: config.model.max_bytes,
      session: { runtime: { ...config.runtime, providers: [...planned], strict: args.strict, threads: args.threads }, stateDir: config.state_dir },
      ortLibrary: config.runtime.ort_library ?? undefined,
      source: args.sourceText,
      sourceOptions: options,
      fit: args.fit,
      queue: mode,
      saveMasks: values['save-masks'],
      saveOverlays: values['save-overlays'],
      settings,
    },
    modelExplicit: values.model !== undefined,
    bundles: {
      trustedKeys: values['bundle-key'] ?? (keysDir ? pemFiles(keysDir) : []),
      keysHint: keysDir
        ? `put the signers' public.pem files in ${keysDir} (or pass --bundle-key) and restart`
        : 'pass --bundle-key public.pem to run (or use --config: keys are read from bundle-keys/ beside the config file)',
      requireGolden: values['require-golden'],
    },
    maxFrames,
    sinks,
    loaded,
    configFile: loaded.file ?? undefined,
    cliOverrides,
    log,
    ui: uiOptions(config, values['ui-token']),
  });
}

/** The live view's settings (ui.*), with its token from --ui-token, ui.token or ui.token_file. */
function uiOptions(config: Config, cliToken: string | undefined): UiOptions | undefined {
  if (config.ui.listen === null) return undefined;
  let token = cliToken ?? config.ui.token ?? undefined;
  if (token === undefined && config.ui.token_file !== null) {
    try {
      token = readFileSync(config.ui.token_file, 'utf8').split('\n')[0].trim();
    } catch (err) {
      throw new Error(`ui.token_file ${config.ui.token_file}: ${(err as Error).message}`);
    }
    if (token === '') throw new Error(`ui.token_file ${config.ui.token_file} is empty`);
    registerSecret(token);
  }
  return { listen: parseListen(config.ui.listen), token: token || undefined, maxFps: config.ui.max_fps, maxWidth: config.ui.max_width };
}

/** Every *.pem in `dir` (none when it does not exist): the trusted keys for model bundles. */
function pemFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pem'))
    .sort()
    .map((f) => join(dir, f));
}

/** The pipeline in this process, without a supervisor: for debugging (`--in-process`) and benchmarks. */
async function runInProcess(
  args: PipelineArgs,
  sinks: ResultSink[],
  extra: { maxFrames?: number; saveMasks?: string; rle: boolean; contours: boolean },
  log: (line: string) => void,
): Promise<void> {
  const { maxFrames } = extra;
  if (extra.saveMasks !== undefined) sinks.push(new MaskDirSink(extra.saveMasks));
  const options = sourceOptions(args, args.source.kind === 'synthetic' && maxFrames !== undefined ? { count: maxFrames } : {});

  const { model, session } = await setUp(args, log);
  const mode = queueModeFor(args);
  log(`source ${args.sourceText}, sinks ${sinks.map((s) => s.description).join(', ')}, queues ${mode}`);
  const pipeline = new Pipeline({
    createSource: (onDrop) => createSource(args.source, { ...options, onDrop }),
    session,
    model,
    sinks,
    mode,
    maxFrames,
    fit: args.fit,
    postprocess: { rle: extra.rle, contours: extra.contours },
    log,
  });
  const stop = (): void => {
    log('stopping: finishing frames in flight');
    pipeline.stop();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const report = await pipeline.run();
    for (const line of formatReport(report)) log(line);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    session.release();
  }
}
