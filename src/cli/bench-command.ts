/**
 * `lvunet-edge bench pipeline`: the model alone (a tight loop of session.run on one preprocessed
 * frame) and the whole pipeline, in one process with the same session and thread settings, so the
 * two rates are comparable; plus event-loop lag and memory.
 */
import { loadavg, cpus } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { Pipeline, STAGES, type Percentiles, type StageName } from '../runtime/pipeline/index.js';
import { createSource } from '../runtime/pipeline/index.js';
import { preprocessFrame } from '../runtime/native/runtime.js';
import { createSink, parseSinkSpec, type ResultSink } from '../runtime/sinks/index.js';
import { UsageError } from './errors.js';
import { BENCH_PIPELINE_USAGE } from './usage.js';
import { intArg, parsePipelineArgs, PIPELINE_ARG_OPTIONS, queueModeFor, setUp, sourceOptions } from './run-command.js';

const round = (v: number, d = 3): number => Math.round(v * 10 ** d) / 10 ** d;
const mb = (bytes: number): number => round(bytes / 2 ** 20, 1);

export interface BenchPipelineReport {
  schema: 'lvunet-edge/bench-pipeline@1';
  model: { path: string; sha256: string; precision: string; input: string };
  source: string;
  provider: string;
  threads: number;
  queue_mode: string;
  /** Optional outputs computed per result (--rle, --contours). */
  outputs: { rle: boolean; contours: boolean };
  frames: number;
  inference_runs: number;
  inference_fps: number;
  inference_ms: Percentiles;
  pipeline_fps: number;
  pipeline_vs_inference: number;
  latency_ms: Record<StageName, Percentiles>;
  /**
   * Native MJPEG decode per frame, inside 'preprocess' (libjpeg-turbo, DCT-scaled): all zeros for
   * sources that deliver pixels, so every source kind reports the same keys.
   */
  decode_ms: Percentiles;
  /** The --fps the source was paced at (camera rate), or null when frames were taken as fast as possible. */
  paced_fps: number | null;
  /** Capture to the result written by the sinks, per frame. */
  capture_to_result_ms: Percentiles;
  /** capture_to_result_ms.p99 / inference_ms.p50: the latency a paced camera sees, in model runs. */
  capture_to_result_p99_vs_inference_p50: number;
  event_loop_lag_p50_ms: number;
  event_loop_lag_p99_ms: number;
  event_loop_lag_max_ms: number;
  drops: { total: number; byStage: Record<string, number>; byReason: Record<string, number> };
  processed: number;
  rss_before_mb: number;
  rss_after_mb: number;
  heap_used_after_mb: number;
  machine: { cpus: number; model: string; loadavg_before: number[]; loadavg_after: number[]; node: string };
}

function percentiles(values: number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  const rank = (p: number): number => round(s[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] ?? 0);
  return { count: n, mean: round(s.reduce((a, b) => a + b, 0) / Math.max(1, n)), p50: rank(50), p95: rank(95), p99: rank(99), max: round(s[n - 1] ?? 0) };
}

