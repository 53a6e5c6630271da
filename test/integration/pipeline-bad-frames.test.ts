/** Bad frames are dropped with a counted, logged reason while every good frame is processed (real CLI, real ORT). */
import t from 'tap';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { assertResultV1, type ResultV1 } from '../../src/runtime/sinks/index.js';
import { runCli } from '../helpers/cli.js';
import { KVASIR } from '../helpers/paths.js';
import { buildTestModel, copyKvasirImages, tempDir } from '../runtime/pipeline/fixtures/model.js';
import { requireShared } from '../helpers/shared-data.js';
import { same } from '../helpers/same.js';

requireShared(KVASIR);

const tmp = tempDir('bad-frames');
t.teardown(tmp.remove);
const modelDir = buildTestModel(join(tmp.dir, 'model'));

function results(stdout: string): ResultV1[] {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l)
    .map((l) => {
      const v: unknown = JSON.parse(l);
      assertResultV1(v);
      return v;
    });
}

t.test('a corrupt image and a zero-size file in a folder are dropped, the rest processed', async (t) => {
  const dir = join(tmp.dir, 'folder');
  const good = copyKvasirImages(dir, 3);
  // Sorted between the good images, so the replay has to go on after each bad one.
  writeFileSync(join(dir, 'cju0zz-corrupt.jpg'), Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 7)]));
  writeFileSync(join(dir, 'cju0zz-empty.png'), Buffer.alloc(0));
  const r = runCli(['run', '--model', modelDir, '--source', `folder:${dir}`, '--threads', '1']);
  t.equal(r.status, 0, r.stderr);
  const out = results(r.stdout);
  same(t, out.map((x) => x.frame.stem).sort(), good.map((n) => n.replace(/\.jpg$/, '')).sort());
  t.match(r.stderr, /drop cju0zz-corrupt at source \(decode\): .*cju0zz-corrupt\.jpg/);
  t.match(r.stderr, /drop cju0zz-empty at source \(empty\): .*cju0zz-empty\.png is 0 bytes/);
  t.match(r.stderr, /3 results from 3 frames/);
  t.match(r.stderr, /dropped 2: source:decode 1, source:empty 1/);
});

t.test('a truncated last raw YUYV frame is dropped, the whole frames processed', async (t) => {
  const file = join(tmp.dir, 'cam_320x240.yuyv');
  const made = runCli(['frames', 'make', '--from', KVASIR, '--count', '4', '--size', '320x240', '--format', 'yuyv', '--out', file]);
  t.equal(made.status, 0, made.stderr);
  t.equal(statSync(file).size, 4 * 320 * 240 * 2);
  appendFileSync(file, readFileSync(file).subarray(0, 1000));
  const r = runCli(['run', '--model', modelDir, '--source', `file:${file}`, '--threads', '1']);
  t.equal(r.status, 0, r.stderr);
  const out = results(r.stdout);
  same(t, out.map((x) => [x.frame.seq, x.frame.format, x.frame.width]), [0, 1, 2, 3].map((s) => [s, 'YUYV', 320]));
  t.match(r.stderr, /drop .*#4 at source \(truncated\): last frame has 1000 of 153600 bytes/);
  t.match(r.stderr, /dropped 1: source:truncated 1/);
});
