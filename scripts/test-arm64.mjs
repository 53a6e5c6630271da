#!/usr/bin/env node
// `npm run test:arm64`: cross-compiles the addon for aarch64, runs the native tests and an inference
// on real images under qemu-user with Debian's arm64 Node and onnxruntime-node's arm64 library, and
// compares the arm64 masks and logits with the same run on this machine; then runs a few training
// steps of the WASM trainer both ways and compares losses and weights.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const arm64Root = process.env.LVUNET_ARM64_ROOT ?? join(root, '.cache', 'arm64-root');
const buildDir = join(root, 'build-arm64');
const fail = (msg) => {
  console.error(`test:arm64: ${msg}`);
  process.exit(1);
};
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
  return r;
};
const has = (cmd) => spawnSync(cmd, ['--version'], { encoding: 'utf8' }).status === 0;

const missing = [
  ...(has('qemu-aarch64-static') ? [] : ['qemu-user-static']),
  ...(has('aarch64-linux-gnu-g++') ? [] : ['g++-aarch64-linux-gnu']),
];
if (missing.length > 0) {
  if (process.getuid?.() !== 0) fail(`missing tools: sudo apt-get install ${missing.join(' ')}`);
  console.log(`test:arm64: installing ${missing.join(' ')}`);
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', ...missing]);
}
run('bash', [join(root, 'deploy', 'arm64', 'prepare-node.sh'), arm64Root]);
if (!existsSync(join(root, 'dist', 'src', 'runtime', 'native', 'runtime.js'))) run('npm', ['run', 'build']);

console.log('test:arm64: cross-compiling the addon for aarch64');
// The arm64 libturbojpeg that prepare-node.sh unpacked beside Node is what the addon links against.
run(process.execPath, [
  join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js'), 'compile', '-d', 'native', '-O', buildDir, '--log-level', 'warn',
  `--CDCMAKE_TOOLCHAIN_FILE=${join(root, 'native', 'toolchains', 'aarch64-linux-gnu.cmake')}`,
], { env: { ...process.env, LVUNET_ARM64_ROOT: arm64Root } });
const addon = join(buildDir, 'Release', 'lvunet_edge.node');
const arm64 = (args, env = {}) =>
  spawnSync('qemu-aarch64-static', ['-L', arm64Root, join(arm64Root, 'usr', 'bin', 'node'), ...args], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, LVUNET_EDGE_NATIVE: addon, ...env },
  });

console.log('test:arm64: native tests under qemu (arm64 Node)');
// Run the file directly: 'node --test' would spawn process.execPath, an arm64 binary the host cannot exec without binfmt.
const unit = arm64([join(root, 'test', 'arm64', 'native.test.mjs')]);
if (unit.status !== 0) fail('native tests failed under arm64');

