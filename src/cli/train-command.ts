import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { DEFAULT_SEED } from '../data/dataset.js';
import { train, type TrainOptions } from '../train/trainer.js';
import { UsageError } from './errors.js';

export const TRAIN_USAGE = `usage: lvunet-edge train --data DIR --out DIR [--epochs 300] [--batch 8] [--size 256] [--seed 42]
                        [--split FILE] [--resume] [--limit N] [--stop-after N] [--lr 0.001] [--wasm]
                        [--workers 1]

Trains LV-UNet from scratch with the paper's recipe (Adam, weight decay 1e-4, cosine LR to 1e-5,
0.5·BCE + (1 − soft Dice), rot90/flip/brightness/contrast augmentation) and a deep-training λ that
reaches exactly 1 for the last 10 % of epochs. DIR/ receives split.json (64/16/20 by --seed unless
--split is given), log.csv, state.json, last.safetensors (+ last.optim.safetensors, Adam's state)
each epoch, and lvunet.safetensors: the λ = 1 epoch with the best validation Dice, which
'lvunet-edge model build --weights' takes as it is.
  --data    a dataset folder with images/ and masks/
  --resume  continue DIR's run from its last completed epoch (same epochs, batch, size, seed)
  --limit   use at most N train and N val images (smoke runs)
  --stop-after  train at most N epochs in this invocation, then exit (continue with --resume)
  --wasm    use the wasm backend even when @tensorflow/tfjs-node is installed
  --workers data-parallel worker threads (default 1). With N ≥ 2 each worker holds a replica and
            computes gradients on its share of every batch (batch/N images), the main thread
            averages them and takes one Adam step; wasm backend, about N times the images/s on N
            free cores. BatchNorm uses each shard's statistics (as PyTorch DDP without
            SyncBatchNorm) and the replicas' running statistics are averaged after each step, so
            results differ slightly from 1 worker. The default stays 1 because it is the exact
            computation of earlier versions: a run resumed with defaults continues bit for bit.
            Checkpoints are the same with any N, so --resume may change N (the numbers from then
            on are those of the new N). Data order and augmentation depend only on --seed.`;

function positiveInt(flag: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new UsageError(`${flag} ${JSON.stringify(text)} is not a positive integer`, TRAIN_USAGE);
  return Number(text);
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      epochs: { type: 'string', default: '300' },
      batch: { type: 'string', default: '8' },
      size: { type: 'string', default: '256' },
      seed: { type: 'string', default: String(DEFAULT_SEED) },
      split: { type: 'string' },
      resume: { type: 'boolean', default: false },
      limit: { type: 'string' },
      'stop-after': { type: 'string' },
      lr: { type: 'string' },
      wasm: { type: 'boolean', default: false },
      workers: { type: 'string', default: '1' },
    },
    allowPositionals: true,
    strict: true,
  });
}

export function parseTrainArgs(argv: string[]): TrainOptions {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    // node:util reports unknown flags and missing values as TypeErrors; they are usage mistakes.
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) throw new UsageError((err as Error).message, TRAIN_USAGE);
    throw err;
  }
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, TRAIN_USAGE);
  if (!values.data) throw new UsageError('--data DIR is required', TRAIN_USAGE);
  if (!values.out) throw new UsageError('--out DIR is required', TRAIN_USAGE);
  const size = positiveInt('--size', values.size);
  if (size % 128 !== 0) throw new UsageError(`--size ${size} is not a multiple of 128 (LV-UNet downsamples 128x)`, TRAIN_USAGE);
  if (!/^-?\d+$/.test(values.seed.trim())) throw new UsageError(`--seed ${JSON.stringify(values.seed)} is not an integer`, TRAIN_USAGE);
  const batch = positiveInt('--batch', values.batch);
  const workers = positiveInt('--workers', values.workers);
  if (workers > batch) throw new UsageError(`--workers ${workers} is more than --batch ${batch}: every worker needs at least one image of each batch`, TRAIN_USAGE);
  let lr: number | undefined;
  if (values.lr !== undefined) {
    lr = Number(values.lr);
    if (!(lr > 0) || !Number.isFinite(lr)) throw new UsageError(`--lr ${JSON.stringify(values.lr)} is not a positive number`, TRAIN_USAGE);
  }
  return {
    data: resolve(values.data),
    out: resolve(values.out),
    epochs: positiveInt('--epochs', values.epochs),
    batch,
    size,
    seed: Number(values.seed),
    split: values.split === undefined ? undefined : resolve(values.split),
    resume: values.resume,
    limit: values.limit === undefined ? undefined : positiveInt('--limit', values.limit),
    stopAfter: values['stop-after'] === undefined ? undefined : positiveInt('--stop-after', values['stop-after']),
    lr,
    wasm: values.wasm,
    workers,
  };
}

export async function trainCommand(argv: string[], log: (line: string) => void): Promise<void> {
  const options = parseTrainArgs(argv);
  const result = await train(options, log);
  if (result.bestEpoch < 0) {
    log(`stopped after epoch ${result.records.at(-1)?.epoch ?? 0} of ${options.epochs}; no λ = 1 epoch yet, so no ${result.finalWeights} (continue with --resume)`);
    return;
  }
  log(`done (${result.backend}): ${result.finalWeights} is epoch ${result.bestEpoch} (val Dice ${result.bestDice.toFixed(4)}, λ = 1)`);
}
