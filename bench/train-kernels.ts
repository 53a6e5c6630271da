/**
 * GFLOP/s of the wasm training kernels at LV-UNet's layer shapes (batch 8, 256x256 input), and the
 * images/s of a forward+backward pass through a MobileNetV3-Large features[0..9]-shaped stack.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/train-kernels.js [--quick] [--no-layers] [--no-stack]
 *     [--profile] [--tfjs-bn] [--strict-relu6]
 *
 * Prints one JSON document. FLOPs count a multiply-add as 2.
 */
import * as tf from '@tensorflow/tfjs-core';
import { cpus, loadavg } from 'node:os';
import {
  batchNormTrain,
  initWasmBackend,
  registerRelu6Gradient,
  registerTfjsGradients,
  registerWasmTrainingKernels,
} from '../src/train/wasm-kernels/index.js';

type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

const argv = new Set(process.argv.slice(2));
const QUICK = argv.has('--quick');
/** --tfjs-bn: differentiate tf.moments + tf.batchNorm instead of using batchNormTrain. */
const FUSED_BN = !argv.has('--tfjs-bn');
const BATCH = 8;
const SIZE = 256;

/** PyTorch padding=(k-1)//2 as tfjs explicit padding. */
const torchPad = (k: number): Pad4 => {
  const p = (k - 1) >> 1;
  return [[0, 0], [p, p], [p, p], [0, 0]];
};

interface Timing {
  /** Best wall-clock time. */
  wallMs: number;
  /** Best CPU time of this process (user + system): the backend is single-threaded, so on an idle
   * machine this equals wall time, and on a shared one it is far less inflated by other load. */
  cpuMs: number;
}

function timeMs(f: () => tf.Tensor | tf.Tensor[], reps: number): Timing {
  let wallMs = Infinity;
  let cpuMs = Infinity;
  for (let i = 0; i <= reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const out = f();
    for (const o of Array.isArray(out) ? out : [out]) {
      o.dataSync();
      o.dispose();
    }
    const dt = performance.now() - t0;
    const dc = process.cpuUsage(c0);
    if (i > 0) {
      // the first run packs weights and grows the heap
      wallMs = Math.min(wallMs, dt);
      cpuMs = Math.min(cpuMs, (dc.user + dc.system) / 1000);
    }
  }
  return { wallMs, cpuMs };
}

interface KernelResult {
  ms: number;
  cpuMs: number;
  gflops: number;
  gflopsCpu: number;
}
const result = (t: Timing, flops: number): KernelResult => ({
  ms: +t.wallMs.toFixed(2),
  cpuMs: +t.cpuMs.toFixed(2),
  gflops: +(flops / t.wallMs / 1e6).toFixed(2),
  gflopsCpu: +(flops / t.cpuMs / 1e6).toFixed(2),
});

interface Layer {
  name: string;
  kind: 'conv' | 'depthwise';
  h: number;
  cIn: number;
  cOut: number;
  k: number;
  stride: number;
}