export async function benchPipeline(argv: string[], log: (line: string) => void, print: (text: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...PIPELINE_ARG_OPTIONS,
      frames: { type: 'string', default: '300' },
      warmup: { type: 'string', default: '10' },
      sink: { type: 'string', default: 'none' },
      json: { type: 'boolean', default: false },
      rle: { type: 'boolean', default: false },
      contours: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, BENCH_PIPELINE_USAGE);
  const args = parsePipelineArgs(values, BENCH_PIPELINE_USAGE);
  const frames = intArg('--frames', values.frames, BENCH_PIPELINE_USAGE, 1) as number;
  const warmup = intArg('--warmup', values.warmup, BENCH_PIPELINE_USAGE) as number;
  let sink: ResultSink;
  try {
    sink = createSink(parseSinkSpec(values.sink));
  } catch (err) {
    throw new UsageError((err as Error).message, BENCH_PIPELINE_USAGE);
  }
  // Finite sources loop so that --frames frames are measured whatever the recording's length.
  const loops = args.source.kind === 'folder' || args.source.kind === 'file' ? (args.loops ?? Infinity) : args.loops;
  const options = sourceOptions(args, { loops, ...(args.source.kind === 'synthetic' ? { count: frames + 1 } : {}) });
  const loadBefore = loadavg().map((v) => round(v, 2));
  const rssBefore = process.memoryUsage().rss;

  const { model, session } = await setUp(args, log);
  try {
    const dims = [1, 3, model.height, model.width];

    // One real frame from the same source, preprocessed once, feeds the model-alone loop.
    const probe = createSource(args.source, { ...options, loops: 1, fps: undefined, onDrop: () => {} });
    await probe.open();
    const first = await probe.next();
    await probe.close();
    if (!first) throw new Error(`${args.sourceText}: no usable frame to benchmark with`);
    const input = preprocessFrame(first.data, first, { width: model.width, height: model.height }, args.fit, model.preprocessing);

    for (let i = 0; i < warmup; i++) await session.run(input, dims);
    const runs = Math.max(50, frames);
    const times: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) {
      const s = performance.now();
      await session.run(input, dims);
      times.push(performance.now() - s);
    }
    const inferenceFps = (runs * 1000) / (performance.now() - t0);
    log(`model alone: ${inferenceFps.toFixed(1)} runs/s over ${runs} runs`);

    if (warmup > 0) {
      const warm = new Pipeline({
        createSource: (onDrop) => createSource(args.source, { ...options, ...(args.source.kind === 'synthetic' ? { count: warmup } : {}), onDrop }),
        session,
        model,
        sinks: [],
        mode: queueModeFor(args),
        maxFrames: warmup,
        fit: args.fit,
      });
      await warm.run();
    }

    const lag = monitorEventLoopDelay({ resolution: 1 });
    const mode = queueModeFor(args);
    const pipeline = new Pipeline({
      createSource: (onDrop) => createSource(args.source, { ...options, onDrop }),
      session,
      model,
      sinks: [sink],
      mode,
      maxFrames: frames,
      fit: args.fit,
      postprocess: { rle: values.rle, contours: values.contours },
      log,
    });
    lag.enable();
    const report = await pipeline.run();
    lag.disable();
    log(`pipeline: ${report.fps.toFixed(1)} fps over ${report.processed} results`);
    const inferenceMs = percentiles(times);

    const memory = process.memoryUsage();
    const result: BenchPipelineReport = {
      schema: 'lvunet-edge/bench-pipeline@1',
      model: { path: model.path, sha256: model.sha256, precision: model.precision, input: `1x3x${model.height}x${model.width}` },
      source: args.sourceText,
      provider: session.providers.active[0] ?? 'unknown',
      threads: args.threads,
      queue_mode: mode,
      outputs: { rle: values.rle, contours: values.contours },
      frames,
      inference_runs: runs,
      inference_fps: round(inferenceFps, 2),
      inference_ms: inferenceMs,
      pipeline_fps: round(report.fps, 2),
      pipeline_vs_inference: round(report.fps / inferenceFps, 3),
      latency_ms: Object.fromEntries(STAGES.map((s) => [s, report.latencyMs[s]])) as Record<StageName, Percentiles>,
      decode_ms: report.decodeMs,
      paced_fps: args.fps !== undefined && args.fps > 0 ? args.fps : null,
      capture_to_result_ms: report.captureToResultMs,
      capture_to_result_p99_vs_inference_p50: inferenceMs.p50 > 0 ? round(report.captureToResultMs.p99 / inferenceMs.p50, 2) : 0,
      // The histogram is in nanoseconds.
      event_loop_lag_p50_ms: round(lag.percentile(50) / 1e6),
      event_loop_lag_p99_ms: round(lag.percentile(99) / 1e6),
      event_loop_lag_max_ms: round(lag.max / 1e6),
      drops: { total: report.drops.total, byStage: report.drops.byStage as Record<string, number>, byReason: report.drops.byReason },
      processed: report.processed,
      rss_before_mb: mb(rssBefore),
      rss_after_mb: mb(memory.rss),
      heap_used_after_mb: mb(memory.heapUsed),
      machine: {
        cpus: cpus().length,
        model: cpus()[0]?.model ?? 'unknown',
        loadavg_before: loadBefore,
        loadavg_after: loadavg().map((v) => round(v, 2)),
        node: process.version,
      },
    };
    if (values.json) {
      print(JSON.stringify(result, null, 2));
    } else {
      const l = result.latency_ms;
      print(
        [
          `inference_fps ${result.inference_fps} (model alone, ${result.threads || 'ONNX Runtime default'} threads, ${result.provider})`,
          `pipeline_fps  ${result.pipeline_fps} (${result.pipeline_vs_inference}x)`,
          ...(['preprocess', 'inference', 'postprocess', 'total'] as const).map(
            (s) => `${s.padEnd(12)} p50 ${l[s].p50} p95 ${l[s].p95} p99 ${l[s].p99} ms`,
          ),
          `decode       p50 ${result.decode_ms.p50} p99 ${result.decode_ms.p99} ms (${result.decode_ms.count} frames)`,
          `capture->result p50 ${result.capture_to_result_ms.p50} p99 ${result.capture_to_result_ms.p99} ms (${result.capture_to_result_p99_vs_inference_p50}x inference p50${result.paced_fps ? `, paced at ${result.paced_fps} fps` : ''})`,
          `event loop lag p99 ${result.event_loop_lag_p99_ms} ms (max ${result.event_loop_lag_max_ms})`,
          `drops ${result.drops.total}, rss ${result.rss_before_mb} -> ${result.rss_after_mb} MB, load ${result.machine.loadavg_before.join(' ')}`,
        ].join('\n'),
      );
    }
  } finally {
    session.release();
  }
}
