/** onnxruntime-node sessions for the precision tools (calibration, checks, benchmarks). */
import ort from 'onnxruntime-node';
import type { Model } from '../ir.js';
import { writeOnnx } from '../onnx/write.js';

export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionOptions {
  readonly optimization?: OptimizationLevel;
  readonly threads?: number;
}

export type ModelSource = Model | Uint8Array;

export function modelBytes(model: ModelSource): Uint8Array {
  return model instanceof Uint8Array ? model : writeOnnx(model);
}

/** A session with one float32 NCHW input; `run` returns the named outputs (all when none named). */
export class FloatSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputName: string,
    readonly dims: readonly number[],
  ) {}

  static async create(model: ModelSource, dims: readonly number[], options: SessionOptions = {}, what = 'model'): Promise<FloatSession> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(modelBytes(model), {
        graphOptimizationLevel: options.optimization ?? 'all',
        intraOpNumThreads: options.threads ?? 2,
      });
    } catch (err) {
      throw new Error(`${what}: onnxruntime-node cannot load it: ${(err as Error).message}`);
    }
    return new FloatSession(session, session.inputNames[0], dims);
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(input: Float32Array, names?: readonly string[]): Promise<Map<string, Float32Array>> {
    const feeds = { [this.inputName]: new ort.Tensor('float32', input, [...this.dims]) };
    const out = names ? await this.session.run(feeds, [...names]) : await this.session.run(feeds);
    const result = new Map<string, Float32Array>();
    for (const [k, v] of Object.entries(out)) result.set(k, v.data as Float32Array);
    return result;
  }

  async first(input: Float32Array): Promise<Float32Array> {
    const name = this.session.outputNames[0];
    return (await this.run(input, [name])).get(name)!;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Concrete NCHW dims of a model's first input at batch 1. */
export function inputDims(model: Model, what = 'model'): number[] {
  const input = model.graph.inputs[0];
  if (!input) throw new Error(`${what}: the graph has no input`);
  const dims = input.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 ? 1 : NaN));
  if (dims.length !== 4 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new Error(`${what}: input '${input.name}' has shape [${input.shape.join(', ')}], expected [batch, 3, H, W]`);
  }
  return dims;
}
