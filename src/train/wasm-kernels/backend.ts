/**
 * Offline set-up of the wasm backend in Node: the .wasm files are read from the installed package.
 *
 * Threads: tfjs-backend-wasm 4.22 forces WASM_HAS_MULTITHREAD_SUPPORT to false under Node, and
 * forcing it true fails: its pthread worker is created from a blob: URL, which Node's Worker refuses
 * (ERR_WORKER_PATH). So Node gets the SIMD single-thread build.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export interface WasmBackendOptions {
  /** Folder holding tfjs-backend-wasm*.wasm; defaults to the installed package's dist/. */
  wasmDir?: string;
  /** Leave wasm the active backend (default true); otherwise the previous one is restored. */
  activate?: boolean;
}

export interface WasmBackendInfo {
  simd: boolean;
  threads: number;
  wasmDir: string;
}

export function defaultWasmDir(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
}

let paths: string | undefined;

export async function initWasmBackend(options: WasmBackendOptions = {}): Promise<WasmBackendInfo> {
  const wasmDir = options.wasmDir ?? defaultWasmDir();
  if (paths === undefined) {
    // setWasmPaths throws once the backend exists; a second call with another folder is an error.
    setWasmPaths(wasmDir.endsWith(path.sep) ? wasmDir : wasmDir + path.sep);
    paths = wasmDir;
  } else if (paths !== wasmDir) {
    throw new Error(`wasm backend already set up from ${paths}`);
  }
  // undefined until some backend has been set
  const previous: unknown = tf.engine().backendName;
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialise');
  if (options.activate === false && typeof previous === 'string' && previous !== 'wasm') await tf.setBackend(previous);
  return {
    simd: (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true,
    threads: getThreadsCount(),
    wasmDir,
  };
}
