// `lvunet-edge run` as supervisor + worker processes, without a broker: the demo from a fresh
// state folder, start-up failures that must not crash-loop, and a graceful SIGTERM.
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { demoModel, TRAINED_DEMO_MODEL } from '../../src/cli/run-command.js';
import type { Manifest } from '../../src/model/manifest.js';

import { ensureStopped, resultLines, startRun, stateDir } from '../integration/run-helpers.js';
import { same } from '../helpers/same.js';

t.test('run --demo --max-frames 5 prints 5 results and exits 0', async (t) => {
  const state = stateDir(t, 'run-demo');
  const p = startRun(['--demo', '--max-frames', '5'], { LVUNET_STATE_DIR: state });
  t.teardown(() => ensureStopped(p));
  t.equal(await p.exited, 0, p.stderr());
  const rs = resultLines(p.stdout());
  t.equal(rs.length, 5);
  same(t, rs.map((r) => r.frame.seq), [0, 1, 2, 3, 4]);
  t.match(p.stderr(), /worker pid \d+ ready/);
  if (existsSync(join(TRAINED_DEMO_MODEL, 'manifest.json'))) {
    // The checkout ships a trained model: the demo runs it, and every result names it.
    const manifest = JSON.parse(readFileSync(join(TRAINED_DEMO_MODEL, 'manifest.json'), 'utf8')) as Manifest;
    const fp32 = manifest.files.find((f) => f.file === 'lvunet.fp32.onnx');
    t.match(p.stderr(), /demo: using the trained model/);
    t.notMatch(p.stderr(), /RANDOM WEIGHTS/);
    t.same(new Set(rs.map((r) => r.model.sha256)), new Set([fp32?.sha256]), "each result carries the shipped model's sha256");
  } else {
    t.match(p.stderr(), /RANDOM WEIGHTS/, 'the demo says loudly that its model is untrained');
    t.match(p.stderr(), new RegExp(`built from seed 1 into ${join(state, 'demo-model')}`));
  }

  // The second run reuses the model the first one used (built, or shipped).
  const again = startRun(['--demo', '--max-frames', '2'], { LVUNET_STATE_DIR: state });
  t.teardown(() => ensureStopped(again));
  t.equal(await again.exited, 0, again.stderr());
  t.equal(resultLines(again.stdout()).length, 2);
  t.notMatch(again.stderr(), /building LV-UNet/);
});

t.test('without a shipped trained model the demo builds a seeded one, once, and says it is random', (t) => {
  const state = stateDir(t, 'demo-untrained');
  const lines: string[] = [];
  const missing = join(state, 'no-trained-model');
  const dir = demoModel(state, (l) => lines.push(l), missing);
  t.equal(dir, join(state, 'demo-model'));
  t.ok(existsSync(join(dir, 'manifest.json')) && existsSync(join(dir, 'lvunet.fp32.onnx')));
  t.match(lines.join('\n'), /DEMO MODEL WITH RANDOM WEIGHTS/);
  t.match(lines.join('\n'), /building LV-UNet 256x256 from seed:1/);
  const again: string[] = [];
  t.equal(demoModel(state, (l) => again.push(l), missing), dir);
  t.match(again.join('\n'), /RANDOM WEIGHTS/, 'said again on every run');
  t.notMatch(again.join('\n'), /building LV-UNet/, 'built once');
  t.end();
});

t.test('a model that cannot load fails once (exit 1, file named), without restarts', async (t) => {
  const state = stateDir(t, 'run-bad-model');
  const missing = join(state, 'no-such-model');
  const started = Date.now();
  const p = startRun(['--model', missing, '--source', 'synthetic'], { LVUNET_STATE_DIR: state });
  t.teardown(() => ensureStopped(p));
  t.equal(await p.exited, 1);
  t.match(p.stderr(), new RegExp(`${missing}: model not found`));
  t.match(p.stderr(), /not restarting/);
  t.notMatch(p.stderr(), /restarting in/);
  t.ok(Date.now() - started < 15_000, 'no crash loop');
  t.equal(p.stdout(), '');
});

