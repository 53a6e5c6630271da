import ort from 'onnxruntime-node';
import { writeOnnx } from '../../src/model/onnx/write.js';
import type { Model } from '../../src/model/ir.js';

export type Optimization = 'disabled' | 'all';

/** Runs a model on one float32 input in onnxruntime-node and returns its only output. */
export async function runModel(
  model: Model | Uint8Array,
  input: Float32Array,
  dims: readonly number[],
  optimization: Optimization = 'disabled',
): Promise<Float32Array> {
  const bytes = model instanceof Uint8Array ? model : writeOnnx(model);
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: optimization, intraOpNumThreads: 1 });
  try {
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input, [...dims]) };
    const out = await session.run(feeds);
    return out[session.outputNames[0]].data as Float32Array;
  } finally {
    await session.release();
  }
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}
