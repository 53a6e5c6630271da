/**
 * Conv2DBackpropFilter for the wasm backend, built from kernels the backend has.
 *
 * dW[i,j,ci,co] = Σ_{n,oh,ow} xpad[n, oh·s+i, ow·s+j, ci] · dy[n,oh,ow,co]
 *
 * - 1x1, stride 1, no padding: one matmul of the reshaped tensors. A transposed-A matmul is 5-10x
 *   slower on wasm than transposing explicitly, and the transpose costs about as much as the matmul,
 *   so the operand with fewer channels is the one transposed.
 * - otherwise: a forward conv of transposed tensors (channels of x become the batch, the batch
 *   becomes the input channels, dy becomes an Ho×Wo filter dilated by the stride), which keeps the
 *   work inside XNNPACK's GEMM instead of materialising an im2col buffer.
 */
import { backend_util, Conv2DBackpropFilter } from '@tensorflow/tfjs-core';
import type {
  Conv2DBackpropFilterAttrs,
  KernelConfig,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { asKernelBackend, requireInput, withScope, type KernelScope } from './scope.js';

export interface ConvGeometry {
  n: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  kH: number;
  kW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padLeft: number;
}

export function geometryOf(info: backend_util.Conv2DInfo): ConvGeometry {
  return {
    n: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    outH: info.outHeight,
    outW: info.outWidth,
    kH: info.filterHeight,
    kW: info.filterWidth,
    strideH: info.strideHeight,
    strideW: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/**
 * Pads or crops NHWC `x` so that it holds exactly the rows and columns the forward conv read:
 * (out-1)·stride + k of them, starting at -pad. Beyond-the-end rows were never read (PyTorch-style
 * symmetric padding with stride 2 leaves one unused), so the bottom/right amount can be negative.
 */
export function windowedInput(s: KernelScope, x: TensorInfo, g: ConvGeometry): TensorInfo {
  const needH = (g.outH - 1) * g.strideH + g.kH;
  const needW = (g.outW - 1) * g.strideW + g.kW;
  return s.padOrCrop(x, [
    [0, 0],
    [g.padTop, needH - g.inH - g.padTop],
    [g.padLeft, needW - g.inW - g.padLeft],
    [0, 0],
  ]);
}

export function assertUnitDilation(kernel: string, dilations: number | [number, number] | undefined): void {
  const d = dilations ?? 1;
  const [dh, dw] = typeof d === 'number' ? [d, d] : d;
  if (dh !== 1 || dw !== 1) throw new Error(`${kernel} on wasm: dilation ${dh}x${dw} is not supported (only 1)`);
}

export function conv2dBackpropFilterNHWC(s: KernelScope, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, cIn: number, cOut: number): TensorInfo {
  const pointwise =
    g.kH === 1 && g.kW === 1 && g.strideH === 1 && g.strideW === 1 && g.padTop === 0 && g.padLeft === 0 &&
    g.outH === g.inH && g.outW === g.inW;
  if (pointwise) {
    const p = g.n * g.inH * g.inW;
    if (cIn <= cOut) {
      const xT = s.transpose(s.reshape(x, [p, cIn]), [1, 0]);
      const m = s.run('BatchMatMul', { a: s.reshape(xT, [1, cIn, p]), b: s.reshape(dy, [1, p, cOut]) }, { transposeA: false, transposeB: false });
      return s.reshape(m, [1, 1, cIn, cOut]);
    }
    const dyT = s.transpose(s.reshape(dy, [p, cOut]), [1, 0]);
    const m = s.run('BatchMatMul', { a: s.reshape(dyT, [1, cOut, p]), b: s.reshape(x, [1, p, cIn]) }, { transposeA: false, transposeB: false });
    return s.reshape(s.transpose(s.reshape(m, [cOut, cIn]), [1, 0]), [1, 1, cIn, cOut]);
  }
  const xw = windowedInput(s, x, g);
  const xT = s.transpose(xw, [3, 1, 2, 0]); // [cIn, needH, needW, N]
  const dyT = s.transpose(dy, [1, 2, 0, 3]); // [outH, outW, N, cOut]
  const r = s.run(
    'Conv2D',
    { x: xT, filter: dyT },
    { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [g.strideH, g.strideW] },
  ); // [cIn, kH, kW, cOut]
  return s.transpose(r, [1, 2, 0, 3]);
}

const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = requireInput(inputs, 'x');
  const dy = requireInput(inputs, 'dy');
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  return withScope(asKernelBackend(backend), 'wasm', (s) => {
    const channelsFirst = dataFormat === 'NCHW';
    const xh = channelsFirst ? s.transpose(x, [0, 2, 3, 1]) : x;
    const dyh = channelsFirst ? s.transpose(dy, [0, 2, 3, 1]) : dy;
    // Geometry from the original layout: explicit pads are given in that layout's axis order.
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filterShape,
      strides,
      1,
      pad,
      dimRoundingMode,
      false,
      channelsFirst ? 'channelsFirst' : 'channelsLast',
    );
    if (info.outHeight !== dyh.shape[1] || info.outWidth !== dyh.shape[2]) {
      throw new Error(`Conv2DBackpropFilter on wasm: dy ${dyh.shape} does not match the conv output ${info.outShape}`);
    }
    return conv2dBackpropFilterNHWC(s, xh, dyh, geometryOf(info), info.inChannels, info.outChannels);
  });
};

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc,
};
