import { parseArgs } from 'node:util';
import { releaseModel, GATES, type ConvertedPrecision } from '../model/release.js';
import { UsageError } from './errors.js';

export const MODEL_RELEASE_USAGE = `usage: lvunet-edge model release --run DIR --data DIR --out DIR [--weights FILE]
                                [--precisions fp16,int8] [--calib-count 64] [--limit N] [--threads 2]
                                [--name NAME]

Turns a finished training run into a model directory: fused lvunet.fp32.onnx (+ the training-mode
graph), evaluated on the run's held-out test split (Dice, IoU, precision, recall, specificity, HD95,
per image and pooled, at model and native size), FP16 and INT8 (calibrated on train-split images
only) each checked against fp32 on the test split and written only if they pass their gate
(FP16 mask Dice ≥ ${GATES.fp16.minMeanMaskDice}; INT8 mask Dice ≥ ${GATES.int8.minMeanMaskDice} and Dice vs truth down by ≤ ${GATES.int8.maxTruthDiceDrop}),
and manifest.json with the data's provenance and terms (DIR/SOURCE.md), split, epochs, schedule,
metric table and agreement figures. Exits non-zero if a requested precision was rejected.
  --run        a folder written by 'lvunet-edge train' (state.json, split.json, log.csv, lvunet.safetensors)
  --data       the dataset folder the run trained on
  --weights    release these weights instead of the run's lvunet.safetensors
  --precisions which converted precisions to make besides fp32 (default fp16,int8; 'none' for neither)
  --limit      evaluate and check on at most N test images (smoke runs; a release should use all)`;

function count(flag: string, text: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`${flag} ${JSON.stringify(text)} is not a positive integer`, MODEL_RELEASE_USAGE);
  return v;
}

export async function modelRelease(argv: string[], log: (line: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      run: { type: 'string' },
      data: { type: 'string' },
      out: { type: 'string' },
      weights: { type: 'string' },
      precisions: { type: 'string', default: 'fp16,int8' },
      'calib-count': { type: 'string', default: '64' },
      limit: { type: 'string' },
      threads: { type: 'string', default: '2' },
      name: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, MODEL_RELEASE_USAGE);
  for (const flag of ['run', 'data', 'out'] as const) if (!values[flag]) throw new UsageError(`--${flag} DIR is required`, MODEL_RELEASE_USAGE);
  const precisions: ConvertedPrecision[] = [];
  if (values.precisions.trim() !== 'none') {
    for (const p of values.precisions.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      if (p !== 'fp16' && p !== 'int8') throw new UsageError(`--precisions: unknown precision '${p}' (expected fp16, int8 or none)`, MODEL_RELEASE_USAGE);
      if (!precisions.includes(p)) precisions.push(p);
    }
  }
  const result = await releaseModel({
    runDir: values.run!,
    dataDir: values.data!,
    outDir: values.out!,
    weights: values.weights,
    precisions,
    calibCount: count('--calib-count', values['calib-count']),
    limit: values.limit === undefined ? undefined : count('--limit', values.limit),
    threads: count('--threads', values.threads),
    name: values.name,
    log,
  });
  const rejected = result.outcomes.filter((o) => !o.shipped);
  if (rejected.length > 0) {
    throw new Error(`model release: ${rejected.map((o) => `${o.precision} rejected (${o.reason})`).join('; ')}; the rest was written to ${result.dir}`);
  }
}
