/**
 * The wasm training kernels against tfjs-backend-cpu: the same gradients through tf.grads on each
 * backend (cpu has its own Conv2DBackpropFilter etc.), on small seeded tensors.
 */
import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { simdDepthwiseKernels } from '../../src/train/wasm-kernels/simd-depthwise.js';
import {
  batchNormTrain,
  initWasmBackend,
  registerRelu6Gradient,
  registerTfjsGradients,
  registerWasmTrainingKernels,
} from '../../src/train/wasm-kernels/index.js';
import { same } from '../helpers/same.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
type Backend = 'cpu' | 'wasm';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function randomArray(size: number, seed: number, scale = 2): Float32Array {
  const r = seeded(seed);
  return Float32Array.from({ length: size }, () => r() * scale);
}

const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** max |a-b| relative to max |b|: entries near zero make per-element relative error meaningless. */
function relErr(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    mag = Math.max(mag, Math.abs(b[i]));
  }
  return a.length === b.length ? diff / Math.max(mag, 1e-30) : Infinity;
}

async function on<T>(backend: Backend, f: () => T): Promise<T> {
  await tf.setBackend(backend);
  return f();
}

/** PyTorch padding=(k-1)//2, symmetric, as tfjs explicit padding. */
const torchPad = (k: number): Pad => {
  const p = (k - 1) >> 1;
  return [[0, 0], [p, p], [p, p], [0, 0]];
};

t.before(async () => {
  registerWasmTrainingKernels();
  await initWasmBackend({ activate: false });
  await registerTfjsGradients();
});

t.test('wasm backend set-up', async (t) => {
  const info = await initWasmBackend();
  t.equal(tf.getBackend(), 'wasm');
  t.equal(info.simd, true, 'SIMD build');
  t.equal(info.threads, 1, 'single thread under Node');
  const memory = (tf.backend() as unknown as { wasm: { asm: { memory: object } } }).wasm.asm.memory;
  t.type(simdDepthwiseKernels(memory)?.filterGrad, 'function', 'the SIMD depthwise kernels bind to the backend heap');
});

interface ConvCase {
  k: number;
  stride: number;
  pad: Pad;
  size: number;
}

function convCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  for (const k of [1, 3, 5]) {
    for (const stride of [1, 2]) {
      for (const size of [12, 11]) {
        for (const pad of ['same', 'valid', torchPad(k)] as Pad[]) cases.push({ k, stride, pad, size });
      }
    }
  }
  return cases;
}

const label = (c: ConvCase): string => `k${c.k} s${c.stride} ${typeof c.pad === 'string' ? c.pad : `torch p${c.pad[1][0]}`} ${c.size}x${c.size}`;

t.test('Conv2D gradients (Conv2DBackpropFilter) match cpu', async (t) => {
  const n = 2;
  const cIn = 3;
  const cOut = 5;
  for (const c of convCases()) {
    const xs = [n, c.size, c.size + 1, cIn];
    const ws = [c.k, c.k, cIn, cOut];
    const xv = randomArray(sizeOf(xs), 1);
    const wv = randomArray(sizeOf(ws), 2);
    const run = (): Float32Array[] =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, xs as [number, number, number, number]);
        const w = tf.tensor4d(wv, ws as [number, number, number, number]);
        const y = tf.conv2d(x, w, c.stride, c.pad);
        const dy = tf.tensor(randomArray(sizeOf(y.shape), 3), y.shape);
        const f = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad);
        return tf.grads(f)([x, w], dy).map((g) => g.dataSync() as Float32Array);
      });
    const [dxCpu, dwCpu] = await on('cpu', run);
    const [dxWasm, dwWasm] = await on('wasm', run);
    t.ok(relErr(dwWasm, dwCpu) < 1e-4, `dW ${label(c)}: ${relErr(dwWasm, dwCpu).toExponential(2)}`);
    t.ok(relErr(dxWasm, dxCpu) < 1e-4, `dx ${label(c)}: ${relErr(dxWasm, dxCpu).toExponential(2)}`);
  }
});

