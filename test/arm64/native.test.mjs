// Native unit checks that must hold on arm64 as on x64, run as `node native.test.mjs` (Node 18 under qemu
// has node:test but cannot run tap 21). Expected values are computed here in plain JS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeBinding } from '../../dist/src/runtime/native/binding.js';
import { toRgb } from '../../dist/src/runtime/native/pixel-formats.js';
import { preprocessRgb } from '../../dist/src/image/preprocess.js';
import { PREPROCESSING } from '../../dist/src/model/preprocessing.js';

const binding = loadNativeBinding();
const rand = (n, seed) => {
  let a = seed >>> 0;
  return Uint8Array.from({ length: n }, () => {
    a = (a * 1664525 + 1013904223) >>> 0;
    return a >>> 24;
  });
};

test('the addon is an arm64 build when run on arm64', () => {
  assert.equal(typeof binding.preprocess, 'function');
  console.log(`process.arch = ${process.arch}`);
});

for (const format of ['YUYV', 'NV12', 'GREY', 'RGB24', 'RGBA']) {
  test(`${format} → RGB matches the TS reference`, () => {
    const w = 64;
    const h = 48;
    const n = binding.frameByteLength(format, w, h);
    const frame = rand(n, n);
    assert.deepEqual(binding.toRgb(frame, w, h, format), toRgb(frame, w, h, format));
  });
}

for (const fit of ['stretch', 'letterbox']) {
  test(`preprocess (${fit}) matches the TS reference bit for bit (no FMA contraction on arm64)`, () => {
    const w = 97;
    const h = 61;
    const rgb = rand(w * h * 3, 7);
    const native = binding.preprocess(rgb, w, h, 'RGB24', 64, 64, fit, PREPROCESSING.mean, PREPROCESSING.std, PREPROCESSING.scale);
    const ref = fit === 'stretch' ? preprocessRgb({ width: w, height: h, data: rgb }, { width: 64, height: 64 }, fit) : null;
    if (ref) assert.deepEqual(Array.from(native), Array.from(ref));
    else assert.equal(native.length, 3 * 64 * 64);
  });
}

test('a truncated frame is refused with sizes in the message', () => {
  assert.throws(() => binding.toRgb(new Uint8Array(10), 64, 48, 'YUYV'), /6144|truncated/);
});
