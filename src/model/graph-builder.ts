import type { Attribute, Graph, Node, Tensor, ValueInfo } from './ir.js';
import { float32Tensor } from './ir.js';

/** What a parameter is, so initialisers and importers can treat each kind correctly. */
export type ParamRole =
  | 'conv.weight'
  | 'conv.bias'
  | 'bn.weight'
  | 'bn.bias'
  | 'bn.running_mean'
  | 'bn.running_var';

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly role: ParamRole;
  /** Inputs per output for conv weights (kaiming fan-in); 0 elsewhere. */
  readonly fanIn: number;
}

/** Supplies the values of each parameter as the graph asks for it. */
export type WeightProvider = (spec: ParamSpec) => Float32Array;

export interface ConvOptions {
  /** Parameter prefix, e.g. 'stages.0.conv1.0' → 'stages.0.conv1.0.weight'. */
  readonly name: string;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: number;
  readonly stride?: number;
  readonly groups?: number;
  readonly bias: boolean;
  /** Explicit padding; defaults to PyTorch's symmetric (k - 1) / 2. */
  readonly pad?: number;
}

/**
 * Float attributes are stored as float32 (Math.fround), as ONNX serialises them, so a graph read
 * back from a file equals the one built.
 *
 * Emits ONNX-shaped IR nodes with PyTorch parameter names. Methods return the name of the value
 * they produce, so architecture code reads like a forward() function.
 */
export class GraphBuilder {
  private readonly nodes: Node[] = [];
  private readonly initializers = new Map<string, Tensor>();
  private readonly params: ParamSpec[] = [];
  private counter = 0;

  constructor(private readonly weights: WeightProvider) {}

  private fresh(hint: string): string {
    return `${hint}:${this.counter++}`;
  }

  private param(name: string, shape: readonly number[], role: ParamRole, fanIn = 0): string {
    if (this.initializers.has(name)) throw new Error(`parameter ${name} defined twice`);
    const spec: ParamSpec = { name, shape, role, fanIn };
    this.params.push(spec);
    this.initializers.set(name, float32Tensor(shape, this.weights(spec)));
    return name;
  }

  constant(name: string, tensor: Tensor): string {
    this.initializers.set(name, tensor);
    return name;
  }

  node(op: string, name: string, inputs: readonly string[], attributes: Attribute[] = [], outputHint = name): string {
    const out = this.fresh(outputHint);
    this.nodes.push({ op, name, inputs, outputs: [out], attributes });
    return out;
  }

  conv(x: string, o: ConvOptions): string {
    const groups = o.groups ?? 1;
    const stride = o.stride ?? 1;
    const pad = o.pad ?? (o.kernel - 1) / 2;
    const fanIn = (o.inChannels / groups) * o.kernel * o.kernel;
    const w = this.param(`${o.name}.weight`, [o.outChannels, o.inChannels / groups, o.kernel, o.kernel], 'conv.weight', fanIn);
    const inputs = [x, w];
    if (o.bias) inputs.push(this.param(`${o.name}.bias`, [o.outChannels], 'conv.bias', fanIn));
    return this.node('Conv', o.name, inputs, [
      { name: 'dilations', type: 'ints', value: [1, 1] },
      { name: 'group', type: 'int', value: groups },
      { name: 'kernel_shape', type: 'ints', value: [o.kernel, o.kernel] },
      { name: 'pads', type: 'ints', value: [pad, pad, pad, pad] },
      { name: 'strides', type: 'ints', value: [stride, stride] },
    ]);
  }

  batchNorm(x: string, name: string, channels: number, eps: number): string {
    const p = (suffix: string, role: ParamRole): string => this.param(`${name}.${suffix}`, [channels], role);
    return this.node(
      'BatchNormalization',
      name,
      [x, p('weight', 'bn.weight'), p('bias', 'bn.bias'), p('running_mean', 'bn.running_mean'), p('running_var', 'bn.running_var')],
      [{ name: 'epsilon', type: 'float', value: Math.fround(eps) }],
    );
  }

  relu(x: string, name: string): string {
    return this.node('Relu', name, [x]);
  }

  /** x · relu6(x + 3) / 6, which ONNX HardSwish computes as x · clip(x/6 + 1/2, 0, 1). */
  hardswish(x: string, name: string): string {
    return this.node('HardSwish', name, [x]);
  }

  /** relu6(x + 3) / 6; ONNX's default alpha is 0.2, so it must be set. */
  hardsigmoid(x: string, name: string): string {
    return this.node('HardSigmoid', name, [x], [
      { name: 'alpha', type: 'float', value: Math.fround(1 / 6) },
      { name: 'beta', type: 'float', value: 0.5 },
    ]);
  }

  leakyRelu(x: string, name: string, slope: number): string {
    return this.node('LeakyRelu', name, [x], [{ name: 'alpha', type: 'float', value: Math.fround(slope) }]);
  }

  maxPool2(x: string, name: string): string {
    return this.node('MaxPool', name, [x], [
      { name: 'kernel_shape', type: 'ints', value: [2, 2] },
      { name: 'strides', type: 'ints', value: [2, 2] },
    ]);
  }

  /**
   * Bilinear ×2 with align_corners = false. PyTorch exports this as 'pytorch_half_pixel', which differs
   * from 'half_pixel' only for an output of length 1 (never the case for a ×2 upsample of a map of at
   * least 1 pixel), so the function is the same; ONNX Runtime's CPU EP runs only 'half_pixel' through
   * its fast blocked upsample kernel (FP32 latency 0.64–0.73× here: docs/notes/int8-on-avx2.md).
   */
  upsample2(x: string, name: string): string {
    const scales = this.constant('upsample2.scales', float32Tensor([4], Float32Array.from([1, 1, 2, 2])));
    return this.node('Resize', name, [x, '', scales], [
      { name: 'coordinate_transformation_mode', type: 'string', value: 'half_pixel' },
      { name: 'mode', type: 'string', value: 'linear' },
    ]);
  }

  globalAvgPool(x: string, name: string): string {
    return this.node('GlobalAveragePool', name, [x]);
  }

  add(a: string, b: string, name: string): string {
    return this.node('Add', name, [a, b]);
  }

  mul(a: string, b: string, name: string): string {
    return this.node('Mul', name, [a, b]);
  }

  finish(name: string, inputs: ValueInfo[], output: { value: string; info: ValueInfo }): Graph {
    // The last node's generated output name becomes the public output name.
    const nodes = this.nodes.map((n) =>
      n.outputs[0] === output.value ? { ...n, outputs: [output.info.name] } : n,
    );
    return { name, inputs, outputs: [output.info], nodes, initializers: new Map(this.initializers) };
  }

  parameters(): readonly ParamSpec[] {
    return this.params;
  }
}
