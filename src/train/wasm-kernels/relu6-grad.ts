/**
 * Relu6Grad: dx = dy · (0 < x < 6), PyTorch's hardtanh_backward (strict at both ends).
 *
 * tfjs-core 4.22 has no such kernel: its Relu6 gradient is composed of LessEqual, Step, Mul, Cast and
 * Mul (all of which wasm has), and is inclusive at 6. This kernel is one pass in JS on the wasm heap;
 * measured, it is no faster than those five wasm passes (a scalar JS loop), so its reason to exist is
 * PyTorch's semantics. `registerRelu6Gradient` makes tf.grad use it; without it training works too.
 */
import { registerGradient } from '@tensorflow/tfjs-core';
import type { GradConfig, KernelConfig, KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { engine } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { asKernelBackend, requireInput } from './scope.js';

export const RELU6_GRAD = 'Relu6Grad';

function relu6GradInto(out: Float32Array, dy: ArrayLike<number>, x: ArrayLike<number>): void {
  for (let i = 0; i < out.length; i++) {
    const v = x[i];
    out[i] = v > 0 && v < 6 ? dy[i] : 0;
  }
}

function checkInputs(dy: TensorInfo, x: TensorInfo): void {
  if (dy.dtype !== 'float32' || x.dtype !== 'float32') throw new Error('Relu6Grad: float32 only');
  if (dy.shape.length !== x.shape.length || dy.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(`Relu6Grad: dy ${dy.shape} and x ${x.shape} differ`);
  }
}

const wasmKernelFunc: KernelFunc = ({ inputs, backend }) => {
  const dy = requireInput(inputs, 'dy');
  const x = requireInput(inputs, 'x');
  checkInputs(dy, x);
  const b = backend as BackendWasm;
  const out = b.makeOutput([...x.shape], 'float32');
  // Views are taken after makeOutput: allocating may grow (and detach) the heap.
  relu6GradInto(
    b.typedArrayFromHeap(out) as Float32Array,
    b.typedArrayFromHeap(dy) as Float32Array,
    b.typedArrayFromHeap(x) as Float32Array,
  );
  return out;
};

/** Any backend: reads both inputs out and writes the result in. */
const genericKernelFunc: KernelFunc = ({ inputs, backend }) => {
  const dy = requireInput(inputs, 'dy');
  const x = requireInput(inputs, 'x');
  checkInputs(dy, x);
  const kb = asKernelBackend(backend);
  const out = new Float32Array(x.shape.reduce((a, d) => a * d, 1));
  relu6GradInto(out, kb.readSync(dy.dataId) as Float32Array, kb.readSync(x.dataId) as Float32Array);
  return { dataId: kb.write(out, [...x.shape], 'float32'), shape: [...x.shape], dtype: 'float32' };
};

export const relu6GradWasmConfig: KernelConfig = { kernelName: RELU6_GRAD, backendName: 'wasm', kernelFunc: wasmKernelFunc };
export const relu6GradCpuConfig: KernelConfig = { kernelName: RELU6_GRAD, backendName: 'cpu', kernelFunc: genericKernelFunc };

const relu6GradConfig: GradConfig = {
  kernelName: 'Relu6',
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    return { x: () => engine().runKernel(RELU6_GRAD, { dy: dy as Tensor, x }) as Tensor };
  },
};

/**
 * Replaces the Relu6 gradient (for every backend) with one that runs the Relu6Grad kernel; every
 * backend that trains must then have Relu6Grad registered (wasm and cpu are, by registerWasmTrainingKernels).
 */
export function registerRelu6Gradient(): void {
  registerGradient(relu6GradConfig);
}
