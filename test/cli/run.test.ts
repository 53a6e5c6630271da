import t from 'tap';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, parse } from 'node:path';
import ort from 'onnxruntime-node';

import { decodeMask } from '../../src/image/decode.js';
import { jpegSize } from '../../src/image/jpeg-header.js';
import { decodeJpegFrame } from '../../src/runtime/native/runtime.js';
import { preprocessRgb } from '../../src/image/preprocess.js';
import { summarize } from '../../src/runtime/postprocess/index.js';
import { RESULT_SCHEMA } from '../../src/runtime/sinks/index.js';
import { resultLines } from '../integration/run-helpers.js';
import { runCli } from '../helpers/cli.js';
import { buildTestModel, copyKvasirImages, tempDir } from '../runtime/pipeline/fixtures/model.js';
import { requireShared } from '../helpers/shared-data.js';
import { KVASIR } from '../helpers/paths.js';
import { same } from '../helpers/same.js';

requireShared(KVASIR);

const tmp = tempDir('run-cli');
t.teardown(tmp.remove);
const modelDir = buildTestModel(join(tmp.dir, 'model'));
const images = join(tmp.dir, 'images');
const names = copyKvasirImages(images, 3);

t.test('--save-masks equals a plain reference path pixel for pixel', async (t) => {
  // A seeded model's logits are nearly constant; cutting at the median probability gives masks of
  // about half the frame with detailed edges, where any difference between the paths would show.
  const session = await ort.InferenceSession.create(join(modelDir, 'lvunet.fp32.onnx'), { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  t.teardown(() => session.release());
  // JPEG files are decoded by the decode step of the preprocessing definition (JPEG_DECODE:
  // libjpeg-turbo at the smallest DCT scale still >= the model input), on both paths; the masks are
  // at the file's own size.
  const reference = async (name: string): Promise<{ logits: Float32Array; width: number; height: number }> => {
    const bytes = readFileSync(join(images, name));
    const { width, height } = jpegSize(bytes, name);
    const decoded = decodeJpegFrame({ id: name, data: bytes, width, height }, { width: 256, height: 256 });
    t.ok(decoded.width < width, `${name}: decoded DCT-scaled (${width}x${height} -> ${decoded.width}x${decoded.height})`);
    const x = preprocessRgb(decoded, { width: 256, height: 256 }, 'stretch');
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, 256, 256]) });
    return { logits: out[session.outputNames[0]].data as Float32Array, width, height };
  };
  const first = await reference(names[0]);
  const sorted = Float32Array.from(first.logits).sort();
  const median = sorted[sorted.length >> 1];
  const threshold = Math.fround(1 / (1 + Math.exp(-median)));

  const masks = join(tmp.dir, 'masks');
  const r = runCli(['run', '--model', modelDir, '--source', `folder:${images}`, '--sink', 'stdout', '--threads', '1', '--threshold', String(threshold), '--save-masks', masks]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /ONNX Runtime 1\.\d+\.\d+ \(C API \d+\) from .*libonnxruntime/);
  t.match(r.stderr, /providers: requested \(none: CPU\); active CPUExecutionProvider/);
  t.match(r.stderr, /sha256 [0-9a-f]{64}/);
  t.match(r.stderr, /1x3x256x256/);
  const results = resultLines(r.stdout);
  t.equal(results.length, names.length);
  same(t, readdirSync(masks).sort(), names.map((n) => `${parse(n).name}.png`).sort());

  for (const name of names) {
    const ref = await reference(name);
    const expected = summarize(ref.logits, { width: 256, height: 256 }, ref, { threshold }).maskFrame;
    const got = decodeMask(readFileSync(join(masks, `${parse(name).name}.png`)), name);
    t.equal(got.width, ref.width, `${name} width`);
    t.equal(got.height, ref.height, `${name} height`);
    let differ = 0;
    let fg = 0;
    for (let i = 0; i < expected.data.length; i++) {
      if (expected.data[i] !== got.data[i]) differ++;
      fg += expected.data[i];
    }
    t.equal(differ, 0, `${name}: pixels differing from the reference`);
    t.ok(fg > 0 && fg < expected.data.length, `${name}: reference mask is neither empty nor full (${fg} px)`);
    const result = results.find((x) => x.frame.stem === parse(name).name);
    t.equal(result?.coverage, Math.round((fg / expected.data.length) * 1e6) / 1e6, `${name} coverage`);
  }
});

