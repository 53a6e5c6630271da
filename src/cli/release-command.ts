import { parseArgs } from 'node:util';
import { releaseModel, type ConvertedPrecision } from '../model/release.js';
import { UsageError } from './errors.js';
import { MODEL_RELEASE_USAGE } from './usage.js';

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
      'stress-limit': { type: 'string' },
      'no-stress': { type: 'boolean', default: false },
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
    stress: !values['no-stress'],
    stressLimit: values['stress-limit'] === undefined ? undefined : count('--stress-limit', values['stress-limit']),
    name: values.name,
    log,
  });
  const rejected = result.outcomes.filter((o) => !o.shipped);
  if (rejected.length > 0) {
    throw new Error(`model release: ${rejected.map((o) => `${o.precision} rejected (${o.reason})`).join('; ')}; the rest was written to ${result.dir}`);
  }
}
