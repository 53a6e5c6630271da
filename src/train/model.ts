/**
 * LV-UNet as tfjs computation, obtained by interpreting the IR graph that `buildTrainingGraph`
 * emits, so the trainer cannot drift from the exported ONNX models. Parameters live in tf.Variables
 * keyed by their PyTorch names, in tfjs layouts (NHWC activations; HWIO and HW·C·1 filters); they
 * are converted from and back to PyTorch's OIHW at the boundary.
 */
import * as tf from '@tensorflow/tfjs-core';
import { buildTrainingGraph, type BuildOptions } from '../model/architecture.js';
import type { ParamSpec, WeightProvider } from '../model/graph-builder.js';
import { floatAttr, intAttr, intsAttr, type Graph, type Node } from '../model/ir.js';
import { batchNormTrain } from './wasm-kernels/index.js';

/** PyTorch BatchNorm's default momentum: running = (1 − m)·running + m·batch. */
export const BN_MOMENTUM = 0.1;

type FilterLayout = 'conv' | 'depthwise' | 'vector';

export interface ModelParam {
  readonly spec: ParamSpec;
  readonly variable: tf.Variable;
  readonly layout: FilterLayout;
}

/** A float32 tensor in PyTorch layout, as safetensors stores it. */
export interface TorchTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

interface PendingStats {
  readonly node: string;
  readonly mean: tf.Tensor1D;
  readonly variance: tf.Tensor1D;
  readonly count: number;
}

const TO_HWIO = [2, 3, 1, 0];
const FROM_HWIO = [3, 2, 0, 1];
/** [C,1,H,W] ↔ [H,W,C,1]: the same permutation both ways. */
const DEPTHWISE_PERM = [2, 3, 0, 1];

/** Filter layout of each conv weight, read off the Conv nodes' `group` attribute. */
function filterLayouts(graph: Graph): Map<string, FilterLayout> {
  const layouts = new Map<string, FilterLayout>();
  for (const node of graph.nodes) {
    if (node.op !== 'Conv') continue;
    const w = graph.initializers.get(node.inputs[1]);
    if (w === undefined) throw new Error(`${node.name}: conv weight ${node.inputs[1]} is not an initializer`);
    const group = intAttr(node, 'group', 1);
    const [out, inPerGroup] = w.dims;
    if (group === 1) layouts.set(node.inputs[1], 'conv');
    else if (group === out && inPerGroup === 1) layouts.set(node.inputs[1], 'depthwise');
    else throw new Error(`${node.name}: grouped conv with ${group} groups is not supported`);
  }
  return layouts;
}

/** NCHW (as preprocessRgb produces, one image or a batch) → NHWC. */
export function nchwToNhwc(data: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(data.length);
  const plane = h * w;
  for (let b = 0; b < n; b++) {
    const base = b * c * plane;
    for (let ch = 0; ch < c; ch++) {
      const src = base + ch * plane;
      for (let p = 0; p < plane; p++) out[base + p * c + ch] = data[src + p];
    }
  }
  return out;
}

export class TfLvunet {
  readonly graph: Graph;
  readonly params: ReadonlyMap<string, ModelParam>;
  /** The deep-training LeakyReLU slope, read at every forward pass so a schedule can move it. */
  readonly lambda: tf.Variable<tf.Rank.R0>;
  /** PyTorch's num_batches_tracked, the same for every BN layer (all see every batch). */
  batchesTracked = 0;
  private pending: PendingStats[] = [];

  private constructor(graph: Graph, params: Map<string, ModelParam>, lambda: number) {
    this.graph = graph;
    this.params = params;
    this.lambda = tf.variable(tf.scalar(lambda), false);
  }

