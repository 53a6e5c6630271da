/**
 * Picks the tfjs backend for training: tfjs-node (native TensorFlow, multi-threaded) when it is
 * installed, else the wasm backend with the training kernels and gradients it lacks. tfjs-node is
 * not a dependency, so it is imported dynamically by a name TypeScript cannot resolve statically.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initWasmBackend, registerTfjsGradients, registerWasmTrainingKernels } from './wasm-kernels/index.js';

export interface TrainBackend {
  readonly name: string;
  readonly detail: string;
}

let ready: Promise<TrainBackend> | undefined;

async function tryTfjsNode(): Promise<boolean> {
  const specifier = '@tensorflow/tfjs-node';
  try {
    await import(specifier);
  } catch {
    return false;
  }
  try {
    // A tfjs-node built against another tfjs-core registers its backend with that copy, not ours.
    return await tf.setBackend('tensorflow');
  } catch {
    return false;
  }
}

/** Idempotent. `preferNative: false` forces wasm (tests compare against a fixed backend). */
export function initTrainBackend(options: { preferNative?: boolean } = {}): Promise<TrainBackend> {
  ready ??= (async () => {
    if (options.preferNative !== false && (await tryTfjsNode())) {
      // Our tfjs-core's Node entry has no gradients whichever backend runs the kernels.
      await registerTfjsGradients();
      return { name: 'tensorflow', detail: 'tfjs-node' };
    }
    registerWasmTrainingKernels();
    const info = await initWasmBackend();
    await registerTfjsGradients();
    return { name: 'wasm', detail: `wasm (simd ${info.simd}, ${info.threads} thread${info.threads === 1 ? '' : 's'})` };
  })();
  return ready;
}
