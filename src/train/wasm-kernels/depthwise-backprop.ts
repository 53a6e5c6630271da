/**
 * DepthwiseConv2dNativeBackpropFilter / BackpropInput for the wasm backend (channel multiplier 1,
 * i.e. PyTorch groups = channels; dilation 1), built from kernels the backend has.
 */
import {
  backend_util,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
} from '@tensorflow/tfjs-core';
import type {
  DepthwiseConv2dNativeBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropInputAttrs,
  KernelConfig,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { assertUnitDilation, geometryOf, windowedInput, type ConvGeometry } from './conv2d-backprop-filter.js';
import { asKernelBackend, requireInput, withScope, type KernelScope } from './scope.js';
import { simdDepthwiseKernels } from './simd-depthwise.js';

/** The wasm backend internals the SIMD path needs (BackendWasm's typings omit the memory). */
interface WasmInternals {
  wasm: { asm?: { memory?: object } };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): ArrayLike<number> & { fill(v: number): unknown };
}

function wasmInternals(backend: object): WasmInternals | null {
  const b = backend as Partial<WasmInternals>;
  const ok = typeof b.makeOutput === 'function' && typeof b.typedArrayFromHeap === 'function' &&
    b.dataIdMap !== undefined && b.wasm?.asm?.memory !== undefined;
  return ok ? (backend as WasmInternals) : null;
}

/**
 * Runs a SIMD kernel (simd-depthwise.ts) straight on the heap into a zeroed `outShape` output; null
 * where it does not apply (channels not a multiple of 8, non-square kernel or stride, no wasm
 * SIMD), and the composed path runs instead.
 */
