/** src/runtime/model-loader.ts (kept beside the pipeline tests that use it). */
import t from 'tap';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { writeOnnx } from '../../../src/model/onnx/write.js';
import { readOnnx } from '../../../src/model/onnx/read.js';
import { loadModel, ModelLoadError } from '../../../src/runtime/model-loader.js';
import { sha256 } from '../../../src/util/files.js';
import { buildTestModel, tempDir } from './fixtures/model.js';

const tmp = tempDir('loader');
t.teardown(tmp.remove);
const dir = buildTestModel(join(tmp.dir, 'm'), 3);
const fp32 = join(dir, 'lvunet.fp32.onnx');

t.test('a model directory: the fp32 deployment file, verified, described by its manifest', async (t) => {
  const m = loadModel(dir);
  t.equal(m.path, fp32);
  t.equal(m.sha256, sha256(readFileSync(fp32)));
  t.match(m, { precision: 'fp32', inputName: 'image', width: 256, height: 256, threshold: 0.5, describedBy: 'manifest' });
  t.same(m.preprocessing.mean, [0.485, 0.456, 0.406]);
  t.throws(() => loadModel(dir, { precision: 'fp16' }), /no deployment file of precision fp16/);
});

t.test('a bare .onnx: size and normalisation from its metadata', async (t) => {
  const m = loadModel(fp32);
  t.match(m, { path: fp32, precision: 'fp32', width: 256, height: 256, describedBy: 'onnx-metadata' });
  const model = readOnnx(readFileSync(fp32), fp32);
  const stripped = join(tmp.dir, 'no-meta.onnx');
  writeFileSync(stripped, writeOnnx({ ...model, metadata: new Map() }));
  t.throws(() => loadModel(stripped), { name: 'ModelLoadError', file: stripped, message: /no-meta\.onnx: has no 'normalization' metadata/ });
  t.throws(() => loadModel(fp32, { precision: 'int8' }), /is fp32, but --precision int8 was asked for/);
});

t.test('a bare file beside a manifest that lists it is checked against it', async (t) => {
  const d = join(tmp.dir, 'sibling');
  mkdirSync(d);
  copyFileSync(join(dir, 'manifest.json'), join(d, 'manifest.json'));
  const bytes = readFileSync(fp32);
  bytes[bytes.length - 3] ^= 1;
  writeFileSync(join(d, 'lvunet.fp32.onnx'), bytes);
  t.throws(() => loadModel(join(d, 'lvunet.fp32.onnx')), { file: join(d, 'lvunet.fp32.onnx'), message: /sha256 mismatch: .*manifest\.json says/ });
});

t.test('every failure names the file', async (t) => {
  t.throws(() => loadModel(join(tmp.dir, 'nope')), ModelLoadError);
  const bad = join(tmp.dir, 'bad');
  mkdirSync(bad);
  writeFileSync(join(bad, 'manifest.json'), '{ not json');
  t.throws(() => loadModel(bad), { file: join(bad, 'manifest.json'), message: /manifest is not valid JSON/ });
  writeFileSync(join(bad, 'manifest.json'), JSON.stringify({ schema: 'other' }));
  t.throws(() => loadModel(bad), /schema is "other", expected lvunet-edge\/manifest@1/);
  const good = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { output: Record<string, unknown>; files: Record<string, unknown>[] };
  writeFileSync(join(bad, 'manifest.json'), JSON.stringify({ ...good, output: { ...good.output, threshold: 'high' }, files: [{ ...good.files[0], sha256: 'abc' }] }));
  t.throws(() => loadModel(bad), {
    file: join(bad, 'manifest.json'),
    message: /not a valid lvunet-edge\/manifest@1: output\.threshold: expected a finite number >= 0 and <= 1, got "high"; files\[0\]\.sha256: expected 64 lowercase hex digits, got "abc"/,
  });
  copyFileSync(join(dir, 'manifest.json'), join(bad, 'manifest.json'));
  t.throws(() => loadModel(bad), { file: join(bad, 'lvunet.fp32.onnx'), message: /model file not found/ });
  writeFileSync(join(bad, 'lvunet.fp32.onnx'), Buffer.alloc(10));
  t.throws(() => loadModel(bad), { file: join(bad, 'lvunet.fp32.onnx'), message: /sha256 mismatch/ });
  const truncated = join(tmp.dir, 'truncated.onnx');
  writeFileSync(truncated, readFileSync(fp32).subarray(0, 5000));
  t.throws(() => loadModel(truncated), { file: truncated, message: /not a readable ONNX model/ });
});

// issue 18 finding 8: a FIFO or /dev/zero as the model was read without limit (9 GB in 15 s) or
// blocked the process unnamed. Only regular files are read, and their size is checked first.
const fifoSkip = spawnSync('mkfifo', ['--version']).status === 0 ? false : 'mkfifo is not available';
t.test('a FIFO or a device as the model file or manifest is refused at once, by name', { skip: fifoSkip }, async (t) => {
  const fifo = join(tmp.dir, 'model-fifo.onnx');
  spawnSync('mkfifo', [fifo]);
  // Nobody ever writes to the FIFO: a blocking read would hang this test until tap's timeout.
  t.throws(() => loadModel(fifo), { name: 'ModelLoadError', file: fifo, message: /model-fifo\.onnx: model file is a FIFO, not a regular file; refusing to read it/ });
  t.throws(() => loadModel('/dev/zero'), { file: '/dev/zero', message: /model file is a character device, not a regular file/ });

  // Inside a model directory: the manifest names the file, the file is a FIFO.
  const d = join(tmp.dir, 'fifo-dir');
  mkdirSync(d);
  copyFileSync(join(dir, 'manifest.json'), join(d, 'manifest.json'));
  spawnSync('mkfifo', [join(d, 'lvunet.fp32.onnx')]);
  t.throws(() => loadModel(d), { file: join(d, 'lvunet.fp32.onnx'), message: /is a FIFO, not a regular file/ });
  const m = join(tmp.dir, 'fifo-manifest');
  mkdirSync(m);
  spawnSync('mkfifo', [join(m, 'manifest.json')]);
  t.throws(() => loadModel(m), { file: join(m, 'manifest.json'), message: /manifest is a FIFO/ });
});

t.test('the size limit is checked before reading', async (t) => {
  const size = readFileSync(fp32).length;
  t.throws(() => loadModel(fp32, { maxBytes: size - 1 }), { file: fp32, message: new RegExp(`model file is ${size} bytes, over the limit of ${size - 1} bytes \\(model\\.max_bytes\\)`) });
  t.throws(() => loadModel(dir, { maxBytes: 1000 }), { file: fp32, message: /over the limit of 1000 bytes/ });
  t.equal(loadModel(fp32, { maxBytes: size }).sha256, sha256(readFileSync(fp32)), 'exactly at the limit is fine');
});
