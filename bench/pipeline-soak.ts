/**
 * Memory soak of the pipeline: N synthetic 640x480 YUYV frames as fast as possible through the real
 * native preprocessor, ONNX Runtime session and postprocessing, results discarded. rss and the
 * active handles/requests (process.getActiveResourcesInfo) are sampled after warm-up and at the end;
 * growth between the two is what a week-long run would accumulate per N frames.
 *
 *   npm run build && node --expose-gc dist/bench/pipeline-soak.js --model DIR [--frames 10000] [--threads 2] [--json]
 */
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { loadModel } from '../src/runtime/model-loader.js';
import { openSession, Pipeline } from '../src/runtime/pipeline/index.js';
import { NullSink } from '../src/runtime/sinks/index.js';
import { SyntheticSource } from '../src/runtime/sources/synthetic-source.js';

interface Sample {
  frame: number;
  rssMb: number;
  heapUsedMb: number;
  externalMb: number;
  arrayBuffersMb: number;
  resources: Record<string, number>;
}

const mb = (b: number): number => Math.round((b / 2 ** 20) * 10) / 10;

function sample(frame: number): Sample {
  // A full collection before sampling, when allowed, so rss reflects what is live rather than when V8 last collected.
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  const resources: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
  return { frame, rssMb: mb(m.rss), heapUsedMb: mb(m.heapUsed), externalMb: mb(m.external), arrayBuffersMb: mb(m.arrayBuffers), resources };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      frames: { type: 'string', default: '10000' },
      warmup: { type: 'string', default: '500' },
      threads: { type: 'string', default: '2' },
      every: { type: 'string', default: '500' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.model) throw new Error('usage: pipeline-soak --model DIR [--frames 10000] [--warmup 500] [--threads 2] [--json]');
  const frames = Number(values.frames);
  const warmup = Number(values.warmup);
  const every = Number(values.every);
  const model = loadModel(values.model);
  const { session } = await openSession(model, { threads: Number(values.threads) });
  const samples: Sample[] = [sample(0)];
  const lag = monitorEventLoopDelay({ resolution: 1 });
  let done = 0;
  const started = performance.now();
  const pipeline = new Pipeline({
    createSource: (onDrop) => new SyntheticSource({ width: 640, height: 480, format: 'YUYV', count: frames, onDrop }),
    session,
    model,
    sinks: [new NullSink()],
    mode: 'backpressure',
    log: (l) => process.stderr.write(`${l}\n`),
    onResult: () => {
      done++;
      if (done === warmup) {
        samples.push(sample(done));
        lag.enable();
      } else if (done % every === 0) {
        samples.push(sample(done));
        const s = samples.at(-1);
        process.stderr.write(`${done} frames, ${((done * 1000) / (performance.now() - started)).toFixed(1)} fps, rss ${s?.rssMb} MB, resources ${JSON.stringify(s?.resources)}\n`);
      }
    },
  });
  const report = await pipeline.run();
  lag.disable();
  const seconds = (performance.now() - started) / 1000;
  const end = sample(done);
  if (samples.at(-1)?.frame !== done) samples.push(end);
  session.release();
  const afterWarmup = samples.find((s) => s.frame === warmup) ?? samples[0];
  const out = {
    schema: 'lvunet-edge/pipeline-soak@1',
    frames: done,
    seconds: Math.round(seconds * 10) / 10,
    fps: Math.round((done / seconds) * 10) / 10,
    drops: report.drops,
    rss_after_warmup_mb: afterWarmup.rssMb,
    rss_end_mb: end.rssMb,
    rss_growth_mb: Math.round((end.rssMb - afterWarmup.rssMb) * 10) / 10,
    resources_after_warmup: afterWarmup.resources,
    resources_end: end.resources,
    event_loop_lag_p99_ms: Math.round(lag.percentile(99) / 1e4) / 100,
    gc_before_samples: typeof (globalThis as { gc?: unknown }).gc === 'function',
    latency_ms: { inference: report.latencyMs.inference, postprocess: report.latencyMs.postprocess, total: report.latencyMs.total },
    samples,
  };
  process.stdout.write(`${JSON.stringify(out, null, values.json ? 2 : 0)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`pipeline-soak: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