t.test('SIGTERM stops capture, drains and exits 0', async (t) => {
  const state = stateDir(t, 'run-sigterm');
  const p = startRun(['--demo', '--fps', '20'], { LVUNET_STATE_DIR: state });
  t.teardown(() => ensureStopped(p));
  await p.waitStderr(/worker pid \d+ ready/, 60_000);
  // Results, not a fixed sleep: on a loaded machine the first ones can take seconds.
  const deadline = Date.now() + 60_000;
  while (p.stdout().split('\n').length - 1 < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  p.child.kill('SIGTERM');
  t.equal(await p.exited, 0, p.stderr());
  t.match(p.stderr(), /SIGTERM: stopping capture/);
  const rs = resultLines(p.stdout());
  t.ok(rs.length >= 5, `results before the stop (${rs.length})`);
  // Paced frames use 'latest' queues, which may replace a frame: seq rises, with gaps.
  t.ok(rs.every((r, i) => i === 0 || r.frame.seq > rs[i - 1].frame.seq), 'every line complete and in order');
  t.ok(p.stdout().endsWith('\n'), 'the last line is whole');
});

t.test('a config file: its hot keys reach the running worker without a restart', async (t) => {
  const state = stateDir(t, 'run-config');
  const file = join(state, 'lvunet-edge.yaml');
  writeFileSync(file, `state_dir: ${state}\ninference:\n  threshold: 0.5\n`);
  const p = startRun(['--demo', '--config', file, '--fps', '10'], { LVUNET_STATE_DIR: state });
  t.teardown(() => ensureStopped(p));
  await p.waitStderr(/worker pid \d+ ready/, 60_000);
  writeFileSync(file, `state_dir: ${state}\ninference:\n  threshold: 0.25\n  min_area_px: 10\n`);
  await p.waitStderr(/config: applied inference\.min_area_px, inference\.threshold|config: applied inference\.threshold, inference\.min_area_px/, 20_000);
  await p.waitStderr(/config: applied threshold, minArea, rle, contours/, 20_000);
  p.child.kill('SIGTERM');
  t.equal(await p.exited, 0, p.stderr());
  t.notMatch(p.stderr(), /restarting in/, 'no worker restart');
});

t.test("the worker opens its session with the config profile's providers and options (placeholders filled)", async (t) => {
  const state = stateDir(t, 'run-profile');
  const file = join(state, 'lvunet-edge.yaml');
  writeFileSync(file, `state_dir: ${state}\nruntime:\n  profile: jetson-tensorrt-fp16\n`);
  const p = startRun(['--demo', '--config', file, '--max-frames', '3'], { LVUNET_STATE_DIR: state });
  t.teardown(() => ensureStopped(p));
  t.equal(await p.exited, 0, p.stderr());
  const sha = /model \S+ \(fp32, sha256 ([0-9a-f]{64})/.exec(p.stderr())?.[1] ?? '';
  const ort = /ONNX Runtime (\d+\.\d+\.\d+)/.exec(p.stderr())?.[1] ?? '';
  t.match(sha, /^[0-9a-f]{64}$/, 'the start-up report names the model');
  const cache = join(state, 'engine-cache', `${sha.slice(0, 16)}-tensorrt-ort${ort}`);
  const plan = /provider plan: (.*)/.exec(p.stderr())?.[1] ?? '';
  t.equal(
    plan,
    `TensorRT {device_id=0, trt_fp16_enable=1, trt_engine_cache_enable=1, trt_engine_cache_path=${cache}, trt_timing_cache_enable=1, ` +
      `trt_timing_cache_path=${cache}, trt_max_workspace_size=1073741824}, CUDA {device_id=0, cudnn_conv_algo_search=HEURISTIC}`,
    'the profile options reached the session, ${engine_cache_dir} filled for this model and library',
  );
  t.match(p.stderr(), /providers: requested TensorRT, CUDA; active CPUExecutionProvider/);
  t.match(p.stderr(), /fallback: TensorRT not used: .{20,}/, 'TensorRT is missing here: the fallback gives ONNX Runtime\'s reason');
  t.equal(resultLines(p.stdout()).length, 3, 'and the run goes on on CPU');
});
