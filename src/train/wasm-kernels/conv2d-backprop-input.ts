/**
 * Conv2DBackpropInput for 1x1 stride-1 unpadded NHWC convs on wasm as one matmul, dx = dy · Wᵀ.
 *
 * tfjs-backend-wasm has this kernel, but it runs 1x1 layers at 1-1.7 GFLOP/s (LV-UNet shapes),
 * against 10-15 GFLOP/s for the equivalent matmul; every other case goes to the original kernel.
 */
import { backend_util, Conv2DBackpropInput, getKernel, unregisterKernel, registerKernel } from '@tensorflow/tfjs-core';
import type { Conv2DBackpropInputAttrs, KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { asKernelBackend, requireInput, withScope } from './scope.js';

function pointwiseOrNull(original: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const dy = requireInput(inputs, 'dy');
    const filter = requireInput(inputs, 'filter');
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
    const info = backend_util.computeConv2DInfo(
      inputShape,
      filter.shape as [number, number, number, number],
      strides,
      1,
      pad,
      dimRoundingMode,
      false,
      backend_util.convertConv2DDataFormat(dataFormat),
    );
    const pointwise =
      info.dataFormat === 'channelsLast' && info.filterHeight === 1 && info.filterWidth === 1 &&
      info.strideHeight === 1 && info.strideWidth === 1 && info.padInfo.top === 0 && info.padInfo.left === 0 &&
      info.outHeight === info.inHeight && info.outWidth === info.inWidth;
    if (!pointwise) return original(args);
    const p = info.batchSize * info.inHeight * info.inWidth;
    return withScope(asKernelBackend(backend), 'wasm', (s) => {
      // wasm's BatchMatMul is several times slower with transposeB; transposing W (tiny) is free.
      const wT = s.transpose(s.reshape(filter, [info.inChannels, info.outChannels]), [1, 0]);
      const m = s.run(
        'BatchMatMul',
        { a: s.reshape(dy, [1, p, info.outChannels]), b: s.reshape(wT, [1, info.outChannels, info.inChannels]) },
        { transposeA: false, transposeB: false },
      );
      return s.reshape(m, [...inputShape]);
    });
  };
}

/**
 * Wraps the backend's own Conv2DBackpropInput (kept for every non-1x1 case). Idempotent. The
 * original setupFunc is carried over so that a backend initialised later still sets it up.
 */
export function registerPointwiseConv2dBackpropInput(): void {
  const original = getKernel(Conv2DBackpropInput, 'wasm');
  if (original === undefined || (original as { pointwiseWrapped?: boolean }).pointwiseWrapped) return;
  const config: KernelConfig & { pointwiseWrapped: boolean } = {
    kernelName: Conv2DBackpropInput,
    backendName: 'wasm',
    setupFunc: original.setupFunc,
    disposeFunc: original.disposeFunc,
    kernelFunc: pointwiseOrNull(original.kernelFunc),
    pointwiseWrapped: true,
  };
  unregisterKernel(Conv2DBackpropInput, 'wasm');
  registerKernel(config);
}
