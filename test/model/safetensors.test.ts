import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  MAX_HEADER_BYTES,
  SafetensorsError,
  readSafetensors,
  writeSafetensors,
  writeSafetensorsRaw,
} from '../../src/model/safetensors.js';
import { WEIGHTS_TSV } from '../helpers/paths.js';
import { sharedSkip } from '../helpers/shared-data.js';
import { same } from '../helpers/same.js';

const TSV = WEIGHTS_TSV;
// The tests that read it skip, naming it, without ../shared.
const NEEDS_TSV = { skip: sharedSkip(WEIGHTS_TSV) };

function referenceShapes(): { name: string; shape: number[] }[] {
  return readFileSync(TSV, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split('\t'))
    .filter(([name]) => !name.endsWith('.num_batches_tracked'))
    .map(([name, shape]) => ({ name, shape: shape === 'scalar' ? [] : shape.split('x').map(Number) }));
}

function tsvFile(): Buffer {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const { name, shape } of referenceShapes()) {
    const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
    for (let i = 0; i < data.length; i++) data[i] = i % 7;
    tensors.set(name, { shape, data });
  }
  return writeSafetensors(tensors, { format: 'pt' });
}

/** A file with a hand-written header, for damage the writer refuses to produce. */
function rawFile(header: string, data: Uint8Array = new Uint8Array(0), declaredLength?: bigint): Buffer {
  const json = Buffer.from(header, 'utf8');
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(declaredLength ?? BigInt(json.length), 0);
  json.copy(out, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** The subtest type, with plugin assertions, without naming tap's internal generics. */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Asserts a SafetensorsError naming `file`, and returns its problems for closer checks. */
function problemsOf(t: Test, bytes: Uint8Array, file = 'weights/bad.safetensors'): string[] {
  const e = caught(() => readSafetensors(bytes, file));
  if (!(e instanceof SafetensorsError)) {
    t.fail(`expected SafetensorsError, got ${String(e)}`);
    return [];
  }
  t.equal(e.file, file);
  t.match(e.message, file);
  for (const p of e.problems) t.match(e.message, p, 'message lists every problem');
  return e.problems;
}

t.test('round trip keeps names, shapes, values and metadata', (t) => {
  const tensors = new Map([
    ['b.weight', { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, -0, 1e-30]) }],
    ['a.bias', { shape: [4], data: Float32Array.from([0.1, 0.2, 0.3, 0.4]) }],
    ['scalar', { shape: [], data: Float32Array.from([42]) }],
    ['empty', { shape: [0, 3], data: new Float32Array(0) }],
  ]);
  const bytes = writeSafetensors(tensors, { format: 'pt', note: 'trained 300 epochs' });
  const read = readSafetensors(bytes, 'rt.safetensors');
  same(t, read.metadata, { format: 'pt', note: 'trained 300 epochs' });
  same(t, [...read.tensors.keys()].sort(), ['a.bias', 'b.weight', 'empty', 'scalar']);
  for (const [name, { shape, data }] of tensors) {
    const r = read.tensors.get(name)!;
    t.equal(r.dtype, 'F32', name);
    t.same(r.shape, shape, name);
    t.notOk(Buffer.isBuffer(r.bytes), 'plain Uint8Array, so slice() copies');
    same(t, new Float32Array(r.bytes.slice().buffer), data, name);
  }
  t.end();
});

