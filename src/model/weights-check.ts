/**
 * Checks a parsed safetensors file against the tensors a model needs and turns it into float32.
 * Users bring files written by `safetensors.torch.save_file(model.state_dict(), ...)`; when one is
 * wrong (another model, another width, a half-finished export) they need every mismatch at once,
 * not one per attempt, so every problem is collected before throwing.
 */
import type { SafetensorsTensor } from './safetensors.js';

export type WeightsProblem = 'missing' | 'unexpected' | 'shape' | 'dtype' | 'non-finite';

export interface WeightsCulprit {
  name: string;
  problem: WeightsProblem;
  expected?: string;
  actual?: string;
}

export interface ExpectedTensor {
  name: string;
  shape: readonly number[];
}

/**
 * Float dtypes accepted for a float32 weight. F16 and BF16 widen to float32 exactly; F64 rounds to
 * the nearest float32, which is the precision the runtime computes in anyway (a value beyond the
 * float32 range becomes ±Inf and is then reported as non-finite). Integer, bool and 8-bit float
 * dtypes are refused: a weight stored that way is a broken or quantised export, not one to guess at.
 */
export const CONVERTIBLE_DTYPES = ['F32', 'F16', 'BF16', 'F64'] as const;

const ALSO_ACCEPTED = CONVERTIBLE_DTYPES.filter((d) => d !== 'F32').join(', ');

/** What `checkWeights` reads: the shape of `readSafetensors`' result. */
export interface WeightsFile {
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  readonly metadata?: Readonly<Record<string, string>>;
}

export class WeightsError extends Error {
  readonly file: string;
  readonly culprits: WeightsCulprit[];

  constructor(file: string, culprits: WeightsCulprit[]) {
    const n = culprits.length;
    super(
      `${file}: weights do not match the model (${n} problem${n === 1 ? '' : 's'}):\n` +
        culprits.map((c) => `  ${describeCulprit(c)}`).join('\n'),
    );
    this.name = 'WeightsError';
    this.file = file;
    this.culprits = culprits;
  }
}

export function describeCulprit(c: WeightsCulprit): string {
  switch (c.problem) {
    case 'missing':
      return `${c.name}: missing`;
    case 'unexpected':
      return `${c.name}: unexpected tensor`;
    case 'shape':
      return `${c.name}: shape ${c.actual}, expected ${c.expected}`;
    case 'dtype':
      return `${c.name}: dtype ${c.actual}, expected ${c.expected} (${ALSO_ACCEPTED} also accepted)`;
    case 'non-finite':
      return `${c.name}: non-finite values (${c.actual})`;
  }
}

/** PyTorch's BatchNorm step counter: a training statistic no inference path reads. */
function isIgnored(name: string): boolean {
  return name === 'num_batches_tracked' || name.endsWith('.num_batches_tracked');
}

/** Shapes print as in the reference TSV: `80x80x3x3`, and `scalar` for rank 0. */
export function formatShape(shape: readonly number[]): string {
  return shape.length === 0 ? 'scalar' : shape.join('x');
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Validates `file` against `expected` and returns a float32 copy of each expected tensor, keyed by
 * name in the order of `expected`. `*.num_batches_tracked` is skipped on both sides, so passing the
 * full state-dict list is harmless. Throws `WeightsError` listing every culprit; a tensor can be a
 * culprit twice (wrong dtype and wrong shape).
 */
export function checkWeights(
  file: WeightsFile,
  expected: ReadonlyArray<ExpectedTensor>,
  fileName: string,
): Map<string, Float32Array> {
  const culprits: WeightsCulprit[] = [];
  const out = new Map<string, Float32Array>();
  const wanted = new Set<string>();

  for (const { name, shape } of expected) {
    if (isIgnored(name) || wanted.has(name)) continue;
    wanted.add(name);
    const t = file.tensors.get(name);
    if (t === undefined) {
      culprits.push({ name, problem: 'missing', expected: formatShape(shape) });
      continue;
    }
    const convertible = (CONVERTIBLE_DTYPES as readonly string[]).includes(t.dtype);
    if (!convertible) {
      culprits.push({ name, problem: 'dtype', expected: 'F32', actual: t.dtype });
    }
    if (!sameShape(t.shape, shape)) {
      culprits.push({ name, problem: 'shape', expected: formatShape(shape), actual: formatShape(t.shape) });
      continue;
    }
    if (!convertible) continue;
    const values = toFloat32(t);
    const bad = describeNonFinite(values, t.dtype);
    if (bad !== undefined) {
      culprits.push({ name, problem: 'non-finite', actual: bad });
      continue;
    }
    out.set(name, values);
  }

  for (const name of file.tensors.keys()) {
    if (!wanted.has(name) && !isIgnored(name)) culprits.push({ name, problem: 'unexpected' });
  }

  if (culprits.length > 0) throw new WeightsError(fileName, culprits);
  return out;
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Always a fresh, aligned array: the source bytes are an unaligned view into the file. */
function toFloat32(t: SafetensorsTensor): Float32Array {
  const b = t.bytes;
  // new Uint8Array(view) copies into a fresh buffer; slice() would not copy if `b` is a Buffer.
  if (t.dtype === 'F32' && HOST_IS_LITTLE_ENDIAN) return new Float32Array(new Uint8Array(b).buffer);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (t.dtype) {
    case 'F32': {
      const out = new Float32Array(b.length / 4);
      for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(b.length / 8);
      for (let i = 0; i < out.length; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(b.length / 2);
      for (let i = 0; i < out.length; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32, so widening is a shift of the bit pattern.
      const out = new Float32Array(b.length / 2);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < out.length; i++) bits[i] = dv.getUint16(i * 2, true) << 16;
      return out;
    }
    default:
      throw new Error(`internal: no float32 conversion for dtype ${t.dtype}`);
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function describeNonFinite(values: Float32Array, dtype: string): string | undefined {
  let nan = 0;
  let inf = 0;
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) continue;
    if (Number.isNaN(v)) nan++;
    else inf++;
    if (first < 0) first = i;
  }
  if (first < 0) return undefined;
  const counts = [nan > 0 ? `${nan} NaN` : '', inf > 0 ? `${inf} Inf` : ''].filter((s) => s !== '').join(', ');
  const overflow = dtype === 'F64' && inf > 0 ? '; F64 values beyond the float32 range become Inf' : '';
  return `${counts} of ${values.length}, first at index ${first}${overflow}`;
}
