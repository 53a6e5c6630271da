import { parseArgs } from 'node:util';
import { buildModelDir, loadWeightsFile, seededModelWeights } from '../model/build.js';
import { formatInspect, inspectOnnx } from '../model/inspect.js';
import { UsageError } from './errors.js';
import { MODEL_BUILD_USAGE, MODEL_INSPECT_USAGE } from './usage.js';

function parseSize(text: string): { height: number; width: number } {
  const m = /^(\d+)(?:x(\d+))?$/.exec(text.trim());
  if (!m) throw new UsageError(`--size ${JSON.stringify(text)} is not N or HxW`, MODEL_BUILD_USAGE);
  const height = Number(m[1]);
  return { height, width: m[2] ? Number(m[2]) : height };
}

function parseNumber(flag: string, text: string, usage: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${flag} ${JSON.stringify(text)} is not a number`, usage);
  return v;
}

export function modelBuild(argv: string[], log: (line: string) => void): void {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      weights: { type: 'string' },
      seed: { type: 'string' },
      size: { type: 'string', default: '256' },
      lambda: { type: 'string' },
      out: { type: 'string' },
      'dynamic-batch': { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, MODEL_BUILD_USAGE);
  if (!values.out) throw new UsageError('--out DIR is required', MODEL_BUILD_USAGE);
  if ((values.weights === undefined) === (values.seed === undefined)) {
    throw new UsageError('give exactly one of --weights FILE or --seed N', MODEL_BUILD_USAGE);
  }
  const size = parseSize(values.size);
  const lambda = values.lambda === undefined ? undefined : parseNumber('--lambda', values.lambda, MODEL_BUILD_USAGE);
  const weights = values.weights
    ? loadWeightsFile(values.weights, lambda)
    : seededModelWeights(Math.trunc(parseNumber('--seed', values.seed!, MODEL_BUILD_USAGE)), lambda ?? 1);
  buildModelDir(weights, { ...size, dynamicBatch: values['dynamic-batch'] }, values.out, log);
}

export function modelInspect(argv: string[], print: (text: string) => void): void {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError('give one ONNX file', MODEL_INSPECT_USAGE);
  const report = inspectOnnx(positionals[0]);
  print(values.json ? JSON.stringify(report, null, 2) : formatInspect(report));
}