t.test('writer follows the reference layout: padded header, sorted names, contiguous data', (t) => {
  const one = (v: number) => ({ shape: [1], data: Float32Array.from([v]) });
  // Integer-like names would come first if the header were a plain JS object.
  const bytes = writeSafetensors(new Map([['b', one(1)], ['10', one(2)], ['2', one(3)], ['a', one(4)]]));
  const n = Number(bytes.readBigUInt64LE(0));
  t.equal(n % 8, 0, 'header length is a multiple of 8');
  const header = bytes.subarray(8, 8 + n).toString('utf8');
  t.match(header, /^\{.*\} *$/, 'padding is trailing spaces');
  t.notOk('__metadata__' in JSON.parse(header), 'no metadata key when none is given');
  const names = [...header.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
  t.same(names, ['10', '2', 'a', 'b']);
  const offsets = names.map((name) => JSON.parse(header)[name].data_offsets);
  t.same(offsets, [[0, 4], [4, 8], [8, 12], [12, 16]]);
  t.equal(bytes.length, 8 + n + 16);
  same(t, Array.from(new Float32Array(new Uint8Array(bytes.subarray(8 + n)).buffer)), [2, 3, 4, 1]);
  t.end();
});

t.test('reader accepts, and writer matches, the reference implementation\'s bytes', (t) => {
  // Fixture from huggingface/safetensors bindings/python/tests/test_simple.py: an I32 2x2 zero
  // tensor with metadata; its header carries 7 trailing spaces (0x66 bytes in all).
  const json = '{"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';
  const fixture = rawFile(`${json}       `, new Uint8Array(16));
  t.equal(fixture.readBigUInt64LE(0), 0x66n);
  const read = readSafetensors(fixture, 'reference.safetensors');
  same(t, read.metadata, { framework: 'pt' });
  same(t, read.tensors.get('test1')?.shape, [2, 2]);

  // Today's reference writer serialises the same compact JSON and pads it with spaces only up to
  // the next multiple of 8 (95 -> 96 bytes here).
  const written = writeSafetensorsRaw(
    new Map([['test1', { dtype: 'I32', shape: [2, 2], bytes: new Uint8Array(16) }]]),
    { framework: 'pt' },
  );
  same(t, written, rawFile(`${json} `, new Uint8Array(16)));
  t.end();
});

t.test('writer copies only the view of a Float32Array that shares a buffer', (t) => {
  const backing = Float32Array.from([9, 9, 1, 2, 3, 9]);
  const view = backing.subarray(2, 5);
  const bytes = writeSafetensors(new Map([['w', { shape: [3], data: view }]]));
  const r = readSafetensors(bytes, 'view.safetensors').tensors.get('w')!;
  same(t, Array.from(new Float32Array(r.bytes.slice().buffer)), [1, 2, 3]);
  backing[2] = 100;
  same(t, Array.from(new Float32Array(r.bytes.slice().buffer)), [1, 2, 3], 'file does not alias the input');
  t.end();
});

t.test('writer refuses data that does not match its shape', (t) => {
  t.throws(
    () => writeSafetensors(new Map([['w', { shape: [2, 2], data: new Float32Array(3) }]])),
    RangeError,
  );
  t.throws(() => writeSafetensors(new Map([['w', { shape: [1.5], data: new Float32Array(1) }]])), RangeError);
  t.throws(() => writeSafetensors(new Map([['__metadata__', { shape: [1], data: new Float32Array(1) }]])), RangeError);
  t.end();
});

t.test('reader handles other dtypes and tensors at unaligned offsets', (t) => {
  const i64 = new Uint8Array(8);
  new DataView(i64.buffer).setBigInt64(0, 1234n, true);
  const bytes = writeSafetensorsRaw(
    new Map([
      ['a.half', { dtype: 'F16', shape: [1], bytes: Uint8Array.from([0x00, 0x3c]) }],
      ['b.num_batches_tracked', { dtype: 'I64', shape: [], bytes: i64 }],
      ['c.weight', { dtype: 'F32', shape: [1], bytes: new Uint8Array(new Float32Array([2.5]).buffer) }],
    ]),
  );
  const read = readSafetensors(bytes, 'mixed.safetensors');
  t.equal(read.tensors.get('a.half')?.dtype, 'F16');
  const counter = read.tensors.get('b.num_batches_tracked')!;
  t.equal(counter.dtype, 'I64');
  t.same(counter.shape, []);
  t.equal(new DataView(counter.bytes.slice().buffer).getBigInt64(0, true), 1234n);
  const w = read.tensors.get('c.weight')!;
  t.equal(w.bytes.byteOffset % 4, 2, 'F32 tensor sits at an unaligned offset');
  same(t, Array.from(new Float32Array(w.bytes.slice().buffer)), [2.5]);
  t.end();
});

t.test('real-shaped file of the full LV-UNet state dict round trips', NEEDS_TSV, (t) => {
  const expected = referenceShapes();
  t.equal(expected.length, 319, 'TSV lists 319 tensors besides the batch counters');
  const read = readSafetensors(tsvFile(), 'lvunet.safetensors');
  t.equal(read.tensors.size, expected.length);
  for (const { name, shape } of expected) same(t, read.tensors.get(name)?.shape, shape, name);
  t.end();
});

t.test('file shorter than the length field', (t) => {
  const problems = problemsOf(t, Uint8Array.from([1, 2, 3]));
  t.match(problems, [/3 bytes, shorter than the 8-byte header length/]);
  t.end();
});

t.test('truncated inside the header', NEEDS_TSV, (t) => {
  const whole = tsvFile();
  const problems = problemsOf(t, whole.subarray(0, 200));
  t.match(problems, [/header length \d+ runs past the end of the file \(200 bytes\): file truncated/]);
  t.end();
});

t.test('truncated inside the data names every tensor it cut', NEEDS_TSV, (t) => {
  const whole = tsvFile();
  const n = Number(whole.readBigUInt64LE(0));
  const dataLen = whole.length - 8 - n;
  const cut = whole.subarray(0, 8 + n + Math.floor(dataLen / 2));
  const problems = problemsOf(t, cut);
  t.ok(problems.length > 1, 'several tensors are past the cut');
  for (const p of problems) t.match(p, /run past the end of the data \(\d+ bytes\): file truncated\?/);
  // The writer sorts names, so the last name alphabetically is certainly past a half-way cut.
  const last = referenceShapes().map((e) => e.name).sort().at(-1)!;
  t.ok(problems.some((p) => p.startsWith(`${last}:`)), `${last} is reported`);
  t.end();
});

t.test('header length absurdly large', (t) => {
  t.match(problemsOf(t, rawFile('{}', undefined, 2n ** 64n - 1n)), [/larger than the 100000000-byte limit/]);
  t.match(problemsOf(t, rawFile('{}', undefined, BigInt(MAX_HEADER_BYTES + 1))), [/larger than/]);
  t.end();
});

t.test('header that is not JSON, not an object, or not UTF-8', (t) => {
  t.match(problemsOf(t, rawFile('{"a": {"dtype": "F32",')), [/header is not valid JSON/]);
  t.match(problemsOf(t, rawFile('')), [/header is not valid JSON/]);
  t.match(problemsOf(t, rawFile('[1, 2]')), [/header JSON is an array, expected an object/]);
  t.match(problemsOf(t, rawFile('null')), [/header JSON is null/]);
  const latin1 = rawFile('{"x":1}');
  latin1[10] = 0xff;
  t.match(problemsOf(t, latin1), [/not valid UTF-8/]);
  t.end();
});

t.test('entries missing fields, with unknown dtypes or wrong byte lengths are all reported', (t) => {
  const header = JSON.stringify({
    'no.fields': {},
    'bad.dtype': { dtype: 'F33', shape: [1], data_offsets: [0, 4] },
    'short.data': { dtype: 'F32', shape: [2, 2], data_offsets: [4, 16] },
    'bad.shape': { dtype: 'F32', shape: [-1], data_offsets: [16, 16] },
    'backwards': { dtype: 'F32', shape: [1], data_offsets: [20, 16] },
    'not.entry': 7,
    __metadata__: { ok: 'yes', count: 3 },
  });
  const problems = problemsOf(t, rawFile(header, new Uint8Array(32)));
  same(t, problems.sort(), [
    '__metadata__: value of "count" is not a string',
    'backwards: data_offsets [20, 16] end before they begin',
    'bad.dtype: unknown dtype "F33"',
    'bad.shape: "shape" is not an array of non-negative integers',
    'no.fields: missing "data_offsets"',
    'no.fields: missing "dtype"',
    'no.fields: missing "shape"',
    'not.entry: entry is not an object',
    'short.data: data_offsets [4, 16] hold 12 bytes, but F32 [2, 2] needs 16',
  ]);
  t.end();
});

t.test('offsets past the end of the data', (t) => {
  const header = JSON.stringify({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } });
  same(t, problemsOf(t, rawFile(header, new Uint8Array(12))), [
    'w: data_offsets [0, 16] run past the end of the data (12 bytes): file truncated?',
  ]);
  t.end();
});

t.test('overlapping offsets', (t) => {
  const header = JSON.stringify({
    a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    c: { dtype: 'F32', shape: [1], data_offsets: [16, 20] },
    empty: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
  });
  same(t, problemsOf(t, rawFile(header, new Uint8Array(20))), ['b: data_offsets [8, 16] overlap a [0, 16]']);
  t.end();
});
