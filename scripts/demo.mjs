#!/usr/bin/env node
// `npm run demo`: the main job end to end, on the compiled CLI (dist/).
//  1. the model: the shipped trained one (models/lvunet-kvasir) when the checkout has it, else a
//     seeded one built into out/demo/model, with a loud note that its masks mean nothing;
//  2. `model inspect` on its deployment ONNX;
//  3. `run` (supervisor + worker, native pipeline) on 10 Kvasir-SEG images the model never trained on
//     (its split's test set) when ../shared/datasets is beside the checkout, else on synthetic frames:
//     one JSON result per frame on stdout (model sha256, frame, time, mask summary), masks as PNG;
//  4. with the dataset, `eval` on 20 held-out test images: Dice and the rest against the truth.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
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

let modelDir = trained;
if (existsSync(join(trained, 'manifest.json'))) {
  step(`model: ${trained} (trained on Kvasir-SEG; see its manifest.json for data, split, epochs and test metrics)`);
} else {
  modelDir = join(out, 'model');
  step(`model: no trained model in ${trained}; building a SEEDED RANDOM model into ${modelDir}: its masks mean nothing`);
  cli(['model', 'build', '--seed', '1', '--out', modelDir]);
}
cli(['model', 'inspect', join(modelDir, 'lvunet.fp32.onnx')]);

const splitFile = join(modelDir, 'split.json');
const frames = join(out, 'frames');
const masks = join(out, 'masks');
rmSync(frames, { recursive: true, force: true });
rmSync(masks, { recursive: true, force: true });
let source = 'synthetic';
if (existsSync(join(kvasir, 'images')) && existsSync(splitFile)) {
  // Only images the model never trained on: the first 10 of its split's test set.
  const test = JSON.parse(readFileSync(splitFile, 'utf8')).test.slice(0, 10);
  const files = new Map(readdirSync(join(kvasir, 'images')).map((f) => [f.replace(/\.[^.]+$/, ''), f]));
  mkdirSync(frames, { recursive: true });
  for (const stem of test) {
    const file = files.get(stem);
    if (!file) throw new Error(`demo: test image ${stem} from ${splitFile} is not in ${join(kvasir, 'images')}`);
    copyFileSync(join(kvasir, 'images', file), join(frames, file));
  }
  source = `folder:${frames}`;
  step(`run: 10 Kvasir-SEG test-split images (${frames}) -> one JSON result per frame; masks in ${masks}`);
} else {
  step(`run: synthetic frames (no ${kvasir} beside the checkout, or no split.json with the model)`);
}
cli(['run', '--model', modelDir, '--source', source, '--max-frames', '10', '--sink', 'stdout', '--save-masks', masks]);

if (source !== 'synthetic') {
  step('eval: 20 held-out test images against their ground truth (Dice, IoU, precision, recall, specificity, HD95)');
  cli(['eval', '--model', modelDir, '--data', kvasir, '--split', splitFile, '--subset', 'test', '--limit', '20']);
}
step(`done. Masks: ${masks}. Next: 'npx lvunet-edge --help', README.md`);
