import t from 'tap';
import { spawnSync } from 'node:child_process';

import type { DoctorReport } from '../../src/cli/doctor-command.js';
import { runCli } from '../helpers/cli.js';
import { CLI, REPO_ROOT } from '../helpers/paths.js';
import { native } from '../runtime/native/fixtures/native.js';

t.test('doctor reports the addon, ONNX Runtime and its providers, and cameras', { skip: native().skip }, async (t) => {
  const r = runCli(['doctor', '--json']);
  t.equal(r.status, 0, r.stderr);
  const d = JSON.parse(r.stdout) as DoctorReport;
  t.equal(d.ok, true);
  t.equal(d.addon.ok, true);
  t.match(d.addon.path, /lvunet_edge\.node$/);
  t.match(d.onnxRuntime, { ok: true, library: /libonnxruntime/, version: /^1\.\d+\.\d+/ });
  t.ok(d.onnxRuntime.providers?.includes('CPUExecutionProvider'));
  t.type(d.v4l2.module, 'string');
  t.ok(Array.isArray(d.v4l2.devices));

  const text = runCli(['doctor']);
  t.equal(text.status, 0);
  t.match(text.stdout, /onnxruntime +1\.\d+\.\d+ \(C API \d+\) from /);
  t.match(text.stdout, /providers +.*CPUExecutionProvider/);
  t.match(text.stdout, /v4l2 module +/);
  if (d.v4l2.devices.length === 0) t.match(text.stdout, /cameras +none found/);
});

t.test('doctor fails, naming the library, when ONNX Runtime is missing', { skip: native().skip }, async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'doctor'], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, LVUNET_ORT_LIBRARY: '/nope/libonnxruntime.so.1' } });
  t.equal(r.status, 1);
  t.match(r.stdout, /onnxruntime +FAILED: .*\/nope\/libonnxruntime\.so\.1/);
  t.match(r.stdout, /addon +ok/);
});
