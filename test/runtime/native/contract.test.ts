// The NativeBinding contract, checked the same way against the fake (fixtures/fake-binding.ts, always)
// and the real addon (when built; LVUNET_REQUIRE_NATIVE=1 makes a missing one a failure): what callers
// rely on (sizes, values, error codes with their context, provider fallbacks, frame order, release),
// so that a test written against the fake holds for the addon.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';

import { PREPROCESSING } from '../../../src/model/preprocessing.js';
import { COMPONENT_FIELDS, defaultOnnxRuntimeLibrary, NATIVE_ABI_VERSION, type NativeBinding, type NativeSessionOptions } from '../../../src/runtime/native/binding.js';
import { sigmoidInto } from '../../../src/runtime/postprocess/probability.js';
import { REPO_ROOT } from '../../helpers/paths.js';
import { buildTestModel, tempDir } from '../pipeline/fixtures/model.js';
import { fakeBinding } from './fixtures/fake-binding.js';
import { native } from './fixtures/native.js';
import { same } from '../../helpers/same.js';

const real = native();
const tmp = tempDir('native-contract');
t.teardown(tmp.remove);
const shipped = join(REPO_ROOT, 'models', 'lvunet-kvasir', 'lvunet.fp32.onnx');
const MODEL = existsSync(shipped) ? shipped : join(buildTestModel(join(tmp.dir, 'model')), 'lvunet.fp32.onnx');
const { mean, std, scale } = PREPROCESSING;

const options = (providers: string[] = [], strict = false): NativeSessionOptions => ({
  intraOpThreads: 1,
  interOpThreads: 1,
  graphOptimization: 'all',
  providers: providers.map((name) => ({ name, options: {} })),
  strict,
  configEntries: {},
});

/** A 640x480 YUYV frame with structure (a bright disc on a dark background). */
function yuyvFrame(w = 640, h = 480): Uint8Array {
  const f = new Uint8Array(w * h * 2);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inside = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (h / 4) ** 2;
      f[(y * w + x) * 2] = inside ? 200 : 40;
      f[(y * w + x) * 2 + 1] = x % 2 === 0 ? 110 : 150;
    }
  }
  return f;
}

