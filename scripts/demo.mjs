#!/usr/bin/env node
// `npm run demo`: the main job end to end, on the compiled CLI (dist/).
// For each shipped model (models/lvunet-kvasir: polyps; models/lvunet-busi: breast ultrasound), or a
// seeded one built into out/demo/model with a loud note that its masks mean nothing when none ships:
//  1. `model inspect` on its deployment ONNX;
//  2. `run` (supervisor + worker, native pipeline) on 10 images of its dataset the model never trained
//     on (its split's test set) when ../shared/datasets is beside the checkout, else on synthetic
//     frames: one JSON result per frame on stdout (model sha256, frame, time, mask summary), masks as PNG;
//  3. with the dataset, `eval` on 20 held-out test images: Dice and the rest against the truth.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const cliPath = join(root, 'dist', 'src', 'cli', 'main.js');
const out = join(root, 'out', 'demo');
const kvasir = join(root, '..', 'shared', 'datasets', 'kvasir-seg');
const trained = join(root, 'models', 'lvunet-kvasir');

const step = (text) => process.stderr.write(`\n== demo: ${text}\n`);
const cli = (args) => {
  const r = spawnSync(process.execPath, [cliPath, ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`demo: 'lvunet-edge ${args.join(' ')}' exited with ${r.status ?? r.signal}\n`);
    process.exit(r.status ?? 1);
  }
};

if (!existsSync(cliPath)) {
  process.stderr.write('demo: dist/ is missing; run `npm run build` first (npm run demo does)\n');
  process.exit(1);
}

/**
 * One shipped model: inspect it, run it on 10 images of its test split (never trained on), eval 20.
 * Without the dataset beside the checkout: synthetic frames, no eval.
 */
function demoModel({ modelDir, data, what }) {
  step(`model: ${modelDir} (${what}; see its manifest.json for data, split, epochs, test metrics and stress tests)`);
  cli(['model', 'inspect', join(modelDir, 'lvunet.fp32.onnx')]);
  const name = basename(modelDir);
  const splitFile = join(modelDir, 'split.json');
  const frames = join(out, name, 'frames');
  const masks = join(out, name, 'masks');
  rmSync(frames, { recursive: true, force: true });
  rmSync(masks, { recursive: true, force: true });
  let source = 'synthetic';
  if (existsSync(join(data, 'images')) && existsSync(splitFile)) {
    // Only images the model never trained on: the first 10 of its split's test set.
    const test = JSON.parse(readFileSync(splitFile, 'utf8')).test.slice(0, 10);
    const files = new Map(readdirSync(join(data, 'images')).map((f) => [f.replace(/\.[^.]+$/, ''), f]));
    mkdirSync(frames, { recursive: true });
    for (const stem of test) {
      const file = files.get(stem);
      if (!file) throw new Error(`demo: test image ${stem} from ${splitFile} is not in ${join(data, 'images')}`);
      copyFileSync(join(data, 'images', file), join(frames, file));
    }
    source = `folder:${frames}`;
    step(`run: 10 ${what} test-split images (${frames}) -> one JSON result per frame; masks in ${masks}`);
  } else {
    step(`run: synthetic frames (no ${data} beside the checkout, or no split.json with the model)`);
  }
  cli(['run', '--model', modelDir, '--source', source, '--max-frames', '10', '--sink', 'stdout', '--save-masks', masks]);
  if (source !== 'synthetic') {
    step(`eval: 20 held-out ${what} test images against their ground truth (Dice, IoU, precision, recall, specificity, HD95)`);
    cli(['eval', '--model', modelDir, '--data', data, '--split', splitFile, '--subset', 'test', '--limit', '20']);
  }
  return masks;
}

const shipped = [
  { modelDir: trained, data: kvasir, what: 'polyps, Kvasir-SEG (endoscopy, colour)' },
  { modelDir: join(root, 'models', 'lvunet-busi'), data: join(root, '..', 'shared', 'datasets', 'busi'), what: 'breast ultrasound, BUSI (greyscale)' },
].filter((m) => existsSync(join(m.modelDir, 'manifest.json')));

const outputs = [];
if (shipped.length === 0) {
  const modelDir = join(out, 'model');
  step(`model: no trained model in models/; building a SEEDED RANDOM model into ${modelDir}: its masks mean nothing`);
  cli(['model', 'build', '--seed', '1', '--out', modelDir]);
  outputs.push(demoModel({ modelDir, data: kvasir, what: 'seeded random model' }));
} else {
  for (const m of shipped) outputs.push(demoModel(m));
}
step(`done. Masks: ${outputs.join(', ')}. Next: 'npx lvunet-edge --help', README.md`);
