/**
 * Makes @tensorflow/tfjs-backend-wasm able to train LV-UNet: the kernels its gradients need and it
 * lacks, the tfjs-core gradient registry (which tfjs-core's Node bundle leaves out), and an offline
 * backend set-up.
 */
import { getKernel, registerKernel } from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig } from './depthwise-backprop.js';
import { registerPointwiseConv2dBackpropInput } from './conv2d-backprop-input.js';
import { relu6GradCpuConfig, relu6GradWasmConfig } from './relu6-grad.js';

export { batchNormTrain, type BatchStats } from './batch-norm.js';
export { initWasmBackend, type WasmBackendInfo, type WasmBackendOptions } from './backend.js';
export { registerTfjsGradients } from './gradients.js';
export { registerRelu6Gradient, RELU6_GRAD } from './relu6-grad.js';

export const TRAINING_KERNELS: readonly KernelConfig[] = [
  conv2dBackpropFilterConfig,
  depthwiseBackpropFilterConfig,
  depthwiseBackpropInputConfig,
  relu6GradWasmConfig,
  relu6GradCpuConfig,
];

/**
 * Idempotent; kernels already present for a backend (a later tfjs release, say) are kept. Also
 * routes 1x1 Conv2DBackpropInput on wasm through a matmul (see conv2d-backprop-input.ts).
 */
export function registerWasmTrainingKernels(): void {
  for (const config of TRAINING_KERNELS) {
    if (getKernel(config.kernelName, config.backendName) === undefined) registerKernel(config);
  }
  registerPointwiseConv2dBackpropInput();
}
