import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';

import { defaultOnnxRuntimeLibrary, nativeCandidates, type NativeBinding } from '../../../src/runtime/native/binding.js';
import { normalizeSessionOptions, OnnxRuntime } from '../../../src/runtime/native/runtime.js';
import { convModel } from './fixtures/onnx.js';
import { native } from './fixtures/native.js';
import { same } from '../../helpers/same.js';

const { binding, skip } = native();
const dir = mkdtempSync(join(tmpdir(), 'lvunet-native-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const small = convModel(3, 4, 7);
const smallPath = join(dir, 'conv-small.onnx');
writeFileSync(smallPath, small.bytes);

function load(): OnnxRuntime {
  return OnnxRuntime.load(defaultOnnxRuntimeLibrary(), binding as NativeBinding);
}

function randomInput(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

t.test('normalizeSessionOptions fills defaults and rejects bad values', async (t) => {
  t.same(normalizeSessionOptions(), { intraOpThreads: 0, interOpThreads: 0, graphOptimization: 'all', providers: [], strict: false, configEntries: {} });
  t.same(normalizeSessionOptions({ configEntries: { 'session.intra_op.allow_spinning': '0' } }).configEntries, { 'session.intra_op.allow_spinning': '0' });
  t.same(normalizeSessionOptions({ providers: ['CUDA', { name: 'QNN', options: { backend_path: 'libQnnHtp.so' } }] }).providers, [
    { name: 'CUDA', options: {} },
    { name: 'QNN', options: { backend_path: 'libQnnHtp.so' } },
  ]);
  t.throws(() => normalizeSessionOptions({ intraOpThreads: -1 }), RangeError);
  t.throws(() => normalizeSessionOptions({ graphOptimization: 'max' as 'all' }), RangeError);
});

t.test('the loader lists every location tried and the fix', async (t) => {
  const { loadNativeBinding } = await import('../../../src/runtime/native/binding.js');
  t.throws(() => loadNativeBinding([join(dir, 'a.node'), join(dir, 'b.node')]), {
    code: 'ERR_NATIVE_ADDON_LOAD',
    message: /a\.node[\s\S]*b\.node[\s\S]*npm run build:native[\s\S]*C\+\+17 compiler/,
  });
  t.ok(nativeCandidates().some((p) => p.endsWith(join('build', 'Release', 'lvunet_edge.node'))));
});

const ccSkip = spawnSync('cc', ['--version']).status === 0 ? false : 'no C compiler to build the test library';
t.test('an addon whose libturbojpeg is missing at run time: the loader says to install libturbojpeg0', { skip: ccSkip }, async (t) => {
  const { loadNativeBinding } = await import('../../../src/runtime/native/binding.js');
  // A stand-in addon linked against a libturbojpeg that is then removed, as on a board without the
  // libturbojpeg0 package (soname .so.99: this machine's own .so.0 would otherwise be found).
  const lib = join(dir, 'libturbojpeg.so.99');
  writeFileSync(join(dir, 'tj.c'), 'int tjInitDecompress(void) { return 0; }\n');
  writeFileSync(join(dir, 'addon.c'), 'int tjInitDecompress(void); int use(void) { return tjInitDecompress(); }\n');
  const cc = (args: string[]): void => {
    const r = spawnSync('cc', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
  };
  cc(['-shared', '-fPIC', '-Wl,-soname,libturbojpeg.so.99', '-o', lib, 'tj.c']);
  cc(['-shared', '-fPIC', '-o', 'tj-addon.node', 'addon.c', lib]);
  rmSync(lib);
  t.throws(() => loadNativeBinding([join(dir, 'tj-addon.node')]), {
    code: 'ERR_NATIVE_ADDON_LOAD',
    message: /libturbojpeg\.so\.99: cannot open shared object file[\s\S]*apt-get install libturbojpeg0/,
  });
});

t.test('ONNX Runtime loads and lists CPUExecutionProvider', { skip }, async (t) => {
  const rt = load();
  t.match(rt.info.version, /^1\.\d+\.\d+/);
  t.ok(rt.info.apiVersion <= rt.info.headerApiVersion && rt.info.apiVersion >= 16, `API version ${rt.info.apiVersion}`);
  t.ok(rt.availableProviders().includes('CPUExecutionProvider'));
  t.match(rt.info.path, /libonnxruntime/);
});

t.test('a missing library and a non-ORT file give errors naming the path', { skip }, async (t) => {
  const b = binding as NativeBinding;
  const missing = join(dir, 'no-such-libonnxruntime.so');
  t.throws(() => OnnxRuntime.load(missing, b), { code: 'ERR_ORT_LIBRARY_NOT_FOUND', path: missing, message: new RegExp(missing) });
  const text = join(dir, 'not-a-library.so');
  writeFileSync(text, 'this is not a shared library\n');
  t.throws(() => OnnxRuntime.load(text, b), { code: 'ERR_ORT_LIBRARY_LOAD', path: text, message: new RegExp(`'${text}'`) });
  // A real shared library that is not ONNX Runtime: the addon itself.
  const addon = nativeCandidates().find((p) => p.includes('Release')) as string;
  t.throws(() => OnnxRuntime.load(addon, b), {
    code: 'ERR_ORT_NOT_ONNXRUNTIME',
    path: addon,
    message: /is not an ONNX Runtime library: it does not export OrtGetApiBase/,
  });
});

t.test('session description: inputs, outputs and provider report', { skip }, async (t) => {
  const session = await load().createSession(smallPath, { intraOpThreads: 1, graphOptimization: 'basic' });
  t.same(session.inputs, [{ name: 'input', type: 'float32', shape: [1, 3, -1, -1], dimNames: ['', '', 'height', 'width'] }]);
  same(t, session.outputs, [{ name: 'output', type: 'float32', shape: [1, 4, -1, -1], dimNames: ['', '', 'height', 'width'] }]);
  t.same(session.providers, { requested: [], active: ['CPUExecutionProvider'], fallbacks: [] });
  t.equal(session.modelPath, smallPath);
  session.release();
  await t.rejects(session.run(new Float32Array(3), [1, 3, 1, 1]), /released/);
});

t.test('an absent provider falls back with ORT\'s reason; strict mode refuses', { skip }, async (t) => {
  const rt = load();
  const session = await rt.createSession(smallPath, { providers: ['XNNPACK', 'CPU'] });
  t.same(session.providers.requested, ['XNNPACK', 'CPU']);
  t.same(session.providers.active, ['CPU']);
  t.equal(session.providers.fallbacks.length, 1);
  t.equal(session.providers.fallbacks[0].provider, 'XNNPACK');
  t.match(session.providers.fallbacks[0].reason, /XNNPACK/, `reason: ${session.providers.fallbacks[0].reason}`);
  // The session still runs on CPU.
  const out = await session.run(new Float32Array(3 * 4 * 4), [1, 3, 4, 4]);
  t.same(out.dims, [1, 4, 4, 4]);

  await t.rejects(rt.createSession(smallPath, { providers: ['XNNPACK'], strict: true }), {
    code: 'ERR_ORT_PROVIDER',
    provider: 'XNNPACK',
    modelPath: smallPath,
    message: /execution provider 'XNNPACK' is unavailable \(strict mode\)/,
  });
  t.comment(`providers listed: ${rt.availableProviders().join(', ')}`);
});

t.test('run() matches onnxruntime-node\'s JS API', { skip }, async (t) => {
  const session = await load().createSession(smallPath, { intraOpThreads: 1 });
  const reference = await ort.InferenceSession.create(small.bytes);
  for (const [h, w] of [[8, 8], [17, 5], [64, 48]]) {
    const input = randomInput(3 * h * w, h * 100 + w);
    const got = await session.run(input, [1, 3, h, w]);
    const want = await reference.run({ input: new ort.Tensor('float32', input, [1, 3, h, w]) });
    const expected = want.output.data as Float32Array;
    t.same(got.dims, [1, 4, h, w], `dims ${h}x${w}`);
    let maxDiff = 0;
    for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got.data[i] - expected[i]));
    t.ok(got.data instanceof Float32Array && got.data.length === expected.length);
    t.ok(maxDiff <= 1e-6, `${h}x${w}: max |diff| ${maxDiff}`);
  }
  await reference.release();
});

t.test('run() is asynchronous: the event loop keeps ticking', { skip }, async (t) => {
  const big = convModel(3, 32, 3);
  const bigPath = join(dir, 'conv-big.onnx');
  writeFileSync(bigPath, big.bytes);
  const session = await load().createSession(bigPath, { intraOpThreads: 1 });
  const [h, w] = [384, 384];
  const input = randomInput(3 * h * w, 11);
  let ticks = 0;
  let done = false;
  const timer = setInterval(() => ticks++, 1);
  const started = performance.now();
  const pending = session.run(input, [1, 3, h, w]).then((r) => {
    done = true;
    return r;
  });
  t.equal(done, false, 'run() returns before the model has run');
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.equal(done, false, 'an immediate runs while the model is running');
  const result = await pending;
  clearInterval(timer);
  const ms = performance.now() - started;
  t.same(result.dims, [1, 32, h, w]);
  t.ok(ticks >= 2, `${ticks} timer ticks during a ${ms.toFixed(0)} ms run`);
});

t.test('concurrent runs on one session, and release() while a run is in flight', { skip }, async (t) => {
  const session = await load().createSession(smallPath, { intraOpThreads: 1 });
  const inputs = [0, 1, 2, 3, 4, 5].map((i) => randomInput(3 * 32 * 32, 100 + i));
  const sequential = [];
  for (const input of inputs) sequential.push(await session.run(input, [1, 3, 32, 32]));
  const concurrent = await Promise.all(inputs.map((input) => session.run(input, [1, 3, 32, 32])));
  same(t, concurrent.map((r) => Array.from(r.data)), sequential.map((r) => Array.from(r.data)));
  const inFlight = session.run(inputs[0], [1, 3, 32, 32]);
  session.release();
  same(t, Array.from((await inFlight).data), Array.from(sequential[0].data), 'the run in flight completes');
});

t.test('errors are JS Errors carrying the ORT message and the model path', { skip }, async (t) => {
  const session = await load().createSession(smallPath);
  // Wrong channel count: ORT refuses at run time.
  const err = await session.run(new Float32Array(5 * 4 * 4), [1, 5, 4, 4]).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, Error);
  t.match(err, { code: 'ERR_ORT', modelPath: smallPath, message: new RegExp(`ONNX Runtime run failed \\(model '${smallPath}'\\): .+`) });
  t.match((err as Error).stack, /runtime\.test\.ts/, 'the stack points at the caller');
  await t.rejects(session.run(new Float32Array(10), [1, 3, 2, 2]), { code: 'ERR_INVALID_ARGUMENT', message: /10 elements but dims describe 12/ });

  const missing = join(dir, 'missing.onnx');
  await t.rejects(load().createSession(missing), { code: 'ERR_ORT', modelPath: missing, message: new RegExp(missing) });
  const garbage = join(dir, 'garbage.onnx');
  writeFileSync(garbage, 'not a model');
  await t.rejects(load().createSession(garbage), { code: 'ERR_ORT', modelPath: garbage });
});