const work = mkdtempSync(join(tmpdir(), 'lvunet-arm64-'));
try {
  run(process.execPath, [join(root, 'dist', 'src', 'cli', 'main.js'), 'model', 'build', '--seed', '7', '--out', join(work, 'model')]);
  const model = join(work, 'model', 'lvunet.fp32.onnx');
  // Real images, decoded once here so both architectures get identical RGB bytes.
  const { listPairs } = await import(join(root, 'dist', 'src', 'data', 'dataset.js'));
  const { readImageFile } = await import(join(root, 'dist', 'src', 'image', 'decode.js'));
  const datasets = join(root, '..', 'shared', 'datasets');
  const images = [...listPairs(join(datasets, 'kvasir-seg')).slice(0, 2), ...listPairs(join(datasets, 'busi')).slice(0, 1)];
  const specs = [];
  for (const p of images) {
    const img = await readImageFile(p.image);
    const file = join(work, `${p.stem.replace(/[^\w.-]/g, '_')}.rgb`);
    writeFileSync(file, img.data);
    specs.push(`${file}:${img.width}:${img.height}`);
  }
  for (const arch of ['x64', 'arm64']) mkdirSync(join(work, arch));
  console.log('test:arm64: inference on this machine');
  run(process.execPath, [join(root, 'test', 'arm64', 'infer.mjs'), model, join(work, 'x64'), ...specs]);
  console.log('test:arm64: inference under qemu (arm64; about 1.5 s a frame)');
  const inf = arm64([join(root, 'test', 'arm64', 'infer.mjs'), model, join(work, 'arm64'), ...specs]);
  if (inf.status !== 0) fail('arm64 inference failed');

  let worst = 0;
  let maskDiffs = 0;
  for (const f of readdirSync(join(work, 'x64')).filter((f) => f.endsWith('.logits.f32'))) {
    const a = new Float32Array(readFileSync(join(work, 'x64', f)).buffer.slice(0));
    const b = new Float32Array(readFileSync(join(work, 'arm64', f)).buffer.slice(0));
    if (a.length !== b.length || a.length === 0) fail(`${f}: ${a.length} vs ${b.length} values`);
    let d = 0;
    let m = 0;
    for (let i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
      if (a[i] > 0 !== b[i] > 0) m++;
    }
    const inA = new Uint8Array(readFileSync(join(work, 'x64', f.replace('.logits.', '.input.'))));
    const inB = new Uint8Array(readFileSync(join(work, 'arm64', f.replace('.logits.', '.input.'))));
    const sameInput = inA.length === inB.length && inA.every((v, i) => v === inB[i]);
    console.log(`${f}: max |Δ logit| ${d.toExponential(2)}, mask pixels differing ${m}, preprocessed input identical: ${sameInput}`);
    if (!sameInput) fail(`${f}: native preprocessing differs between x64 and arm64`);
    worst = Math.max(worst, d);
    maskDiffs += m;
  }
  if (worst > 1e-4) fail(`logits differ by ${worst} > 1e-4`);
  if (maskDiffs > 0) fail(`${maskDiffs} mask pixels differ between x64 and arm64`);
  console.log(`test:arm64: ok — masks equal, logits within ${worst.toExponential(2)} (≤ 1e-4)`);

  // Training on the board: the WASM trainer (tfjs-node has no arm64 build) for 2 epochs of 2 steps
  // (λ 0 then 1, Adam state carried across the epoch) on the same 4+4 Kvasir-SEG images, here and
  // under qemu. WASM's arithmetic (no relaxed SIMD) is specified bit for bit and V8's Math functions
  // are the same fdlibm on both, so the tolerance is none: equal losses and identical weight files.
  const trainArgs = (out) => [
    join(root, 'dist', 'src', 'cli', 'main.js'), 'train', '--data', join(datasets, 'kvasir-seg'), '--out', out,
    '--epochs', '2', '--batch', '2', '--size', '128', '--limit', '4', '--wasm', '--augment', 'basic',
  ];
  console.log('test:arm64: 4 training steps on this machine (wasm)');
  run(process.execPath, trainArgs(join(work, 'x64', 'train')));
  console.log('test:arm64: the same 4 training steps under qemu (arm64 Node, wasm; about a minute)');
  const tr = arm64(trainArgs(join(work, 'arm64', 'train')));
  if (tr.status !== 0) fail('arm64 training failed');
  const losses = (arch) =>
    readFileSync(join(work, arch, 'train', 'log.csv'), 'utf8').trim().split('\n').slice(1)
      .map((line) => line.split(',').slice(0, 7).join(','));
  const [lx, la] = [losses('x64'), losses('arm64')];
  for (let i = 0; i < Math.max(lx.length, la.length); i++) {
    console.log(`epoch,lambda,lr,train_loss,val_loss,val_dice,val_dice_std x64 ${lx[i]} | arm64 ${la[i]}`);
  }
  if (lx.length !== 2 || lx.join('\n') !== la.join('\n')) fail('training losses differ between x64 and arm64');
  for (const f of ['last.safetensors', 'last.optim.safetensors', 'lvunet.safetensors']) {
    const [a, b] = ['x64', 'arm64'].map((arch) => readFileSync(join(work, arch, 'train', f)));
    if (!a.equals(b)) fail(`${f} differs between x64 and arm64 (${a.length} vs ${b.length} bytes)`);
  }
  console.log('test:arm64: ok — training losses equal and weights and Adam state identical byte for byte');
  console.log('2 passed, 0 failed');
} finally {
  rmSync(work, { recursive: true, force: true });
}