// MobileNetV3-Large features[0..9] at 256x256 plus LV-UNet's full-resolution decoder layers.
const LAYERS: Layer[] = [
  { name: 'f0 conv3x3 3->16 s2 @256', kind: 'conv', h: 256, cIn: 3, cOut: 16, k: 3, stride: 2 },
  { name: 'f1 dw3 16 @128', kind: 'depthwise', h: 128, cIn: 16, cOut: 16, k: 3, stride: 1 },
  { name: 'f1 pw 16->16 @128', kind: 'conv', h: 128, cIn: 16, cOut: 16, k: 1, stride: 1 },
  { name: 'f2 pw 16->64 @128', kind: 'conv', h: 128, cIn: 16, cOut: 64, k: 1, stride: 1 },
  { name: 'f2 dw3 64 @128 s2', kind: 'depthwise', h: 128, cIn: 64, cOut: 64, k: 3, stride: 2 },
  { name: 'f2 pw 64->24 @64', kind: 'conv', h: 64, cIn: 64, cOut: 24, k: 1, stride: 1 },
  { name: 'f3 pw 24->72 @64', kind: 'conv', h: 64, cIn: 24, cOut: 72, k: 1, stride: 1 },
  { name: 'f3 dw3 72 @64', kind: 'depthwise', h: 64, cIn: 72, cOut: 72, k: 3, stride: 1 },
  { name: 'f3 pw 72->24 @64', kind: 'conv', h: 64, cIn: 72, cOut: 24, k: 1, stride: 1 },
  { name: 'f4 dw5 72 @64 s2', kind: 'depthwise', h: 64, cIn: 72, cOut: 72, k: 5, stride: 2 },
  { name: 'f4 pw 72->40 @32', kind: 'conv', h: 32, cIn: 72, cOut: 40, k: 1, stride: 1 },
  { name: 'f5 pw 40->120 @32', kind: 'conv', h: 32, cIn: 40, cOut: 120, k: 1, stride: 1 },
  { name: 'f5 dw5 120 @32', kind: 'depthwise', h: 32, cIn: 120, cOut: 120, k: 5, stride: 1 },
  { name: 'f5 pw 120->40 @32', kind: 'conv', h: 32, cIn: 120, cOut: 40, k: 1, stride: 1 },
  { name: 'f7 pw 40->240 @32', kind: 'conv', h: 32, cIn: 40, cOut: 240, k: 1, stride: 1 },
  { name: 'f7 dw3 240 @32 s2', kind: 'depthwise', h: 32, cIn: 240, cOut: 240, k: 3, stride: 2 },
  { name: 'f7 pw 240->80 @16', kind: 'conv', h: 16, cIn: 240, cOut: 80, k: 1, stride: 1 },
  { name: 'f8 pw 80->200 @16', kind: 'conv', h: 16, cIn: 80, cOut: 200, k: 1, stride: 1 },
  { name: 'f8 dw3 200 @16', kind: 'depthwise', h: 16, cIn: 200, cOut: 200, k: 3, stride: 1 },
  { name: 'dec pw 16->16 @256', kind: 'conv', h: 256, cIn: 16, cOut: 16, k: 1, stride: 1 },
  { name: 'dec dw3 16 @256', kind: 'depthwise', h: 256, cIn: 16, cOut: 16, k: 3, stride: 1 },
];

