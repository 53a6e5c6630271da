/**
 * Training throughput of LV-UNet: images/s of full training steps (forward, loss, backward, Adam,
 * running statistics) at batch 8, 256x256, on random data after warm-up, with 1 worker (the
 * in-thread path `train` takes by default) and with N data-parallel workers (`train --workers N`),
 * measured in alternating rounds in one process so both see the same machine load.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/train.js [--steps 3] [--warmup 1] [--batch 8] [--size 256] [--rounds 2] [--workers 2]
 *
 * `benchTrain` is the same measurement for bench/run.ts.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { seededWeights } from '../src/model/init.js';
import { initTrainBackend } from '../src/train/backend.js';
import { TfLvunet } from '../src/train/model.js';
import { Adam } from '../src/train/optimizer.js';
import { DataParallelTrainer, makeShards } from '../src/train/parallel.js';
import { trainStep } from '../src/train/trainer.js';

export interface TrainBenchOptions {
  /** Measured steps per configuration and round. */
  readonly steps?: number;
  /** Unmeasured steps per configuration before the first round. */
  readonly warmup?: number;
  readonly rounds?: number;
  readonly batch?: number;
  readonly size?: number;
  /** The data-parallel worker count compared with 1 (default 2). */
  readonly workers?: number;
  readonly log?: (line: string) => void;
}

export interface ThroughputFigures {
  readonly stepSeconds: number[];
  readonly medianStepSeconds: number;
  readonly imagesPerSecond: number;
  /** Per CPU-second of the whole process (every thread): the figure to compare on a loaded machine. */
  readonly imagesPerCpuSecond: number;
}

export interface TrainBenchResult {
  readonly backend: string;
  readonly batch: number;
  readonly size: number;
  readonly warmupSteps: number;
  readonly rounds: number;
  readonly stepsPerRound: number;
  readonly one_worker: ThroughputFigures;
  readonly workers: number;
  readonly workers_detail: string;
  readonly n_workers: ThroughputFigures;
  /** n_workers / one_worker images per second. */
  readonly speedup: number;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly loadAverage1mBefore: number;
  readonly loadAverage1mAfter: number;
  /**
   * The same training step in PyTorch on the CPU (tools/torch-reference/bench_train.py) with as many
   * threads as the bundled trainer has workers, run between the rounds above; null when python3 or
   * torch is missing (pytorchSkipped says which).
   */
  readonly pytorch: (ThroughputFigures & { readonly framework: string; readonly threads: number }) | null;
  readonly pytorchSkipped?: string;
  /** n_workers img/s over PyTorch img/s (≥ 1: the bundled trainer is not the slower one). */
  readonly vs_pytorch: number | null;
}

const TORCH_BENCH = fileURLToPath(new URL('../../tools/torch-reference/bench_train.py', import.meta.url));

interface TorchRound {
  readonly framework: string;
  readonly threads: number;
  readonly stepSeconds: number[];
  readonly imagesPerCpuSecond: number | null;
}

/**
 * A python3 that imports torch: Debian's python3-torch lives under /usr/bin/python3, which a pyenv or
 * venv python3 earlier on PATH does not see. Returns the interpreter, or why there is none.
 */
async function findTorchPython(): Promise<{ python: string } | { skipped: string }> {
  let reason = 'python3 is not installed';
  for (const python of ['/usr/bin/python3', 'python3']) {
    try {
      await promisify(execFile)(python, ['-c', 'import torch'], { timeout: 120_000 });
      return { python };
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code !== 'ENOENT') reason = /No module named 'torch'/.test(e.stderr ?? '') ? 'PyTorch is not installed (Debian: apt-get install python3-torch)' : `python3 -c "import torch" failed: ${(e.stderr ?? e.message).trim().split('\n').at(-1)}`;
    }
  }
  return { skipped: reason };
}