function contract(name: string, get: () => NativeBinding, skip: string | false): void {
  t.test(`${name}: interface version and pure functions`, { skip }, async (t) => {
    const b = get();
    t.equal(b.abiVersion, NATIVE_ABI_VERSION);
    t.equal(b.frameByteLength('YUYV', 640, 480), 640 * 480 * 2);
    t.equal(b.frameByteLength('NV12', 640, 480), (640 * 480 * 3) / 2);
    t.equal(b.frameByteLength('RGBA', 3, 5), 60);
    t.throws(() => b.frameByteLength('YUYV', 3, 2), { code: 'ERR_INVALID_ARGUMENT', message: /even/ });
    t.throws(() => b.frameByteLength('RGB24', 0, 2), { code: 'ERR_INVALID_ARGUMENT' });
    t.throws(() => b.frameByteLength('XYZ' as 'RGB24', 2, 2), { code: 'ERR_INVALID_ARGUMENT', message: /unknown pixel format/ });

    // BT.601 limited range: Y 16 is black, Y 235 white, whatever the chroma at 128.
    same(t, [...b.toRgb(new Uint8Array([16, 128, 235, 128]), 2, 1, 'YUYV')], [0, 0, 0, 255, 255, 255]);
    t.throws(() => b.toRgb(new Uint8Array(5), 2, 1, 'RGB24'), { code: 'ERR_FRAME_SIZE', format: 'RGB24', expected: '6', actual: '5', message: /truncated/ });

    const grey = new Uint8Array(4 * 2 * 3).fill(200);
    const stretched = b.preprocess(grey, 4, 2, 'RGB24', 4, 2, 'stretch', mean, std, scale);
    t.equal(stretched.length, 3 * 4 * 2);
    t.same([stretched[0], stretched[8], stretched[16]], [0, 1, 2].map((c) => Math.fround((200 / scale - mean[c]) / std[c])), 'normalised with the given mean, std, scale');
    const boxed = b.preprocess(grey, 4, 2, 'RGB24', 4, 4, 'letterbox', mean, std, scale);
    t.same([boxed[0], boxed[12]], [0, 0], 'letterbox rows are padded with 0');
    t.throws(() => b.preprocess(grey, 4, 2, 'RGB24', 4, 2, 'stretch', [0, 0, 0], [0, 1, 1], 1), { code: 'ERR_INVALID_ARGUMENT' });
    t.throws(() => b.preprocess(grey, 4, 2, 'RGB24', 4, 2, 'zoom' as 'stretch', mean, std, scale), { code: 'ERR_INVALID_ARGUMENT', message: /fit/ });
    t.throws(() => b.preprocess(grey.subarray(1), 4, 2, 'RGB24', 4, 2, 'stretch', mean, std, scale), { code: 'ERR_FRAME_SIZE' });

    // Two foreground squares in an 8x8 logit map, upscaled to 16x16.
    const logits = new Float32Array(64).fill(-6);
    for (const [x0, y0] of [[1, 1], [5, 5]]) for (let y = y0; y < y0 + 2; y++) for (let x = x0; x < x0 + 2; x++) logits[y * 8 + x] = 6;
    const post = b.postprocess(logits, 8, 8, 16, 16, null, 0.5);
    t.equal(post.maskModel.length, 64);
    t.equal(post.maskModel.reduce((a, v) => a + v, 0), 8);
    t.equal(post.maskFrame.length, 256);
    t.equal(post.foreground, post.maskFrame.reduce((a, v) => a + v, 0));
    t.equal(post.components.length, 2 * COMPONENT_FIELDS, 'two components');
    t.equal(post.components[0] + post.components[COMPONENT_FIELDS], post.foreground, 'their areas add up to the foreground');
    t.throws(() => b.postprocess(logits, 8, 8, 16, 16, null, 1.5), { code: 'ERR_INVALID_ARGUMENT', message: /threshold/ });
    t.throws(() => b.postprocess(logits, 5, 8, 16, 16, null, 0.5), { code: 'ERR_INVALID_ARGUMENT', message: /logits have 64 values/ });
    t.throws(() => b.postprocess(logits, 8, 8, 16, 16, [8, 8, 1, 0], 0.5), { code: 'ERR_INVALID_ARGUMENT', message: /does not fit/ });

    const x = new Float64Array([-700, -1, 0, 0.5, 3, 700]);
    t.same([...b.exp(x)], [...x].map((v) => Math.exp(v)));
    const l = new Float32Array([-20, -1, 0, 1, 20]);
    t.same([...b.sigmoid(l)], [...sigmoidInto(l)]);
    t.throws(() => new b.V4l2Device('/dev/video-none'), { code: 'ERR_V4L2_OPEN', path: '/dev/video-none', errno: 'ENOENT' });
  });

  t.test(`${name}: runtime, sessions and frame processors`, { skip }, async (t) => {
    const rt = get().loadRuntime(defaultOnnxRuntimeLibrary());
    t.ok(rt.availableProviders().includes('CPUExecutionProvider'));
    t.match(rt.info(), { path: defaultOnnxRuntimeLibrary(), version: /^1\.\d+\.\d+/ });

    const missing = join(tmp.dir, 'no-such-model.onnx');
    await t.rejects(rt.createSession(missing, options()), { code: 'ERR_ORT', modelPath: missing });
    await t.rejects(rt.createSession(MODEL, options(['NoSuchEP'], true)), { code: 'ERR_ORT_PROVIDER', modelPath: MODEL, provider: 'NoSuchEP' });

    const session = await rt.createSession(MODEL, options(['NoSuchEP']));
    const d = session.describe();
    t.equal(d.modelPath, MODEL);
    t.same(d.providers.requested, ['NoSuchEP']);
    t.same(d.providers.active, ['CPUExecutionProvider']);
    t.same(d.providers.fallbacks.map((f) => f.provider), ['NoSuchEP'], 'an unusable provider falls back to the CPU, with its reason');
    t.match(d.inputs, [{ type: 'float32', shape: [1, 3, 256, 256] }]);
    t.match(d.outputs, [{ type: 'float32', shape: [1, 1, 256, 256] }]);

    const out = await session.run(new Float32Array(3 * 256 * 256), [1, 3, 256, 256]);
    t.same(out.dims, [1, 1, 256, 256]);
    t.equal(out.data.length, 256 * 256);

    t.throws(() => session.createFrameProcessor(256, 256, 'zoom' as 'stretch', mean, std, scale), { code: 'ERR_INVALID_ARGUMENT' });
    const p = session.createFrameProcessor(256, 256, 'letterbox', mean, std, scale);
    t.throws(() => p.process(new Uint8Array(10), 4, 2, 'RGB24', 0.5, 'short', false, true), { code: 'ERR_FRAME_SIZE', frameId: 'short', stage: 'preprocess' });
    t.throws(() => p.process(new Uint8Array(12), 3, 2, 'YUYV', 0.5, 'odd', false, true), { code: 'ERR_INVALID_ARGUMENT', frameId: 'odd', stage: 'preprocess' });
    t.throws(() => p.process(new Uint8Array(24), 4, 2, 'RGB24', 2, 'bad-threshold', false, true), { code: 'ERR_INVALID_ARGUMENT', frameId: 'bad-threshold', message: /threshold/ });

    // Submitted together: each resolves with its own result. (Only inference is serialised per processor;
    // preprocessing and postprocessing run on the libuv pool, so the addon may finish them out of order.)
    const frame = yuyvFrame();
    const results = await Promise.all(['a', 'b', 'c'].map((id) => p.process(frame, 640, 480, 'YUYV', 0.5, id, false, true)));
    for (const r of results) {
      t.equal(r.maskModel.length, 256 * 256);
      t.equal(r.maskFrame?.length, 640 * 480);
      t.equal(r.components.length % COMPONENT_FIELDS, 0);
      t.equal(r.times.length, 7);
      const stages = [...r.times.subarray(0, 6)];
      t.ok(stages.every((v, i) => v >= 0 && (i === 0 || v >= stages[i - 1])), 'stage times in order');
      t.ok(r.times[6] >= r.times[0] && r.times[6] <= r.times[1], 'decode ends inside preprocessing');
      same(t, [...r.decodedSize], [640, 480], 'a raw frame is preprocessed at its own size');
    }
    same(t, results[1].maskFrame, results[0].maskFrame, 'the same frame gives the same mask');
    p.release();
    t.throws(() => p.process(frame, 640, 480, 'YUYV', 0.5, 'late', false, true), /released/);
    session.release();
    t.throws(() => session.describe(), /released/);
  });
}