function benchLayer(l: Layer, reps: number): Record<string, KernelResult | string | number> {
  const x = tf.randomNormal([BATCH, l.h, l.h, l.cIn]) as tf.Tensor4D;
  const filterShape: [number, number, number, number] = l.kind === 'conv' ? [l.k, l.k, l.cIn, l.cOut] : [l.k, l.k, l.cIn, 1];
  const w = tf.randomNormal(filterShape) as tf.Tensor4D;
  const pad = torchPad(l.k);
  const conv = l.kind === 'conv';
  const fwd = (): tf.Tensor4D => (conv ? tf.conv2d(x, w, l.stride, pad) : tf.depthwiseConv2d(x, w, l.stride, pad));
  const y = fwd();
  const dy = tf.randomNormal(y.shape) as tf.Tensor4D;
  const macs = (conv ? l.cIn * l.cOut * l.k * l.k : l.cIn * l.k * l.k) * BATCH * y.shape[1] * y.shape[2];
  const flops = 2 * macs;
  const attrs = { strides: l.stride, pad, dilations: 1, dimRoundingMode: undefined, dataFormat: 'NHWC' };
  const run = (name: string, inputs: tf.NamedTensorMap, extra: Record<string, unknown>) => (): tf.Tensor =>
    tf.engine().runKernel(name, inputs, { ...attrs, ...extra } as unknown as tf.NamedAttrMap) as tf.Tensor;
  const out: Record<string, KernelResult | string | number> = { gmacs: +(macs / 1e9).toFixed(4) };
  out.forward = result(timeMs(fwd, reps), flops);
  if (conv) {
    out.backpropInput = result(timeMs(run('Conv2DBackpropInput', { dy, filter: w }, { inputShape: x.shape }), reps), flops);
    out.backpropFilter = result(timeMs(run('Conv2DBackpropFilter', { x, dy }, { filterShape }), reps), flops);
  } else {
    out.backpropInput = result(timeMs(run('DepthwiseConv2dNativeBackpropInput', { dy, filter: w }, { inputShape: x.shape }), reps), flops);
    out.backpropFilter = result(timeMs(run('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { filterShape }), reps), flops);
  }
  tf.dispose([x, w, y, dy]);
  return out;
}

function benchRelu6Grad(reps: number): Record<string, KernelResult> {
  const shape = [BATCH, 64, 64, 72];
  const x = tf.mul(tf.randomNormal(shape), 4);
  const dy = tf.randomNormal(shape);
  const n = x.size;
  const fused = timeMs(() => tf.engine().runKernel('Relu6Grad', { dy, x }) as tf.Tensor, reps);
  // tfjs-core's own Relu6 gradient, for comparison.
  const composed = timeMs(() => tf.tidy(() => tf.mul(dy, tf.cast(tf.mul(tf.lessEqual(x, 6), tf.step(x)), 'float32'))), reps);
  tf.dispose([x, dy]);
  // "GFLOP/s" here is elements per ns: the op is memory-bound.
  return { relu6GradKernel: result(fused, n), tfjsComposedRelu6Grad: result(composed, n) };
}

// ---- MobileNetV3-Large features[0..9] forward + backward ----

interface BlockSpec {
  cIn: number;
  exp: number;
  cOut: number;
  k: number;
  se: boolean;
  hs: boolean;
  stride: number;
}

const FEATURES: BlockSpec[] = [
  { cIn: 16, exp: 16, cOut: 16, k: 3, se: false, hs: false, stride: 1 },
  { cIn: 16, exp: 64, cOut: 24, k: 3, se: false, hs: false, stride: 2 },
  { cIn: 24, exp: 72, cOut: 24, k: 3, se: false, hs: false, stride: 1 },
  { cIn: 24, exp: 72, cOut: 40, k: 5, se: true, hs: false, stride: 2 },
  { cIn: 40, exp: 120, cOut: 40, k: 5, se: true, hs: false, stride: 1 },
  { cIn: 40, exp: 120, cOut: 40, k: 5, se: true, hs: false, stride: 1 },
  { cIn: 40, exp: 240, cOut: 80, k: 3, se: false, hs: true, stride: 2 },
  { cIn: 80, exp: 200, cOut: 80, k: 3, se: false, hs: true, stride: 1 },
  { cIn: 80, exp: 184, cOut: 80, k: 3, se: false, hs: true, stride: 1 },
];

const seWidth = (exp: number): number => Math.max(8, Math.round(exp / 4 / 8) * 8);

class Params {
  readonly list: tf.Variable[] = [];
  macsPerImage = 0;
  add(shape: number[], scale: number): tf.Variable {
    const v = tf.variable(tf.mul(tf.randomNormal(shape), scale));
    this.list.push(v);
    return v;
  }
  add4(shape: [number, number, number, number], scale: number): tf.Tensor4D {
    return this.add(shape, scale) as tf.Tensor as tf.Tensor4D;
  }
  add1(c: number, scale: number): tf.Tensor1D {
    return this.add([c], scale) as tf.Tensor as tf.Tensor1D;
  }
}

/** Builds the stack's parameters and returns a function computing its output (BN in training mode). */
function buildFeatures(p: Params): (x: tf.Tensor4D) => tf.Tensor4D {
  const bn = (c: number) => {
    const gamma = p.add1(c, 0.1);
    const beta = p.add1(c, 0.1);
    return (h: tf.Tensor4D): tf.Tensor4D => {
      const scale = tf.add<tf.Tensor1D>(gamma, 1);
      if (FUSED_BN) return batchNormTrain(h, scale, beta, 1e-3);
      const { mean, variance } = tf.moments(h, [0, 1, 2]);
      return tf.batchNorm4d(h, mean as tf.Tensor1D, variance as tf.Tensor1D, beta, scale, 1e-3);
    };
  };
  const hardswish = (h: tf.Tensor4D): tf.Tensor4D => tf.mul(h, tf.div(tf.relu6(tf.add(h, 3)), 6));
  const act = (hs: boolean) => (h: tf.Tensor4D): tf.Tensor4D => (hs ? hardswish(h) : tf.relu(h));
  let size = SIZE / 2;
  const stemW = p.add4([3, 3, 3, 16], 0.2);
  p.macsPerImage += size * size * 27 * 16;
  const stemBn = bn(16);
  const blocks = FEATURES.map((b) => {
    const expand = b.exp !== b.cIn ? p.add4([1, 1, b.cIn, b.exp], 1 / Math.sqrt(b.cIn)) : null;
    const bnE = expand ? bn(b.exp) : null;
    if (expand) p.macsPerImage += size * size * b.cIn * b.exp;
    const dw = p.add4([b.k, b.k, b.exp, 1], 1 / b.k);
    const bnD = bn(b.exp);
    size /= b.stride;
    p.macsPerImage += size * size * b.exp * b.k * b.k;
    const sq = seWidth(b.exp);
    const se = b.se
      ? { w1: p.add4([1, 1, b.exp, sq], 0.1), b1: p.add1(sq, 0.1), w2: p.add4([1, 1, sq, b.exp], 0.1), b2: p.add1(b.exp, 0.1) }
      : null;
    if (se) p.macsPerImage += 2 * b.exp * sq;
    const project = p.add4([1, 1, b.exp, b.cOut], 1 / Math.sqrt(b.exp));
    const bnP = bn(b.cOut);
    p.macsPerImage += size * size * b.exp * b.cOut;
    const a = act(b.hs);
    return (x: tf.Tensor4D): tf.Tensor4D => {
      let h = expand && bnE ? a(bnE(tf.conv2d(x, expand, 1, 'valid'))) : x;
      h = a(bnD(tf.depthwiseConv2d(h, dw, b.stride, torchPad(b.k))));
      if (se) {
        // tf.mean, not a global tf.avgPool: wasm's AvgPoolGrad is very slow for a whole-map window
        const s = tf.mean<tf.Tensor4D>(h, [1, 2], true);
        const s1 = tf.relu(tf.add<tf.Tensor4D>(tf.conv2d(s, se.w1, 1, 'valid'), se.b1));
        const s2 = tf.div(tf.relu6(tf.add(tf.add(tf.conv2d(s1, se.w2, 1, 'valid'), se.b2), 3)), 6);
        h = tf.mul(h, s2);
      }
      h = bnP(tf.conv2d(h, project, 1, 'valid'));
      return b.stride === 1 && b.cIn === b.cOut ? tf.add(h, x) : h;
    };
  });
  return (x) => {
    let h = hardswish(stemBn(tf.conv2d(x, stemW, 2, torchPad(3))));
    for (const block of blocks) h = block(h);
    return h;
  };
}

/**
 * Kernel time (wall clock) of one warm training step, summed per kernel name, largest first.
 * Names ending in __op are composite ops whose kernels are listed as well.
 */
async function profileStep(lossOf: () => tf.Scalar, vars: tf.Variable[]): Promise<Record<string, number>> {
  const step = (): tf.Tensor[] => {
    const { value, grads } = tf.variableGrads(lossOf, vars);
    return [value, ...Object.values(grads)];
  };
  tf.dispose(step());
  const info = await tf.profile(step);
  const perKernel = new Map<string, number>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    perKernel.set(k.name, (perKernel.get(k.name) ?? 0) + ms);
  }
  return Object.fromEntries([...perKernel].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, +v.toFixed(1)]));
}

