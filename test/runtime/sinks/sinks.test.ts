import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { decodeMask } from '../../../src/image/decode.js';
import {
  assertResultV1,
  JsonlSink,
  MaskDirSink,
  maskFileName,
  parseSinkSpec,
  RESULT_SCHEMA,
  resultLine,
  StreamSink,
  type ResultV1,
  type SinkItem,
} from '../../../src/runtime/sinks/index.js';
import { tempDir } from '../pipeline/fixtures/model.js';
import { same } from '../../helpers/same.js';

const tmp = tempDir('sinks');
t.teardown(tmp.remove);

function item(seq: number, stem?: string, id = `synthetic#${seq}`): SinkItem {
  const result: ResultV1 = {
    schema: RESULT_SCHEMA,
    frame: { id, seq, width: 4, height: 2, format: 'RGB24', ...(stem ? { stem } : {}) },
    model: { sha256: '0'.repeat(64), precision: 'fp32' },
    provider: 'CPUExecutionProvider',
    captureTime: '2026-01-01T00:00:00.000Z',
    completionTime: '2026-01-01T00:00:00.010Z',
    latencyMs: { capture: 0, preprocess: 1, queue: 0, inference: 5, postprocess: 2, total: 10 },
    coverage: 0.25,
    components: [],
    droppedComponents: 0,
  };
  return { result, mask: { width: 4, height: 2, data: Uint8Array.from([1, 1, 0, 0, 0, 0, 0, 0]) } };
}

t.test('sink specs', async (t) => {
  t.same(parseSinkSpec('jsonl:/x/y.jsonl'), { kind: 'jsonl', path: '/x/y.jsonl' });
  t.same(parseSinkSpec('stdout'), { kind: 'stdout' });
  t.same(parseSinkSpec('none'), { kind: 'none' });
  t.throws(() => parseSinkSpec('mqtt://broker'), /--sink "mqtt:\/\/broker": use jsonl:PATH, stdout or none/);
});

t.test('jsonl appends to what is there, one parseable line per result', async (t) => {
  const path = join(tmp.dir, 'r.jsonl');
  writeFileSync(path, `${resultLine(item(0).result)}\n`);
  const sink = new JsonlSink(path);
  await sink.open();
  await sink.write(item(1));
  await sink.write(item(2));
  await sink.close();
  const lines = readFileSync(path, 'utf8').split('\n');
  t.equal(lines.pop(), '', 'ends with a newline');
  same(t, lines.map((l) => (JSON.parse(l) as ResultV1).frame.seq), [0, 1, 2]);
  for (const l of lines) assertResultV1(JSON.parse(l));
  await t.rejects(new JsonlSink(join(tmp.dir, 'missing-dir', 'r.jsonl')).open(), /jsonl:.*missing-dir.*cannot open for appending/);
});

t.test('result lines have a fixed key order and the schema is checked field by field', async (t) => {
  const a = item(3);
  const { schema, frame, ...rest } = a.result;
  const shuffled: ResultV1 = { ...rest, frame, schema };
  t.equal(resultLine(shuffled), resultLine(a.result));
  t.match(resultLine(a.result), /^\{"schema":"lvunet-edge\/result@1","frame":/);
  t.throws(() => assertResultV1({ ...a.result, latencyMs: { ...a.result.latencyMs, inference: 'slow' } }), /field 'latencyMs\.inference'/);
  t.throws(() => assertResultV1({ ...a.result, schema: 'lvunet-edge/result@2' }), /field 'schema'/);
});

t.test('stream sink waits for drain', async (t) => {
  const stream = new PassThrough({ highWaterMark: 16 });
  const sink = new StreamSink(stream, 'test');
  const written = sink.write(item(4));
  let done = false;
  void written.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  t.equal(done, false, 'blocked on a full stream');
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await written;
  t.equal(JSON.parse(Buffer.concat(chunks).toString()).frame.seq, 4);
});

t.test('mask folder: PNG named by stem (or safe frame id), 0/255, decodable', async (t) => {
  const dir = join(tmp.dir, 'masks');
  const sink = new MaskDirSink(dir);
  await sink.open();
  await sink.write(item(0, 'benign (10)', 'benign (10)'));
  await sink.write(item(1, undefined, 'file:/data/cam.yuyv#1'));
  t.equal(maskFileName(item(0, 'img', 'img#2').result), 'img_2.png', 'a looped replay does not overwrite the first pass');
  const m = decodeMask(readFileSync(join(dir, 'benign (10).png')), 'mask');
  same(t, [...m.data], [1, 1, 0, 0, 0, 0, 0, 0]);
  t.ok(readFileSync(join(dir, 'file__data_cam.yuyv_1.png')).length > 0);
});