  /**
   * `options` sizes only the IR that is interpreted; the tfjs ops take any multiple of 128.
   * `weights` supplies PyTorch-layout values (seededWeights, weightsFromMap).
   */
  static create(options: BuildOptions, weights: WeightProvider): TfLvunet {
    const { graph, parameters } = buildTrainingGraph(options, weights);
    const layouts = filterLayouts(graph);
    const params = new Map<string, ModelParam>();
    for (const spec of parameters) {
      const init = graph.initializers.get(spec.name);
      if (init === undefined || !(init.data instanceof Float32Array)) throw new Error(`no float32 initializer for ${spec.name}`);
      const layout = layouts.get(spec.name) ?? 'vector';
      const value = tf.tidy(() => toTfLayout(tf.tensor(init.data as Float32Array, [...spec.shape]), layout));
      const trainable = spec.role !== 'bn.running_mean' && spec.role !== 'bn.running_var';
      params.set(spec.name, { spec, variable: tf.variable(value, trainable), layout });
      value.dispose();
    }
    return new TfLvunet(graph, params, options.lambda);
  }

  setLambda(lambda: number): void {
    if (!(lambda >= 0 && lambda <= 1)) throw new RangeError(`λ = ${lambda} is outside [0, 1]`);
    tf.tidy(() => this.lambda.assign(tf.scalar(lambda)));
  }

  trainableVariables(): tf.Variable[] {
    return [...this.params.values()].filter((p) => p.variable.trainable).map((p) => p.variable);
  }

  trainableParams(): ModelParam[] {
    return [...this.params.values()].filter((p) => p.variable.trainable);
  }

  /**
   * NHWC input → NHWC logits [N,H,W,1]. Training mode normalises with batch statistics and queues
   * them; `commitBatchStats` folds them into the running statistics once the step has succeeded.
   * The caller owns the intermediates (tf.tidy or a gradient function).
   */
  forward(x: tf.Tensor4D, training: boolean): tf.Tensor4D {
    const values = new Map<string, tf.Tensor>([[this.graph.inputs[0].name, x]]);
    const get = (name: string): tf.Tensor => {
      const p = this.params.get(name);
      if (p !== undefined) return p.variable;
      const v = values.get(name);
      if (v === undefined) throw new Error(`value ${name} used before it is computed`);
      return v;
    };
    for (const node of this.graph.nodes) {
      values.set(node.outputs[0], this.apply(node, get, training));
    }
    return get(this.graph.outputs[0].name) as tf.Tensor4D;
  }

