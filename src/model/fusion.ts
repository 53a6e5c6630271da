/**
 * Re-parameterisation of a training-mode LV-UNet into deployment mode, as graph rewrites that each
 * preserve the function exactly (up to float rounding):
 *   1. a BatchNormalization after a Conv folds into the Conv's weights and bias (encoder BNs,
 *      fusible-block BNs and the series-activation BN alike);
 *   2. a LeakyReLU of slope 1 is the identity and disappears;
 *   3. two back-to-back 1x1 Convs with nothing between them become one 1x1 Conv.
 * Rule 3 only applies after rule 2, which is only valid at λ = 1: hence `fuse` refuses any other λ.
 * Arithmetic is in float64 and rounded to float32 once per tensor.
 */
import type { Graph, Node, Tensor } from './ir.js';
import { floatAttr, float32Tensor, intAttr, intsAttr } from './ir.js';

export class FusionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FusionError';
  }
}

interface Mutable {
  nodes: Node[];
  initializers: Map<string, Tensor>;
  outputs: Graph['outputs'];
}

function mutable(g: Graph): Mutable {
  return { nodes: [...g.nodes], initializers: new Map(g.initializers), outputs: g.outputs };
}

function frozen(g: Graph, m: Mutable): Graph {
  // Drop initializers nothing reads any more (the BN statistics, the unmerged weights).
  const used = new Set(m.nodes.flatMap((n) => n.inputs));
  const initializers = new Map([...m.initializers].filter(([name]) => used.has(name)));
  return { ...g, nodes: m.nodes, initializers, outputs: m.outputs };
}

function consumers(nodes: readonly Node[], value: string): Node[] {
  return nodes.filter((n) => n.inputs.includes(value));
}

function isGraphOutput(m: Mutable, value: string): boolean {
  return m.outputs.some((o) => o.name === value);
}

function floats(m: Mutable, name: string, node: Node): Float32Array {
  const t = m.initializers.get(name);
  if (!t || t.dataType !== 'float32') {
    throw new FusionError(`${node.op} '${node.name}': input '${name}' is not a float32 initializer`);
  }
  return t.data as Float32Array;
}

/** Replaces `node` by a new node producing the same outputs. */
function replaceNode(m: Mutable, node: Node, next: Node): void {
  m.nodes[m.nodes.indexOf(node)] = next;
}

/** Removes a single-input node, pointing its consumers (or the graph output) at its input. */
function bypass(m: Mutable, node: Node): void {
  const from = node.outputs[0];
  const to = node.inputs[0];
  m.nodes.splice(m.nodes.indexOf(node), 1);
  if (isGraphOutput(m, from)) {
    const producer = m.nodes.find((n) => n.outputs.includes(to));
    if (!producer || consumers(m.nodes, to).length > 0) {
      throw new FusionError(`cannot remove ${node.op} '${node.name}': its input '${to}' is also needed elsewhere`);
    }
    replaceNode(m, producer, { ...producer, outputs: producer.outputs.map((o) => (o === to ? from : o)) });
    return;
  }
  m.nodes = m.nodes.map((n) => (n.inputs.includes(from) ? { ...n, inputs: n.inputs.map((i) => (i === from ? to : i)) } : n));
}

function biasNameFor(weightName: string): string {
  return weightName.endsWith('.weight') ? `${weightName.slice(0, -'.weight'.length)}.bias` : `${weightName}.bias`;
}

/**
 * Rule 1: Conv → BatchNormalization becomes one Conv with a bias. `only` limits which BNs fold
 * (the benchmark rebuilds the paper export, which left its encoder BNs unfolded).
 */
export function foldBatchNorms(graph: Graph, only: (bn: Node) => boolean = () => true): Graph {
  const m = mutable(graph);
  for (const bn of graph.nodes.filter((n) => n.op === 'BatchNormalization' && only(n))) {
    const conv = m.nodes.find((n) => n.op === 'Conv' && n.outputs[0] === bn.inputs[0]);
    if (!conv || consumers(m.nodes, conv.outputs[0]).length !== 1 || isGraphOutput(m, conv.outputs[0])) continue;
    const [, gammaN, betaN, meanN, varN] = bn.inputs;
    const gamma = floats(m, gammaN, bn);
    const beta = floats(m, betaN, bn);
    const mean = floats(m, meanN, bn);
    const variance = floats(m, varN, bn);
    const eps = floatAttr(bn, 'epsilon', 1e-5);
    const wName = conv.inputs[1];
    const wT = m.initializers.get(wName)!;
    const w = floats(m, wName, conv);
    const cout = wT.dims[0];
    const per = w.length / cout;
    const bias = conv.inputs[2] ? floats(m, conv.inputs[2], conv) : new Float32Array(cout);
    const newW = new Float32Array(w.length);
    const newB = new Float32Array(cout);
    for (let c = 0; c < cout; c++) {
      // eps is float32 in ONNX; compute the scale the way a float32 BN kernel would see it.
      const scale = gamma[c] / Math.sqrt(variance[c] + Math.fround(eps));
      for (let j = 0; j < per; j++) newW[c * per + j] = w[c * per + j] * scale;
      newB[c] = (bias[c] - mean[c]) * scale + beta[c];
    }
    const bName = conv.inputs[2] || biasNameFor(wName);
    m.initializers.set(wName, float32Tensor(wT.dims, newW));
    m.initializers.set(bName, float32Tensor([cout], newB));
    m.nodes.splice(m.nodes.indexOf(bn), 1);
    replaceNode(m, conv, { ...conv, inputs: [conv.inputs[0], wName, bName], outputs: bn.outputs });
  }
  return frozen(graph, m);
}

