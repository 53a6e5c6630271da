import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { DEFAULT_SEED } from '../data/dataset.js';
import { train, type TrainOptions } from '../train/trainer.js';
import { AUGMENT_PROFILES, type AugmentProfile } from '../train/data.js';
import { UsageError } from './errors.js';
import { TRAIN_USAGE } from './usage.js';

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
      augment: { type: 'string' },
      init: { type: 'string' },
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
    augment: augmentProfile(values.augment),
    init: values.init === undefined ? undefined : resolve(values.init),
  };
}

function augmentProfile(text: string | undefined): AugmentProfile | undefined {
  if (text === undefined) return undefined;
  if (!(AUGMENT_PROFILES as readonly string[]).includes(text)) throw new UsageError(`--augment ${JSON.stringify(text)}: use ${AUGMENT_PROFILES.join(' or ')}`, TRAIN_USAGE);
  return text as AugmentProfile;
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