/** One PyTorch measurement (a fresh process, its own warm-up step), or why there is none. */
async function torchRound(o: { threads: number; steps: number; batch: number; size: number }): Promise<TorchRound | string> {
  if (!existsSync(TORCH_BENCH)) return `${TORCH_BENCH} not found (bench run outside the checkout)`;
  const found = await findTorchPython();
  if ('skipped' in found) return found.skipped;
  try {
    const { stdout } = await promisify(execFile)(found.python, [TORCH_BENCH, '--threads', String(o.threads), '--steps', String(o.steps), '--warmup', '1', '--batch', String(o.batch), '--size', String(o.size)], { timeout: 600_000 });
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as TorchRound;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    return `PyTorch bench failed: ${(e.stderr ?? e.message).trim().split('\n').at(-1)}`;
  }
}

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

function figures(batch: number, wall: number[], cpu: number[]): ThroughputFigures {
  return {
    stepSeconds: wall.map((s) => +s.toFixed(3)),
    medianStepSeconds: +median(wall).toFixed(3),
    imagesPerSecond: +(batch / median(wall)).toFixed(3),
    imagesPerCpuSecond: +(batch / median(cpu)).toFixed(3),
  };
}

export async function benchTrain(o: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const steps = o.steps ?? 3;
  const warmup = o.warmup ?? 1;
  const rounds = o.rounds ?? 2;
  const batch = o.batch ?? 8;
  const size = o.size ?? 256;
  const workers = o.workers ?? 2;
  const log = o.log ?? (() => {});
  // The workers always run wasm, so the 1-worker figure must too for the ratio to mean anything.
  const backend = await initTrainBackend({ preferNative: false });
  const model = TfLvunet.create({ height: size, width: size, lambda: 0.5 }, seededWeights({ seed: 1, randomBatchNorm: false }));
  const optimizer = new Adam();
  const x = tf.randomNormal<tf.Rank.R4>([batch, size, size, 3], 0, 1, 'float32', 1);
  const y = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([batch, size, size, 1], 0, 1, 'float32', 2), 0.7), 'float32')) as tf.Tensor4D;
  const xData = x.dataSync() as Float32Array;
  const yData = y.dataSync() as Float32Array;
  const per = size * size;
  const samples = Array.from({ length: batch }, (_, i) => ({ image: xData.subarray(i * per * 3, (i + 1) * per * 3), mask: yData.subarray(i * per, (i + 1) * per) }));

  const poolModel = TfLvunet.create({ height: size, width: size, lambda: 0.5 }, seededWeights({ seed: 1, randomBatchNorm: false }));
  const poolOptimizer = new Adam();
  log(`train: starting ${workers} workers…`);
  const pool = await DataParallelTrainer.start(poolModel, { workers, size });
  const load0 = loadavg()[0];
  let stepNo = 0;
  const one = (): void => {
    trainStep(model, optimizer, x, y, 1e-3);
  };
  // Shards are built inside the timed region: a training run builds them every step too.
  const many = (): Promise<number> => pool.step(makeShards(samples, workers), 0.5, 1e-3, poolOptimizer, `bench step ${++stepNo}`);
  try {
    for (let i = 0; i < warmup; i++) {
      one();
      await many();
    }
    const wall1: number[] = [];
    const cpu1: number[] = [];
    const wallN: number[] = [];
    const cpuN: number[] = [];
    const torchWall: number[] = [];
    const torchCpu: number[] = [];
    let torch: TorchRound | undefined;
    let torchSkipped: string | undefined;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < steps; i++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        one();
        wall1.push((performance.now() - t0) / 1000);
        const dc = process.cpuUsage(c0);
        cpu1.push((dc.user + dc.system) / 1e6);
      }
      for (let i = 0; i < steps; i++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await many();
        wallN.push((performance.now() - t0) / 1000);
        const dc = process.cpuUsage(c0);
        cpuN.push((dc.user + dc.system) / 1e6);
      }
      if (torchSkipped === undefined) {
        const t = await torchRound({ threads: workers, steps, batch, size });
        if (typeof t === 'string') {
          torchSkipped = t;
          log(`train: no PyTorch figure: ${t}`);
        } else {
          torch = t;
          torchWall.push(...t.stepSeconds);
          if (t.imagesPerCpuSecond !== null) torchCpu.push(batch / t.imagesPerCpuSecond);
        }
      }
      const torchText = torchWall.length > 0 ? `, PyTorch (${workers} threads) ${(batch / median(torchWall)).toFixed(2)} img/s` : '';
      log(`train: round ${r + 1}/${rounds}: 1 worker ${(batch / median(wall1)).toFixed(2)} img/s, ${workers} workers ${(batch / median(wallN)).toFixed(2)} img/s${torchText} (load ${loadavg()[0].toFixed(2)})`);
    }
    const torchFig = torch && torchWall.length > 0 ? { ...figures(batch, torchWall, torchCpu.length > 0 ? torchCpu : [NaN]), framework: torch.framework, threads: torch.threads } : null;
    const oneFig = figures(batch, wall1, cpu1);
    const manyFig = figures(batch, wallN, cpuN);
    return {
      backend: backend.detail,
      batch,
      size,
      warmupSteps: warmup,
      rounds,
      stepsPerRound: steps,
      one_worker: oneFig,
      workers,
      workers_detail: pool.detail,
      n_workers: manyFig,
      speedup: +(manyFig.imagesPerSecond / oneFig.imagesPerSecond).toFixed(3),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      loadAverage1mBefore: +load0.toFixed(2),
      loadAverage1mAfter: +loadavg()[0].toFixed(2),
      pytorch: torchFig,
      ...(torchSkipped === undefined ? {} : { pytorchSkipped: torchSkipped }),
      vs_pytorch: torchFig ? +(manyFig.imagesPerSecond / torchFig.imagesPerSecond).toFixed(3) : null,
    };
  } finally {
    await pool.close();
    poolOptimizer.dispose();
    poolModel.dispose();
    optimizer.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  }
}

