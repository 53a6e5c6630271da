import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  readSafetensors,
  writeSafetensors,
  writeSafetensorsRaw,
  type RawTensor,
} from '../../src/model/safetensors.js';
import { WeightsError, checkWeights, type ExpectedTensor, type WeightsCulprit } from '../../src/model/weights-check.js';
import { WEIGHTS_TSV } from '../helpers/paths.js';
import { sharedSkip } from '../helpers/shared-data.js';
import { same } from '../helpers/same.js';

const TSV = WEIGHTS_TSV;
// The tests that read it skip, naming it, without ../shared.
const NEEDS_TSV = { skip: sharedSkip(WEIGHTS_TSV) };

interface TsvRow extends ExpectedTensor {
  shape: number[];
  kind: string;
}

function tsvRows(): TsvRow[] {
  return readFileSync(TSV, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split('\t'))
    .map(([name, shape, kind]) => ({ name, shape: shape === 'scalar' ? [] : shape.split('x').map(Number), kind }));
}

function expectedFromTsv(): ExpectedTensor[] {
  return tsvRows().filter((r) => !r.name.endsWith('.num_batches_tracked'));
}

/** Deterministic so a failure reproduces. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

type F32Tensors = Map<string, { shape: readonly number[]; data: Float32Array }>;

function randomTensors(expected: readonly ExpectedTensor[], seed = 1): F32Tensors {
  const rand = random(seed);
  const out: F32Tensors = new Map();
  for (const { name, shape } of expected) {
    const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
    for (let i = 0; i < data.length; i++) data[i] = rand() * 2 - 1;
    out.set(name, { shape, data });
  }
  return out;
}

function asRaw(tensors: F32Tensors): Map<string, RawTensor> {
  const raw = new Map<string, RawTensor>();
  for (const [name, { shape, data }] of tensors) {
    raw.set(name, { dtype: 'F32', shape, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  }
  return raw;
}

const f32Bytes = (values: number[]): Uint8Array => new Uint8Array(Float32Array.from(values).buffer);

function i64Counter(n: bigint): RawTensor {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, n, true);
  return { dtype: 'I64', shape: [], bytes };
}

/** The whole load path a CLI runs: parse the bytes, then check them against the model. */
function load(bytes: Uint8Array, expected: readonly ExpectedTensor[], file: string): Map<string, Float32Array> {
  return checkWeights(readSafetensors(bytes, file), expected, file);
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** Asserts a WeightsError naming `file` and every culprit in its message; returns the culprits. */
function culpritsOf(t: Test, fn: () => unknown, file: string): WeightsCulprit[] {
  const e = caught(fn);
  if (!(e instanceof WeightsError)) {
    t.fail(`expected WeightsError, got ${String(e)}`);
    return [];
  }
  t.equal(e.file, file);
  t.ok(e.message.startsWith(`${file}: `), 'message names the file');
  for (const c of e.culprits) t.ok(e.message.includes(`\n  ${c.name}: `), `message names ${c.name}`);
  t.equal(e.message.split('\n').length, e.culprits.length + 1, 'one line per culprit');
  return e.culprits;
}

const SMALL: ExpectedTensor[] = [
  { name: 'stages.0.conv1.0.weight', shape: [4, 3, 3, 3] },
  { name: 'stages.0.conv1.1.weight', shape: [4] },
  { name: 'stages.0.conv1.1.bias', shape: [4] },
  { name: 'stages.0.conv1.1.running_mean', shape: [4] },
  { name: 'stages.0.conv1.1.running_var', shape: [4] },
  { name: 'final.1.bias', shape: [1] },
];

t.test('round trip write -> read -> check returns float32 copies in expected order', (t) => {
  const tensors = randomTensors(SMALL);
  const bytes = writeSafetensors(tensors, { format: 'pt' });
  const weights = load(bytes, SMALL, 'small.safetensors');
  t.same([...weights.keys()], SMALL.map((e) => e.name));
  for (const [name, { data }] of tensors) same(t, weights.get(name), data, name);
  bytes.fill(0);
  same(t, weights.get('final.1.bias'), tensors.get('final.1.bias')!.data, 'result does not alias the file');
  t.end();
});

t.test('full LV-UNet state dict from the reference TSV round trips', NEEDS_TSV, (t) => {
  const expected = expectedFromTsv();
  t.equal(expected.length, 319);
  t.ok(expected.some((e) => e.shape.length === 4 && e.shape[1] === 1), 'includes depthwise OIHW weights');
  const tensors = randomTensors(expected, 7);
  const weights = load(writeSafetensors(tensors), expected, 'lvunet.safetensors');
  t.equal(weights.size, expected.length);
  let mismatched = 0;
  for (const [name, { data }] of tensors) {
    const got = weights.get(name)!;
    if (got.length !== data.length || got.some((v, i) => v !== data[i])) mismatched++;
  }
  t.equal(mismatched, 0, 'every value survives');
  t.end();
});

t.test('num_batches_tracked I64 tensors, as torch writes them, are ignored', NEEDS_TSV, (t) => {
  const rows = tsvRows();
  const expected = expectedFromTsv();
  const raw = asRaw(randomTensors(expected, 3));
  const counters = rows.filter((r) => r.name.endsWith('.num_batches_tracked'));
  t.equal(counters.length, 57);
  for (const { name } of counters) raw.set(name, i64Counter(18750n));
  const bytes = writeSafetensorsRaw(raw, { format: 'pt' });
  t.equal(readSafetensors(bytes, 'torch.safetensors').tensors.size, 376, 'the file does hold the counters');

  const weights = load(bytes, expected, 'torch.safetensors');
  t.equal(weights.size, 319);
  t.notOk([...weights.keys()].some((n) => n.endsWith('num_batches_tracked')));
  // Passing the unfiltered state-dict list is harmless too: the counters are skipped on both sides.
  t.equal(load(bytes, rows, 'torch.safetensors').size, 319);
  t.end();
});

t.test('F16, BF16 and F64 weights are converted to float32', (t) => {
  const f16 = Uint8Array.from([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x35, 0x01, 0x00]); // 1, -2, 0.3125, 2^-24
  const bf16 = Uint8Array.from([0x80, 0x3f, 0x20, 0xc1]); // 1, -10
  const f64 = new Uint8Array(Float64Array.from([0.1, -3]).buffer);
  const bytes = writeSafetensorsRaw(
    new Map([
      ['h', { dtype: 'F16', shape: [4], bytes: f16 }],
      ['b', { dtype: 'BF16', shape: [2], bytes: bf16 }],
      ['d', { dtype: 'F64', shape: [2], bytes: f64 }],
    ]),
  );
  const expected = [
    { name: 'h', shape: [4] },
    { name: 'b', shape: [2] },
    { name: 'd', shape: [2] },
  ];
  const w = load(bytes, expected, 'mixed.safetensors');
  same(t, Array.from(w.get('h')!), [1, -2, 0.3125, 2 ** -24]);
  same(t, Array.from(w.get('b')!), [1, -10]);
  same(t, Array.from(w.get('d')!), [Math.fround(0.1), -3]);
  t.end();
});

// Each bad case alone, on an otherwise correct file.

t.test('wrong dtype', (t) => {
  const file = 'int.safetensors';
  const raw = asRaw(randomTensors(SMALL));
  raw.set('stages.0.conv1.1.bias', { dtype: 'I32', shape: [4], bytes: new Uint8Array(16) });
  raw.set('final.1.bias', { dtype: 'U8', shape: [1], bytes: new Uint8Array(1) });
  const culprits = culpritsOf(t, () => load(writeSafetensorsRaw(raw), SMALL, file), file);
  t.same(culprits, [
    { name: 'stages.0.conv1.1.bias', problem: 'dtype', expected: 'F32', actual: 'I32' },
    { name: 'final.1.bias', problem: 'dtype', expected: 'F32', actual: 'U8' },
  ]);
  const e = caught(() => load(writeSafetensorsRaw(raw), SMALL, file)) as WeightsError;
  t.match(e.message, 'stages.0.conv1.1.bias: dtype I32, expected F32');
  t.end();
});

t.test('missing tensor', (t) => {
  const file = 'missing.safetensors';
  const tensors = randomTensors(SMALL);
  tensors.delete('final.1.bias');
  const culprits = culpritsOf(t, () => load(writeSafetensors(tensors), SMALL, file), file);
  same(t, culprits, [{ name: 'final.1.bias', problem: 'missing', expected: '1' }]);
  const e = caught(() => load(writeSafetensors(tensors), SMALL, file)) as WeightsError;
  t.match(e.message, /\n {2}final\.1\.bias: missing$/);
  t.end();
});

t.test('unexpected tensor', (t) => {
  const file = 'extra.safetensors';
  const tensors = randomTensors(SMALL);
  tensors.set('foo.bar', { shape: [2], data: new Float32Array(2) });
  const culprits = culpritsOf(t, () => load(writeSafetensors(tensors), SMALL, file), file);
  same(t, culprits, [{ name: 'foo.bar', problem: 'unexpected' }]);
  const e = caught(() => load(writeSafetensors(tensors), SMALL, file)) as WeightsError;
  t.match(e.message, /\n {2}foo\.bar: unexpected tensor$/);
  t.end();
});

t.test('mis-shaped tensor', (t) => {
  const file = 'shape.safetensors';
  const expected: ExpectedTensor[] = [{ name: 'stages.0.conv1.0.weight', shape: [80, 80, 1, 1] }];
  const tensors: F32Tensors = new Map();
  tensors.set('stages.0.conv1.0.weight', { shape: [80, 80, 3, 3], data: new Float32Array(80 * 80 * 9) });
  const culprits = culpritsOf(t, () => load(writeSafetensors(tensors), expected, file), file);
  same(t, culprits, [{ name: 'stages.0.conv1.0.weight', problem: 'shape', expected: '80x80x1x1', actual: '80x80x3x3' }]);
  const e = caught(() => load(writeSafetensors(tensors), expected, file)) as WeightsError;
  t.match(e.message, 'stages.0.conv1.0.weight: shape 80x80x3x3, expected 80x80x1x1');
  t.end();
});

t.test('same element count in another shape is still a shape culprit', (t) => {
  const file = 'transposed.safetensors';
  const expected: ExpectedTensor[] = [{ name: 'w', shape: [16, 3, 3, 3] }];
  const tensors = new Map([['w', { shape: [3, 16, 3, 3], data: new Float32Array(432) }]]);
  same(t, culpritsOf(t, () => load(writeSafetensors(tensors), expected, file), file), [
    { name: 'w', problem: 'shape', expected: '16x3x3x3', actual: '3x16x3x3' },
  ]);
  t.end();
});

t.test('NaN and Inf values', (t) => {
  const file = 'nan.safetensors';
  const tensors = randomTensors(SMALL);
  tensors.get('stages.0.conv1.1.running_var')!.data.set([1, NaN, 2, NaN]);
  tensors.get('final.1.bias')!.data[0] = -Infinity;
  const culprits = culpritsOf(t, () => load(writeSafetensors(tensors), SMALL, file), file);
  t.same(culprits, [
    { name: 'stages.0.conv1.1.running_var', problem: 'non-finite', actual: '2 NaN of 4, first at index 1' },
    { name: 'final.1.bias', problem: 'non-finite', actual: '1 Inf of 1, first at index 0' },
  ]);
  t.end();
});

t.test('F64 values beyond float32 range are non-finite after conversion', (t) => {
  const file = 'f64.safetensors';
  const bytes = writeSafetensorsRaw(
    new Map([['w', { dtype: 'F64', shape: [2], bytes: new Uint8Array(Float64Array.from([1, 1e300]).buffer) }]]),
  );
  const [c] = culpritsOf(t, () => load(bytes, [{ name: 'w', shape: [2] }], file), file);
  t.match(c, { name: 'w', problem: 'non-finite', actual: /1 Inf of 2, first at index 1; F64 values beyond/ });
  t.end();
});

t.test('one file with several culprits lists every one of them', NEEDS_TSV, (t) => {
  const file = 'models/user-upload.safetensors';
  const expected = expectedFromTsv();
  const raw = asRaw(randomTensors(expected, 11));
  const conv = expected.find((e) => e.shape.length === 4 && e.shape[2] === 1)!;
  const wrongShape = [...conv.shape.slice(0, 2), 3, 3];
  raw.set(conv.name, { dtype: 'F32', shape: wrongShape, bytes: new Uint8Array(wrongShape.reduce((a, d) => a * d, 4)) });
  const last = expected.at(-1)!;
  raw.delete(last.name);
  raw.set('foo.bar', { dtype: 'F32', shape: [1], bytes: f32Bytes([0]) });
  raw.set('firstconv.1.bias', { dtype: 'I32', shape: [16], bytes: new Uint8Array(64) });
  raw.set('firstconv.1.running_mean', { dtype: 'F32', shape: [16], bytes: f32Bytes([...Array(15).fill(0), NaN]) });
  // Both wrong at once: reported as two culprits of the same tensor.
  raw.set('firstconv.1.weight', { dtype: 'U8', shape: [8], bytes: new Uint8Array(8) });
  raw.set('firstconv.1.num_batches_tracked', i64Counter(1n));

  const culprits = culpritsOf(t, () => load(writeSafetensorsRaw(raw), expected, file), file);
  const byName = culprits.map((c) => `${c.name} ${c.problem}`).sort();
  t.same(byName, [
    `${conv.name} shape`,
    `${last.name} missing`,
    'firstconv.1.bias dtype',
    'firstconv.1.running_mean non-finite',
    'firstconv.1.weight dtype',
    'firstconv.1.weight shape',
    'foo.bar unexpected',
  ].sort());
  const e = caught(() => load(writeSafetensorsRaw(raw), expected, file)) as WeightsError;
  t.match(e.message, `${conv.name}: shape ${wrongShape.join('x')}, expected ${conv.shape.join('x')}`);
  t.match(e.message, `${last.name}: missing`);
  t.match(e.message, 'foo.bar: unexpected tensor');
  t.match(e.message, 'firstconv.1.bias: dtype I32, expected F32');
  t.match(e.message, 'firstconv.1.weight: dtype U8, expected F32');
  t.match(e.message, 'firstconv.1.weight: shape 8, expected 16');
  t.match(e.message, 'firstconv.1.running_mean: non-finite values (1 NaN of 16, first at index 15)');
  t.match(e.message, `${file}: weights do not match the model (7 problems):`);
  t.end();
});