/** A 640x480 baseline JPEG of a disc (jpeg-js: an encoder independent of both bindings). */
function jpegFrame(): Uint8Array {
  const w = 640, h = 480;
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (h / 4) ** 2 ? 220 : 30;
      rgba.set([v, v / 2, v / 3, 255], (y * w + x) * 4);
    }
  }
  return new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba }, 85).data);
}

function mjpegContract(name: string, get: () => NativeBinding, skip: string | false): void {
  t.test(`${name}: MJPEG decode and the fused path on JPEG frames`, { skip }, async (t) => {
    const b = get();
    const j = jpegFrame();
    const d = b.decodeJpeg(j, 640, 480, 256, 256);
    t.same([d.width, d.height], [400, 300], 'the smallest num/8 scale still at least the model input (5/8)');
    t.equal(d.data.length, 400 * 300 * 3);
    t.throws(() => b.decodeJpeg(j, 640, 400, 256, 256), { code: 'ERR_FRAME_SIZE', message: /640x400.*640x480/ });
    t.throws(() => b.decodeJpeg(Uint8Array.of(1, 2, 3, 4, 5), 640, 480, 256, 256), { code: 'ERR_JPEG_CORRUPT' });

    const session = await b.loadRuntime(defaultOnnxRuntimeLibrary()).createSession(MODEL, options());
    const p = session.createFrameProcessor(256, 256, 'letterbox', mean, std, scale);
    t.throws(() => p.process(new Uint8Array(2), 640, 480, 'MJPEG', 0.5, 'tiny', false, true), { code: 'ERR_JPEG_TRUNCATED', frameId: 'tiny', stage: 'preprocess' });
    const [ok, cut, lying] = await Promise.allSettled([
      p.process(j, 640, 480, 'MJPEG', 0.5, 'ok', true, false),
      p.process(j.subarray(0, j.length >> 1), 640, 480, 'MJPEG', 0.5, 'cut', false, false),
      p.process(j, 320, 240, 'MJPEG', 0.5, 'lying', false, false),
    ]);
    if (ok.status !== 'fulfilled') throw ok.reason;
    t.same([...ok.value.decodedSize], [400, 300], 'decodedSize: the DCT-scaled decode');
    t.equal(ok.value.maskFrame, undefined, 'the frame mask stays native when not asked for');
    t.equal(ok.value.maskModel.length, 256 * 256);
    t.equal(ok.value.rleCounts?.reduce((a, v) => a + v, 0), 640 * 480, 'RLE counts cover the frame');
    t.ok(ok.value.times[6] >= ok.value.times[0] && ok.value.times[6] <= ok.value.times[1], 'decode ends inside preprocessing');
    t.match(cut, { status: 'rejected', reason: { code: 'ERR_JPEG_TRUNCATED', frameId: 'cut', stage: 'preprocess' } });
    t.match(lying, { status: 'rejected', reason: { code: 'ERR_FRAME_SIZE', frameId: 'lying', stage: 'preprocess' } });
    p.release();
    session.release();
  });
}

contract('fake', () => fakeBinding(), false);
mjpegContract('fake', () => fakeBinding(), false);
mjpegContract('addon', () => real.binding as NativeBinding, real.skip);
contract('addon', () => real.binding as NativeBinding, real.skip);

t.test('fake and addon agree on a frame through the fused path (masks equal but for rounding at the threshold)', { skip: real.skip }, async (t) => {
  const masks: Uint8Array[] = [];
  for (const b of [fakeBinding(), real.binding as NativeBinding]) {
    const session = await b.loadRuntime(defaultOnnxRuntimeLibrary()).createSession(MODEL, options());
    const p = session.createFrameProcessor(256, 256, 'stretch', mean, std, scale);
    const { maskFrame } = await p.process(yuyvFrame(), 640, 480, 'YUYV', 0.5, 'same', false, true);
    if (!maskFrame) throw new Error('process() with maskFrame true returned no frame mask');
    masks.push(maskFrame);
    p.release();
    session.release();
  }
  let differ = 0;
  for (let i = 0; i < masks[0].length; i++) if (masks[0][i] !== masks[1][i]) differ++;
  t.ok(differ <= masks[0].length * 1e-3, `${differ} of ${masks[0].length} pixels differ`);
});
