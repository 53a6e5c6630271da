// The GREY input path end to end (issue 17): a greyscale ultrasound image (BUSI) reaches the model as
// the trainer read it, whether it arrives as a PNG in a folder or as 8-bit GREY frames (what a V4L2
// GREY camera or an ultrasound machine's video output delivers, made here by `frames make --format
// grey`). The trainer and eval decode the PNG to R = G = B; the pipeline turns GREY into R = G = B;
// so both runs must give the reference path's mask pixel for pixel.
import t from 'tap';
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join, parse } from 'node:path';
import ort from 'onnxruntime-node';

import { listPairs } from '../../src/data/dataset.js';
import { isGrey } from '../../src/data/modality.js';
import { decodeMask, readImageFile } from '../../src/image/decode.js';
import { preprocessRgb } from '../../src/image/preprocess.js';
import { summarize } from '../../src/runtime/postprocess/index.js';
import { runCli } from '../helpers/cli.js';
import { BUSI } from '../helpers/paths.js';
import { requireShared } from '../helpers/shared-data.js';
import { buildTestModel, tempDir } from '../runtime/pipeline/fixtures/model.js';
import { resultLines } from './run-helpers.js';

requireShared(BUSI);

const tmp = tempDir('grey-path');
t.teardown(tmp.remove);
const modelDir = buildTestModel(join(tmp.dir, 'model'));

t.test('a BUSI image as a PNG and as GREY frames gives the reference mask, pixel for pixel', async (t) => {
  const session = await ort.InferenceSession.create(join(modelDir, 'lvunet.fp32.onnx'), { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  t.teardown(() => session.release());
  // Two images with different sizes (neither a multiple of anything in particular).
  const pairs = listPairs(BUSI).filter((p) => /^(benign \(1\)|malignant \(10\))$/.test(p.stem));
  t.equal(pairs.length, 2);
  for (const pair of pairs) {
    const image = await readImageFile(pair.image);
    t.ok(isGrey(image), `${pair.stem} is a greyscale image (${image.width}x${image.height})`);
    const dir = join(tmp.dir, parse(pair.image).name.replace(/\W+/g, '-'));
    const folder = join(dir, 'folder');
    mkdirSync(folder, { recursive: true });
    copyFileSync(pair.image, join(folder, 'us.png'));

    // Reference: what eval and the trainer do (decode to RGB, stretch-resize, normalise), then onnxruntime-node.
    const x = preprocessRgb(image, { width: 256, height: 256 }, 'stretch');
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, 256, 256]) });
    const logits = out[session.outputNames[0]].data as Float32Array;
    // A seeded model's logits are nearly flat: cut at the median so the mask has detailed edges.
    const median = Float32Array.from(logits).sort()[logits.length >> 1];
    const threshold = Math.fround(1 / (1 + Math.exp(-median)));
    const expected = summarize(logits, { width: 256, height: 256 }, image, { threshold }).maskFrame;

    const grey = join(dir, `frames_${image.width}x${image.height}.grey`);
    const made = runCli(['frames', 'make', '--from', folder, '--count', '2', '--size', `${image.width}x${image.height}`, '--format', 'grey', '--out', grey]);
    t.equal(made.status, 0, made.stderr);
    t.equal(readFileSync(grey).length, 2 * image.width * image.height, 'two 8-bit frames');
    const firstFrame = readFileSync(grey).subarray(0, image.width * image.height);
    t.ok(firstFrame.every((v, i) => v === image.data[i * 3]), 'GREY bytes are the image pixel values');

    for (const [what, source] of [['PNG folder', `folder:${folder}`], ['GREY frames', `file:${grey}`]] as const) {
      const masks = join(dir, `masks-${what.replace(' ', '-')}`);
      const r = runCli(['run', '--model', modelDir, '--source', source, '--sink', 'stdout', '--threads', '1', '--threshold', String(threshold), '--save-masks', masks]);
      t.equal(r.status, 0, r.stderr);
      const results = resultLines(r.stdout);
      t.ok(results.length >= 1, `${what}: results`);
      const files = readdirSync(masks).sort();
      t.ok(files.length >= 1, `${what}: masks saved`);
      const got = decodeMask(readFileSync(join(masks, files[0])), files[0]);
      t.same([got.width, got.height], [image.width, image.height], `${what}: mask at the frame's size`);
      let differ = 0;
      let fg = 0;
      for (let i = 0; i < expected.data.length; i++) {
        if (expected.data[i] !== got.data[i]) differ++;
        fg += expected.data[i];
      }
      t.ok(fg > 0 && fg < expected.data.length, `${pair.stem}: the reference mask is neither empty nor full (${fg} px)`);
      t.equal(differ, 0, `${pair.stem} via ${what}: pixels differing from the reference`);
    }
  }
});