t.test('jsonl sink appends one versioned result per frame', async (t) => {
  const out = join(tmp.dir, 'results.jsonl');
  for (let i = 0; i < 2; i++) {
    const r = runCli(['run', '--model', modelDir, '--source', `folder:${images}`, '--sink', `jsonl:${out}`, '--threads', '1', '--rle', '--max-frames', '2']);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, '', 'nothing on stdout with a jsonl sink');
  }
  const results = resultLines(readFileSync(out, 'utf8'));
  t.equal(results.length, 4, 'two runs of two frames, appended');
  const r0 = results[0];
  t.equal(r0.schema, RESULT_SCHEMA);
  t.equal(r0.model.sha256, (JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8')) as { files: { file: string; sha256: string }[] }).files.find((f) => f.file === 'lvunet.fp32.onnx')?.sha256);
  t.equal(r0.model.precision, 'fp32');
  t.equal(r0.provider, 'CPUExecutionProvider');
  t.equal(r0.frame.stem, parse(names[0]).name);
  t.ok(Date.parse(r0.completionTime) >= Date.parse(r0.captureTime));
  t.ok(r0.latencyMs.inference > 0 && r0.latencyMs.total >= r0.latencyMs.inference);
  t.ok(r0.rle && r0.rle.size[0] === r0.frame.height && r0.rle.size[1] === r0.frame.width, 'COCO size is [height, width]');
});

t.test('synthetic YUYV frames run end to end', async (t) => {
  const r = runCli(['run', '--model', modelDir, '--source', 'synthetic', '--format', 'yuyv', '--width', '320', '--height', '240', '--max-frames', '3', '--threads', '1']);
  t.equal(r.status, 0, r.stderr);
  const results = resultLines(r.stdout);
  same(t, results.map((x) => [x.frame.seq, x.frame.format, x.frame.width, x.frame.height]), [
    [0, 'YUYV', 320, 240],
    [1, 'YUYV', 320, 240],
    [2, 'YUYV', 320, 240],
  ]);
});

t.test('model and runtime problems fail fast, naming the file', async (t) => {
  const missing = join(tmp.dir, 'no-such-model');
  let r = runCli(['run', '--model', missing, '--source', `folder:${images}`]);
  t.equal(r.status, 1);
  t.match(r.stderr, new RegExp(`${missing}: model not found`));

  const corrupt = join(tmp.dir, 'corrupt.onnx');
  writeFileSync(corrupt, Buffer.from('this is not an onnx model at all'));
  r = runCli(['run', '--model', corrupt, '--source', `folder:${images}`]);
  t.equal(r.status, 1);
  t.match(r.stderr, new RegExp(`${corrupt}: not a readable ONNX model`));

  const noManifest = join(tmp.dir, 'empty-model-dir');
  mkdirSync(noManifest);
  r = runCli(['run', '--model', noManifest, '--source', `folder:${images}`]);
  t.equal(r.status, 1);
  t.match(r.stderr, new RegExp(`${join(noManifest, 'manifest.json')}: manifest not found`));

  const tampered = join(tmp.dir, 'tampered');
  mkdirSync(tampered);
  for (const f of ['manifest.json', 'lvunet.fp32.onnx']) copyFileSync(join(modelDir, f), join(tampered, f));
  const bytes = readFileSync(join(tampered, 'lvunet.fp32.onnx'));
  bytes[bytes.length - 10] ^= 0xff;
  writeFileSync(join(tampered, 'lvunet.fp32.onnx'), bytes);
  r = runCli(['run', '--model', tampered, '--source', `folder:${images}`]);
  t.equal(r.status, 1);
  t.match(r.stderr, new RegExp(`${join(tampered, 'lvunet.fp32.onnx')}: sha256 mismatch: manifest says [0-9a-f]{64}, file is [0-9a-f]{64}`));
  t.equal(r.stdout, '');

  r = runCli(['run', '--model', modelDir, '--source', `folder:${images}`, '--precision', 'int8']);
  t.equal(r.status, 1);
  t.match(r.stderr, /manifest\.json: no deployment file of precision int8; deployment files: lvunet\.fp32\.onnx \(fp32\)/);
});

t.test('a missing ONNX Runtime library fails fast, naming it', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { CLI, REPO_ROOT } = await import('../helpers/paths.js');
  const r = spawnSync(process.execPath, [CLI, 'run', '--model', modelDir, '--source', `folder:${images}`], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, LVUNET_ORT_LIBRARY: '/nope' },
  });
  t.equal(r.status, 1, r.stderr);
  t.match(r.stderr, /\/nope/);
  t.equal(r.stdout, '');
});

t.test('a V4L2 source fails clearly when there is no camera or no V4L2 support', async (t) => {
  const { v4l2Availability } = await import('../../src/runtime/pipeline/index.js');
  const { existsSync } = await import('node:fs');
  const device = '/dev/video93';
  if (existsSync(device)) return;
  const r = runCli(['run', '--model', modelDir, '--source', `v4l2:${device}`]);
  t.equal(r.status, 1);
  t.equal(r.stdout, '');
  t.match(r.stderr, v4l2Availability().available ? /\/dev\/video93/ : /V4L2 capture not available: /);
});

t.test('usage errors exit 2', async (t) => {
  t.equal(runCli(['run', '--source', 'synthetic']).status, 2);
  t.equal(runCli(['run', '--model', modelDir, '--source', 'bogus']).status, 2);
  t.equal(runCli(['run', '--model', modelDir, '--source', 'synthetic', '--sink', 'mqtt:x']).status, 2);
});