function runSimd(
  backend: object,
  which: 'filter' | 'input',
  outShape: number[],
  xOrFilter: TensorInfo,
  dy: TensorInfo,
  g: ConvGeometry,
  c: number,
): TensorInfo | null {
  const b = wasmInternals(backend);
  if (b === null || c % 8 !== 0 || g.kH !== g.kW || g.strideH !== g.strideW) return null;
  if (xOrFilter.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const memory = b.wasm.asm?.memory;
  const kernels = memory === undefined ? null : simdDepthwiseKernels(memory);
  if (kernels === null) return null;
  const out = b.makeOutput(outShape, 'float32');
  b.typedArrayFromHeap(out).fill(0);
  const offset = (t: TensorInfo): number => {
    const data = b.dataIdMap.get(t.dataId);
    if (data === undefined) throw new Error('tensor not on the wasm heap');
    return data.memoryOffset;
  };
  // dwf(x, dy, dW, ...) and dwi(dx, dy, filter, ...) share one parameter list.
  const [fn, p0, p2] =
    which === 'filter' ? [kernels.filterGrad, offset(xOrFilter), offset(out)] : [kernels.inputGrad, offset(out), offset(xOrFilter)];
  fn(p0, offset(dy), p2, g.n, g.inH, g.inW, c, g.outH, g.outW, g.kH, g.strideH, g.padTop, g.padLeft);
  return out;
}

function assertMultiplierOne(kernel: string, filterShape: readonly number[]): void {
  if (filterShape[3] !== 1) {
    throw new Error(`${kernel} on wasm: channel multiplier ${filterShape[3]} is not supported (only 1)`);
  }
}

/**
 * dW[i,j,c] = Σ_{n,oh,ow} xpad[n, oh·s+i, ow·s+j, c] · dy[n,oh,ow,c]; the fallback for channel
 * counts the SIMD kernel does not take.
 *
 * Each (image, channel) pair becomes one channel of a single depthwise conv whose "filter" is that
 * pair's dy (Ho×Wo, dilated by the stride) and whose output is the kh×kw gradient; a sum over the
 * batch finishes it. This keeps the multiply-accumulate inside XNNPACK: per-tap slice·dy products
 * need k² strided slices, which wasm runs at a few ms each, and were 2-200x slower.
 * The batch goes before the channels ([H,W,N,C]) because that transpose moves whole C-vectors.
 */
export function depthwiseBackpropFilterNHWC(s: KernelScope, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, c: number): TensorInfo {
  const xw = windowedInput(s, x, g);
  const [, hw, ww] = xw.shape;
  const xT = s.reshape(s.transpose(xw, [1, 2, 0, 3]), [1, hw, ww, g.n * c]);
  const dyT = s.reshape(s.transpose(dy, [1, 2, 0, 3]), [g.outH, g.outW, g.n * c, 1]);
  const r = s.run(
    'DepthwiseConv2dNative',
    { x: xT, filter: dyT },
    { strides: [1, 1], pad: 'valid', dilations: [g.strideH, g.strideW] },
  ); // [1, kH, kW, N·C]
  const perImage = s.reshape(r, [g.kH * g.kW, g.n, c]);
  const summed = g.n === 1 ? perImage : s.run('Sum', { x: perImage }, { axis: [1], keepDims: false });
  return s.reshape(summed, [g.kH, g.kW, c, 1]);
}

/**
 * dx = dy, zero-stuffed by the stride, correlated with the 180°-rotated filter: a stride-1 depthwise
 * conv. Zero-stuffing is a pad of a [N,Ho,1,Wo,1,C] view.
 */
export function depthwiseBackpropInputNHWC(s: KernelScope, dy: TensorInfo, filter: TensorInfo, g: ConvGeometry, c: number): TensorInfo {
  let stuffed = dy;
  if (g.strideH > 1 || g.strideW > 1) {
    const v = s.reshape(dy, [g.n, g.outH, 1, g.outW, 1, c]);
    const p = s.padOrCrop(v, [[0, 0], [0, 0], [0, g.strideH - 1], [0, 0], [0, g.strideW - 1], [0, 0]]);
    stuffed = s.reshape(p, [g.n, g.outH * g.strideH, g.outW * g.strideW, c]);
  }
  const [, sh, sw] = stuffed.shape;
  const padTop = g.kH - 1 - g.padTop;
  const padLeft = g.kW - 1 - g.padLeft;
  const padded = s.padOrCrop(stuffed, [
    [0, 0],
    [padTop, g.inH + g.kH - 1 - padTop - sh],
    [padLeft, g.inW + g.kW - 1 - padLeft - sw],
    [0, 0],
  ]);
  const rotated = s.run('Reverse', { x: filter }, { dims: [0, 1] });
  return s.run('DepthwiseConv2dNative', { x: padded, filter: rotated }, { strides: [1, 1], pad: 'valid', dilations: [1, 1] });
}

const filterKernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = requireInput(inputs, 'x');
  const dy = requireInput(inputs, 'dy');
  const { strides, pad, dilations, dimRoundingMode, filterShape } = attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
  assertUnitDilation(DepthwiseConv2dNativeBackpropFilter, dilations);
  assertMultiplierOne(DepthwiseConv2dNativeBackpropFilter, filterShape);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    true,
  );
  const g = geometryOf(info);
  const c = info.inChannels;
  return (
    runSimd(backend, 'filter', [g.kH, g.kW, c, 1], x, dy, g, c) ??
    withScope(asKernelBackend(backend), 'wasm', (s) => depthwiseBackpropFilterNHWC(s, x, dy, g, c))
  );
};

const inputKernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
  const dy = requireInput(inputs, 'dy');
  const filter = requireInput(inputs, 'filter');
  const { strides, pad, dilations, dimRoundingMode, inputShape } = attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
  assertUnitDilation(DepthwiseConv2dNativeBackpropInput, dilations);
  assertMultiplierOne(DepthwiseConv2dNativeBackpropInput, filter.shape);
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    true,
  );
  const g = geometryOf(info);
  const c = info.inChannels;
  return (
    runSimd(backend, 'input', [...inputShape], filter, dy, g, c) ??
    withScope(asKernelBackend(backend), 'wasm', (s) => depthwiseBackpropInputNHWC(s, dy, filter, g, c))
  );
};

export const depthwiseBackpropFilterConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: filterKernelFunc,
};

export const depthwiseBackpropInputConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: inputKernelFunc,
};
