// `run --save-overlays DIR` (the worker's OverlayFiles): one PNG per result, at frame size, the
// frame with the overlay where the result's mask is; an unusable folder stops the run at start.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { readImageFile } from '../../src/image/decode.js';
import { decodeRle } from '../../src/runtime/postprocess/rle.js';
import type { ResultV1 } from '../../src/runtime/sinks/index.js';
import { startRun } from '../integration/run-helpers.js';
import { KVASIR, REPO_ROOT } from '../helpers/paths.js';
import { same } from '../helpers/same.js';

const MODEL = join(REPO_ROOT, 'models', 'lvunet-kvasir');
const IMAGES = join(KVASIR, 'images');
const skip = !existsSync(IMAGES) ? `no Kvasir-SEG images at ${IMAGES}` : !existsSync(join(MODEL, 'manifest.json')) ? `no shipped model at ${MODEL}` : undefined;

t.test('run --save-overlays writes each frame with its overlay', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-overlays-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const frames = join(dir, 'frames');
  mkdirSync(frames);
  const names = readdirSync(IMAGES).sort().slice(0, 2);
  for (const f of names) copyFileSync(join(IMAGES, f), join(frames, f));
  const out = join(dir, 'overlays');
  const r = startRun(['--model', MODEL, '--source', `folder:${frames}`, '--rle', '--save-overlays', out], { LVUNET_STATE_DIR: join(dir, 'state') });
  t.equal(await r.exited, 0, r.stderr().slice(-2000));
  const results = r.stdout().trim().split('\n').map((l) => JSON.parse(l) as ResultV1);
  t.equal(results.length, 2);
  t.same(readdirSync(out).sort(), names.map((n) => n.replace(/\.jpg$/, '.png')).sort());
  for (const res of results) {
    const frame = await readImageFile(join(frames, `${res.frame.stem ?? ''}.jpg`));
    const pic = await readImageFile(join(out, `${res.frame.stem ?? ''}.png`));
    same(t, [pic.width, pic.height], [frame.width, frame.height], `${res.frame.stem ?? ''} at frame size`);
    const mask = decodeRle(res.rle as never);
    // Inside the mask the picture is redder than the frame; far outside the boxes it is the frame.
    let redder = 0, inside = 0;
    for (let i = 0; i < mask.data.length; i++) {
      if (!mask.data[i]) continue;
      inside++;
      if (pic.data[i * 3] - pic.data[i * 3 + 2] > frame.data[i * 3] - frame.data[i * 3 + 2]) redder++;
    }
    t.ok(inside > 0 && redder / inside > 0.95, `${res.frame.stem ?? ''}: ${redder} of ${inside} mask pixels tinted`);
    same(t, [...pic.data.subarray(0, 3)], [...frame.data.subarray(0, 3)], 'the corner is untouched');
  }
});

t.test('run --save-overlays into a file, not a folder: refused at start, naming it', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-overlays-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'not-a-folder');
  writeFileSync(file, 'x');
  const r = startRun(['--model', MODEL, '--source', 'synthetic', '--max-frames', '3', '--save-overlays', join(file, 'sub')], { LVUNET_STATE_DIR: join(dir, 'state') });
  t.not(await r.exited, 0);
  t.match(r.stderr(), /--save-overlays .*not-a-folder\/sub: cannot create folder/);
});