t.test('Conv2DBackpropFilter with NCHW data matches cpu', async (t) => {
  for (const c of [{ k: 3, stride: 2, pad: torchPad(3) }, { k: 1, stride: 1, pad: 'valid' as Pad }]) {
    const xs: [number, number, number, number] = [2, 4, 10, 9];
    const xv = randomArray(sizeOf(xs), 4);
    const pads = typeof c.pad === 'string' ? c.pad : [[0, 0], [0, 0], c.pad[1], c.pad[2]];
    const run = (): Float32Array =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, xs);
        const filterShape = [c.k, c.k, 4, 6];
        const info = tf.backend_util.computeConv2DInfo(xs, filterShape as [number, number, number, number], c.stride, 1, c.pad === 'valid' ? 'valid' : (pads as Pad), undefined, false, 'channelsFirst');
        const dy = tf.tensor(randomArray(sizeOf(info.outShape), 5), info.outShape);
        const attrs = { strides: c.stride, pad: pads, dataFormat: 'NCHW', filterShape } as unknown as tf.NamedAttrMap;
        return (tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs) as tf.Tensor).dataSync() as Float32Array;
      });
    const cpu = await on('cpu', run);
    const wasm = await on('wasm', run);
    t.ok(relErr(wasm, cpu) < 1e-4, `NCHW k${c.k} s${c.stride}: ${relErr(wasm, cpu).toExponential(2)}`);
  }
});

t.test('DepthwiseConv2dNative gradients (BackpropFilter, BackpropInput) match cpu', async (t) => {
  const n = 2;
  // 4 channels take the composed paths, 16 the SIMD kernels (channels % 8 == 0).
  const cases = [4, 16].flatMap((ch) => convCases().filter((cc) => cc.k > 1 || cc.stride === 1).map((cc) => ({ ...cc, ch })));
  for (const c of cases) {
    const ch = c.ch;
    const xs = [n, c.size, c.size + 1, ch];
    const ws = [c.k, c.k, ch, 1];
    const xv = randomArray(sizeOf(xs), 6);
    const wv = randomArray(sizeOf(ws), 7);
    const run = (): Float32Array[] =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, xs as [number, number, number, number]);
        const w = tf.tensor4d(wv, ws as [number, number, number, number]);
        const y = tf.depthwiseConv2d(x, w, c.stride, c.pad);
        const dy = tf.tensor(randomArray(sizeOf(y.shape), 8), y.shape);
        const f = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad);
        return tf.grads(f)([x, w], dy).map((g) => g.dataSync() as Float32Array);
      });
    const [dxCpu, dwCpu] = await on('cpu', run);
    const [dxWasm, dwWasm] = await on('wasm', run);
    t.ok(relErr(dwWasm, dwCpu) < 1e-4, `dW ${ch}ch ${label(c)}: ${relErr(dwWasm, dwCpu).toExponential(2)}`);
    t.ok(relErr(dxWasm, dxCpu) < 1e-4, `dx ${ch}ch ${label(c)}: ${relErr(dxWasm, dxCpu).toExponential(2)}`);
  }
});

t.test('Relu6Grad is dy · (0 < x < 6) on wasm and cpu', async (t) => {
  registerRelu6Gradient();
  const xv = Float32Array.from([-1, 0, 1e-7, 3, 5.999, 6, 6.001, 9, ...randomArray(1000, 9, 16)]);
  const dyv = randomArray(xv.length, 10);
  const expected = xv.map((x, i) => (x > 0 && x < 6 ? dyv[i] : 0));
  for (const backend of ['cpu', 'wasm'] as const) {
    const got = await on(backend, () =>
      tf.tidy(() => tf.grad((x: tf.Tensor) => tf.relu6(x))(tf.tensor1d(xv), tf.tensor1d(dyv)).dataSync() as Float32Array),
    );
    same(t, Array.from(got), Array.from(expected), backend);
  }
});