async function benchStack(reps: number): Promise<Record<string, unknown>> {
  const p = new Params();
  const f = buildFeatures(p);
  const x = tf.randomNormal([BATCH, SIZE, SIZE, 3]) as tf.Tensor4D;
  const lossOf = (): tf.Scalar => tf.mean(tf.square(f(x)));
  const forward = timeMs(() => tf.tidy(lossOf), reps);
  const step = timeMs(() => {
    const { value, grads } = tf.variableGrads(lossOf, p.list);
    return [value, ...Object.values(grads)];
  }, reps);
  const profile = argv.has('--profile') ? await profileStep(lossOf, p.list) : undefined;
  tf.dispose(x);
  return {
    ...(profile === undefined ? {} : { profile }),
    batchNorm: FUSED_BN ? 'batchNormTrain' : 'tf.moments + tf.batchNorm',
    batch: BATCH,
    size: SIZE,
    convGmacsPerImage: +(p.macsPerImage / 1e9).toFixed(4),
    forwardMs: +forward.wallMs.toFixed(1),
    forwardCpuMs: +forward.cpuMs.toFixed(1),
    forwardBackwardMs: +step.wallMs.toFixed(1),
    forwardBackwardCpuMs: +step.cpuMs.toFixed(1),
    imagesPerSecond: +((BATCH * 1000) / step.wallMs).toFixed(3),
    imagesPerCpuSecond: +((BATCH * 1000) / step.cpuMs).toFixed(3),
    sustainedConvGflops: +((3 * 2 * p.macsPerImage * BATCH) / step.wallMs / 1e6).toFixed(2),
  };
}

async function main(): Promise<void> {
  registerWasmTrainingKernels();
  const info = await initWasmBackend();
  await registerTfjsGradients();
  // tfjs's own Relu6 gradient: measured faster on wasm than the one-pass JS Relu6Grad kernel
  if (argv.has('--strict-relu6')) registerRelu6Gradient();
  const reps = QUICK ? 1 : 3;
  const layers: Record<string, unknown> = {};
  if (!argv.has('--no-layers')) for (const l of LAYERS) layers[l.name] = benchLayer(l, reps);
  const report = {
    tfjs: tf.version_core,
    backend: tf.getBackend(),
    simd: info.simd,
    threads: info.threads,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    loadAverageAtStart: loadavg().map((l) => +l.toFixed(2)),
    layers,
    relu6Grad: benchRelu6Grad(reps),
    mobilenetV3Features0to9: argv.has('--no-stack') ? null : await benchStack(QUICK ? 1 : 2),
  };
  console.log(JSON.stringify(report, null, 2));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