  private apply(node: Node, get: (name: string) => tf.Tensor, training: boolean): tf.Tensor {
    const x = get(node.inputs[0]) as tf.Tensor4D;
    switch (node.op) {
      case 'Conv': {
        const w = this.params.get(node.inputs[1]);
        if (w === undefined) throw new Error(`${node.name}: weight ${node.inputs[1]} is not a parameter`);
        const stride = intsAttr(node, 'strides', [1, 1])[0];
        const p = intsAttr(node, 'pads', [0, 0, 0, 0])[0];
        // PyTorch pads symmetrically; tfjs 'same' pads the bottom/right first at stride 2.
        const pad: Pad4 | 'valid' = p === 0 ? 'valid' : [[0, 0], [p, p], [p, p], [0, 0]];
        const filter = w.variable as tf.Tensor4D;
        const y = w.layout === 'depthwise' ? tf.depthwiseConv2d(x, filter, stride, pad) : tf.conv2d(x, filter, stride, pad);
        return node.inputs[2] ? tf.add(y, get(node.inputs[2])) : y;
      }
      case 'BatchNormalization': {
        const [gamma, beta, mean, variance] = node.inputs.slice(1).map(get) as tf.Tensor1D[];
        const eps = floatAttr(node, 'epsilon', 1e-5);
        if (!training) return tf.batchNorm(x, mean, variance, beta, gamma, eps);
        const count = x.shape[0] * x.shape[1] * x.shape[2];
        return batchNormTrain(x, gamma, beta, eps, (s) => this.pending.push({ node: node.name, ...s, count }));
      }
      case 'Relu':
        return tf.relu(x);
      case 'HardSwish':
        return tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6));
      case 'HardSigmoid':
        return tf.div(tf.relu6(tf.add(x, 3)), 6);
      case 'LeakyRelu':
        // λ·x + (1 − λ)·relu(x): exactly x at λ = 1 and exactly λ·x for x < 0; the attribute holds
        // the slope the IR was built with, the variable the one being trained now.
        return tf.add(tf.mul(x, this.lambda), tf.mul(tf.relu(x), tf.sub(1, this.lambda)));
      case 'MaxPool':
        return tf.maxPool(x, 2, 2, 'valid');
      case 'Resize':
        return tf.image.resizeBilinear(x, [x.shape[1] * 2, x.shape[2] * 2], false, true);
      case 'GlobalAveragePool':
        // tf.mean, not a whole-map avgPool: wasm's AvgPoolGrad is very slow for such windows.
        return tf.mean(x, [1, 2], true);
      case 'Add':
        return tf.add(x, get(node.inputs[1]));
      case 'Mul':
        return tf.mul(x, get(node.inputs[1]));
      default:
        throw new Error(`${node.name}: op ${node.op} is not supported by the trainer`);
    }
  }

  /** PyTorch's update: running_var takes the unbiased batch variance (·M/(M − 1)). */
  commitBatchStats(): void {
    const pending = this.pending;
    this.pending = [];
    const byNode = new Map(this.graph.nodes.map((n) => [n.name, n] as const));
    tf.tidy(() => {
      for (const s of pending) {
        const node = byNode.get(s.node);
        if (node === undefined) continue;
        const rm = this.params.get(node.inputs[3])!.variable;
        const rv = this.params.get(node.inputs[4])!.variable;
        rm.assign(tf.add(tf.mul(rm, 1 - BN_MOMENTUM), tf.mul(s.mean, BN_MOMENTUM)));
        const unbiased = s.count > 1 ? tf.mul(s.variance, s.count / (s.count - 1)) : s.variance;
        rv.assign(tf.add(tf.mul(rv, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
      }
    });
    for (const s of pending) {
      s.mean.dispose();
      s.variance.dispose();
    }
    if (pending.length > 0) this.batchesTracked++;
  }

  /** Drops queued batch statistics (a failed or evaluation-only training-mode pass). */
  discardBatchStats(): void {
    for (const s of this.pending) {
      s.mean.dispose();
      s.variance.dispose();
    }
    this.pending = [];
  }

  /** Every parameter in PyTorch layout, keyed by its state_dict name. */
  exportWeights(): Map<string, TorchTensor> {
    const out = new Map<string, TorchTensor>();
    for (const [name, p] of this.params) {
      const t = tf.tidy(() => fromTfLayout(p.variable, p.layout));
      out.set(name, { shape: [...p.spec.shape], data: t.dataSync() as Float32Array });
      t.dispose();
    }
    return out;
  }

  /** Overwrites parameters from PyTorch-layout tensors (a checkpoint); every parameter must be present. */
  loadWeights(tensors: ReadonlyMap<string, Float32Array>): void {
    for (const [name, p] of this.params) {
      const data = tensors.get(name);
      if (data === undefined) throw new Error(`no tensor for parameter ${name}`);
      tf.tidy(() => p.variable.assign(toTfLayout(tf.tensor(data, [...p.spec.shape]), p.layout)));
    }
  }

  dispose(): void {
    this.discardBatchStats();
    for (const p of this.params.values()) p.variable.dispose();
    this.lambda.dispose();
  }
}

export function toTfLayout(t: tf.Tensor, layout: FilterLayout): tf.Tensor {
  if (layout === 'conv') return tf.transpose(t, TO_HWIO);
  if (layout === 'depthwise') return tf.transpose(t, DEPTHWISE_PERM);
  return t.clone();
}

export function fromTfLayout(t: tf.Tensor, layout: FilterLayout): tf.Tensor {
  if (layout === 'conv') return tf.transpose(t, FROM_HWIO);
  if (layout === 'depthwise') return tf.transpose(t, DEPTHWISE_PERM);
  return t.clone();
}
