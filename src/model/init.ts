import type { WeightProvider } from './graph-builder.js';
import { gaussian, mulberry32 } from '../data/random.js';

export interface InitOptions {
  readonly seed: number;
  /**
   * Give BatchNorm layers random running statistics and affine parameters instead of the
   * identity defaults (mean 0, var 1, γ 1, β 0): default statistics make a BN fold look right even
   * when it is wrong, so equivalence tests use this.
   */
  readonly randomBatchNorm: boolean;
  /** Multiplies the conv weight bound; 1 is PyTorch's default. Tests raise it to get large logits. */
  readonly gain?: number;
}

/**
 * Seeded initialisation with PyTorch's Conv2d defaults (weights and biases uniform in
 * ±1/sqrt(fan_in)), so a seeded model behaves like a freshly constructed paper model; BN as chosen.
 */
export function seededWeights(o: InitOptions): WeightProvider {
  const normal = gaussian(o.seed);
  const uniform = mulberry32(o.seed ^ 0x9e3779b9);
  const gain = o.gain ?? 1;
  return (spec) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      switch (spec.role) {
        case 'conv.weight':
          out[i] = (gain * (uniform() * 2 - 1)) / Math.sqrt(spec.fanIn);
          break;
        case 'conv.bias':
          out[i] = (uniform() * 2 - 1) / Math.sqrt(spec.fanIn);
          break;
        case 'bn.weight':
          out[i] = o.randomBatchNorm ? 0.5 + uniform() : 1;
          break;
        case 'bn.bias':
          out[i] = o.randomBatchNorm ? 0.2 * normal() : 0;
          break;
        case 'bn.running_mean':
          out[i] = o.randomBatchNorm ? 0.2 * normal() : 0;
          break;
        case 'bn.running_var':
          out[i] = o.randomBatchNorm ? 0.5 + uniform() * 1.5 : 1;
          break;
      }
    }
    return out;
  };
}

/** Weights from a map (e.g. a checked safetensors file), failing loudly on any gap. */
export function weightsFromMap(tensors: ReadonlyMap<string, Float32Array>, source: string): WeightProvider {
  return (spec) => {
    const t = tensors.get(spec.name);
    if (!t) throw new Error(`${source}: no tensor for parameter ${spec.name}`);
    return t;
  };
}