t.test('conv → depthwise → relu6 → conv: one SGD step on wasm equals cpu', async (t) => {
  registerRelu6Gradient();
  const shapes: Array<[number, number, number, number]> = [[3, 3, 3, 8], [3, 3, 8, 1], [1, 1, 8, 4]];
  const init = shapes.map((s, i) => randomArray(sizeOf(s), 20 + i, 1));
  const xv = randomArray(2 * 16 * 16 * 3, 30, 4);
  const targetV = randomArray(2 * 8 * 8 * 4, 31);
  const step = (): Float32Array[] =>
    tf.tidy(() => {
      const x = tf.tensor4d(xv, [2, 16, 16, 3]);
      const target = tf.tensor4d(targetV, [2, 8, 8, 4]);
      const ws = init.map((v, i) => tf.tensor4d(v, shapes[i]));
      const loss = (w1: tf.Tensor, w2: tf.Tensor, w3: tf.Tensor): tf.Scalar => {
        let h = tf.conv2d(x, w1 as tf.Tensor4D, 2, torchPad(3));
        h = tf.relu6(tf.mul<tf.Tensor4D>(tf.depthwiseConv2d(h, w2 as tf.Tensor4D, 1, torchPad(3)), 3));
        const y = tf.conv2d(h, w3 as tf.Tensor4D, 1, 'valid');
        return tf.mean(tf.square(tf.sub(y, target)));
      };
      const { value, grads } = tf.valueAndGrads((...w: tf.Tensor[]) => loss(w[0], w[1], w[2]))(ws);
      const next = ws.map((w, i) => tf.sub(w, tf.mul(grads[i], 0.1)));
      return [value.dataSync() as Float32Array, ...next.map((w) => w.dataSync() as Float32Array), ...grads.map((g) => g.dataSync() as Float32Array)];
    });
  const cpu = await on('cpu', step);
  const wasm = await on('wasm', step);
  const names = ['loss', 'w1 after step', 'dw after step', 'w3 after step', 'dL/dw1', 'dL/ddw', 'dL/dw3'];
  names.forEach((name, i) => t.ok(relErr(wasm[i], cpu[i]) < 1e-4, `${name}: ${relErr(wasm[i], cpu[i]).toExponential(2)}`));
  t.ok(cpu.slice(4).every((g) => g.some((v) => v !== 0)), 'gradients are not all zero');
});

t.test('batchNormTrain: value, gradients and batch statistics match moments + batchNorm on cpu', async (t) => {
  const xs: [number, number, number, number] = [3, 5, 4, 6];
  const xv = randomArray(sizeOf(xs), 40, 6).map((v, i) => v + (i % 6)); // per-channel offsets
  const gv = randomArray(6, 41, 1).map((v) => v + 1);
  const bv = randomArray(6, 42, 1);
  const dyv = randomArray(sizeOf(xs), 43);
  const eps = 1e-3;
  const reference = (): Float32Array[] =>
    tf.tidy(() => {
      const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor => {
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        return tf.batchNorm4d(x as tf.Tensor4D, mean as tf.Tensor1D, variance as tf.Tensor1D, b as tf.Tensor1D, g as tf.Tensor1D, eps);
      };
      const args = [tf.tensor4d(xv, xs), tf.tensor1d(gv), tf.tensor1d(bv)];
      const y = f(args[0], args[1], args[2]);
      const grads = tf.grads(f)(args, tf.tensor4d(dyv, xs));
      const { mean, variance } = tf.moments(args[0], [0, 1, 2]);
      return [y, ...grads, mean, variance].map((v) => v.dataSync() as Float32Array);
    });
  const ours = (): Float32Array[] => {
    const stats: tf.Tensor[] = [];
    const out = tf.tidy(() => {
      const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor =>
        batchNormTrain(x as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, eps);
      const args = [tf.tensor4d(xv, xs), tf.tensor1d(gv), tf.tensor1d(bv)];
      const y = batchNormTrain(args[0] as tf.Tensor4D, args[1] as tf.Tensor1D, args[2] as tf.Tensor1D, eps, (s) => stats.push(s.mean, s.variance));
      const grads = tf.grads(f)(args, tf.tensor4d(dyv, xs));
      return [y, ...grads].map((v) => v.dataSync() as Float32Array);
    });
    const kept = stats.map((v) => v.dataSync() as Float32Array);
    tf.dispose(stats);
    return [...out, ...kept];
  };
  const ref = await on('cpu', reference);
  for (const backend of ['cpu', 'wasm'] as const) {
    const got = await on(backend, ours);
    ['y', 'dx', 'dγ', 'dβ', 'mean', 'variance'].forEach((name, i) =>
      t.ok(relErr(got[i], ref[i]) < 1e-4, `${backend} ${name}: ${relErr(got[i], ref[i]).toExponential(2)}`),
    );
  }
});