/** Rule 2: LeakyRelu with slope exactly 1 is the identity. Any other slope is left alone. */
export function removeIdentityLeakyRelus(graph: Graph): Graph {
  const m = mutable(graph);
  for (const n of graph.nodes) {
    if (n.op === 'LeakyRelu' && floatAttr(n, 'alpha', 0.01) === 1) bypass(m, n);
  }
  return frozen(graph, m);
}

function isPlain1x1(n: Node, m: Mutable): boolean {
  if (n.op !== 'Conv' || intAttr(n, 'group', 1) !== 1) return false;
  const w = m.initializers.get(n.inputs[1]);
  return (
    w !== undefined &&
    w.dims[2] === 1 &&
    w.dims[3] === 1 &&
    intsAttr(n, 'strides', [1, 1]).every((s) => s === 1) &&
    intsAttr(n, 'pads', [0, 0, 0, 0]).every((p) => p === 0)
  );
}

function commonPrefix(a: string, b: string): string {
  const pa = a.split('.');
  const pb = b.split('.');
  const out: string[] = [];
  for (let i = 0; i < Math.min(pa.length, pb.length) && pa[i] === pb[i]; i++) out.push(pa[i]);
  return out.join('.');
}

/** Rule 3: 1x1 Conv A → 1x1 Conv B (A read by B alone) becomes W = W_B·W_A, b = W_B·b_A + b_B. */
export function mergeConsecutive1x1Convs(graph: Graph): Graph {
  const m = mutable(graph);
  for (let changed = true; changed; ) {
    changed = false;
    for (const b of m.nodes) {
      if (!isPlain1x1(b, m)) continue;
      const a = m.nodes.find((n) => n.outputs[0] === b.inputs[0]);
      if (!a || !isPlain1x1(a, m) || consumers(m.nodes, a.outputs[0]).length !== 1 || isGraphOutput(m, a.outputs[0])) continue;
      const wa = floats(m, a.inputs[1], a);
      const wb = floats(m, b.inputs[1], b);
      const [mid, cin] = m.initializers.get(a.inputs[1])!.dims;
      const cout = m.initializers.get(b.inputs[1])!.dims[0];
      const ba = a.inputs[2] ? floats(m, a.inputs[2], a) : new Float32Array(mid);
      const bb = b.inputs[2] ? floats(m, b.inputs[2], b) : new Float32Array(cout);
      const w = new Float32Array(cout * cin);
      const bias = new Float32Array(cout);
      for (let o = 0; o < cout; o++) {
        let acc = bb[o];
        for (let k = 0; k < mid; k++) acc += wb[o * mid + k] * ba[k];
        bias[o] = acc;
        for (let i = 0; i < cin; i++) {
          let s = 0;
          for (let k = 0; k < mid; k++) s += wb[o * mid + k] * wa[k * cin + i];
          w[o * cin + i] = s;
        }
      }
      const prefix = commonPrefix(a.name, b.name);
      const name = prefix ? `${prefix}.conv` : `${a.name}+${b.name}`;
      m.initializers.set(`${name}.weight`, float32Tensor([cout, cin, 1, 1], w));
      m.initializers.set(`${name}.bias`, float32Tensor([cout], bias));
      m.nodes.splice(m.nodes.indexOf(a), 1);
      replaceNode(m, b, { ...b, name, inputs: [a.inputs[0], `${name}.weight`, `${name}.bias`] });
      changed = true;
      break;
    }
  }
  return frozen(graph, m);
}

/** Deployment mode from training mode. Refuses unless the deep-training slope λ is exactly 1. */
export function fuse(graph: Graph, lambda: number): Graph {
  if (lambda !== 1) {
    throw new FusionError(
      `refusing to fuse: λ = ${lambda}, but deployment mode is only equivalent at λ = 1 ` +
        '(the LeakyReLU must be the identity for the two 1x1 convs to merge); finish deep training first',
    );
  }
  const slopes = graph.nodes.filter((n) => n.op === 'LeakyRelu').map((n) => floatAttr(n, 'alpha', 0.01));
  const off = slopes.filter((s) => s !== 1);
  if (off.length > 0) {
    throw new FusionError(`refusing to fuse: ${off.length} LeakyReLU node(s) have slope ${off[0]} ≠ 1 although λ = 1 was given`);
  }
  const fused = mergeConsecutive1x1Convs(removeIdentityLeakyRelus(foldBatchNorms(graph)));
  const left = fused.nodes.filter((n) => n.op === 'BatchNormalization' || n.op === 'LeakyRelu');
  if (left.length > 0) {
    throw new FusionError(`fusion left ${left.map((n) => `${n.op} '${n.name}'`).join(', ')} in the graph`);
  }
  return fused;
}