/** Markdown lines for bench/results/bench.md. */
export function trainTable(r: TrainBenchResult): string[] {
  return [
    '',
    `| training, ${r.size}x${r.size}, batch ${r.batch} (${r.backend}) | median step s | img/s |`,
    '|---|---:|---:|',
    `| 1 worker (in-thread, the default) | ${r.one_worker.medianStepSeconds} | ${r.one_worker.imagesPerSecond} |`,
    `| ${r.workers} data-parallel workers | ${r.n_workers.medianStepSeconds} | ${r.n_workers.imagesPerSecond} |`,
    r.pytorch
      ? `| ${r.pytorch.framework}, ${r.pytorch.threads} threads, same step (tools/torch-reference/bench_train.py) | ${r.pytorch.medianStepSeconds} | ${r.pytorch.imagesPerSecond} |`
      : `| PyTorch | not measured: ${r.pytorchSkipped ?? 'unknown'} | |`,
    '',
    `Training speed-up with ${r.workers} workers, same run: ${r.speedup}x (load average ${r.loadAverage1mBefore} → ${r.loadAverage1mAfter} on ${r.cpus} cores).` +
      (r.vs_pytorch === null ? '' : ` ${r.workers} workers vs PyTorch, same run: ${r.vs_pytorch}x.`),
  ];
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      steps: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      rounds: { type: 'string', default: '2' },
      batch: { type: 'string', default: '8' },
      size: { type: 'string', default: '256' },
      workers: { type: 'string', default: '2' },
    },
  });
  const result = await benchTrain({
    steps: Number(values.steps),
    warmup: Number(values.warmup),
    rounds: Number(values.rounds),
    batch: Number(values.batch),
    size: Number(values.size),
    workers: Number(values.workers),
    log: (l) => process.stderr.write(`${l}\n`),
  });
  console.log(JSON.stringify(result, null, 2));
}
