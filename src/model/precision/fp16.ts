/**
 * FP16 models. Two forms, both keeping the graph's input and output float32 so the runtime's
 * interface (feeds, output buffers, manifest dtype) is identical across precisions:
 *
 * - 'weights' (default): float32 weights are stored as float16 and a Cast back to float32 feeds each
 *   one, so every op computes in float32. ONNX Runtime's CPU EP on x64 has almost no float16 compute
 *   kernels (Conv, Resize, HardSwish, MaxPool, GlobalAveragePool run in float32 only); with graph
 *   optimisation on, constant folding turns each Cast(initializer) into a float32 initializer at
 *   session creation, so the model runs at float32 speed from a file half the size, and its results
 *   differ from float32 only by the rounding of the weights.
 * - 'full': every float tensor is float16, with a Cast after the graph input and before the graph
 *   output. This is the form a GPU/NPU execution provider with float16 kernels wants. The CPU EP
 *   still runs it, because ORT's InsertCastTransformer wraps each node that lacks a float16 kernel
 *   in Casts to and from float32: correct, but slower than 'weights' (see the precision report).
 *
 * Resize's roi/scales inputs are float32 by the ONNX spec in either form and are never converted.
 */
import type { Graph, Model, Node, Tensor, ValueInfo } from '../ir.js';

export type Fp16Mode = 'weights' | 'full';

export class PrecisionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrecisionError';
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * IEEE 754 binary32 → binary16 bits, round to nearest, ties to even: overflow rounds to ±Inf
 * (65520 and above), values below half the smallest subnormal (2^-25) to ±0, NaN stays NaN.
 */
export function f32ToF16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal half: value = m · 2^-24 with m = (1.mant) · 2^(e + 9) → shift the 24-bit significand.
    const sig = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = sig & ((1 << shift) - 1);
    let m = sig >>> shift;
    if (rem > half || (rem === half && (m & 1) === 1)) m++;
    // m may reach 0x400, which is exactly the smallest normal's encoding.
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent, and from 0x7bff to Inf.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return h;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function toFloat16Tensor(t: Tensor): Tensor {
  if (t.dataType !== 'float32') throw new PrecisionError(`cannot convert a ${t.dataType} tensor to float16`);
  const src = t.data as Float32Array;
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
  return { dataType: 'float16', dims: [...t.dims], data: out };
}

export function float16ToFloat32Tensor(t: Tensor): Tensor {
  if (t.dataType !== 'float16') throw new PrecisionError(`expected a float16 tensor, got ${t.dataType}`);
  const src = t.data as Uint16Array;
  return { dataType: 'float32', dims: [...t.dims], data: Float32Array.from(src, f16BitsToF32) };
}

/** ONNX TensorProto.DataType codes used as Cast's `to`. */
const FLOAT = 1;
const FLOAT16 = 10;

/** Inputs that the ONNX spec fixes to float32 whatever the data type (Resize roi and scales). */
function mustStayFloat32(node: Node, index: number): boolean {
  return node.op === 'Resize' && (index === 1 || index === 2);
}

function float32Initializers(graph: Graph): Set<string> {
  const pinned = new Set<string>();
  for (const n of graph.nodes) n.inputs.forEach((v, i) => mustStayFloat32(n, i) && pinned.add(v));
  const names = new Set<string>();
  for (const [name, t] of graph.initializers) if (t.dataType === 'float32' && !pinned.has(name)) names.add(name);
  for (const n of graph.nodes) {
    n.inputs.forEach((v, i) => {
      if (names.has(v) && mustStayFloat32(n, i)) {
        throw new PrecisionError(`${n.op} '${n.name}': initializer '${v}' is read both as data and as a float32-only input`);
      }
    });
  }
  return names;
}

function cast(name: string, input: string, output: string, to: number): Node {
  return { op: 'Cast', name, inputs: [input], outputs: [output], attributes: [{ name: 'to', type: 'int', value: to }] };
}

function weightsOnly(graph: Graph): Graph {
  const convert = float32Initializers(graph);
  const initializers = new Map(graph.initializers);
  const casts: Node[] = [];
  for (const name of convert) {
    const stored = `${name}.fp16`;
    if (initializers.has(stored)) throw new PrecisionError(`initializer '${stored}' already exists; cannot store '${name}' as float16`);
    initializers.delete(name);
    initializers.set(stored, toFloat16Tensor(graph.initializers.get(name)!));
    casts.push(cast(`${name}.cast`, stored, name, FLOAT));
  }
  return { ...graph, nodes: [...casts, ...graph.nodes], initializers };
}

function fullFp16(graph: Graph): Graph {
  const convert = float32Initializers(graph);
  const initializers = new Map(graph.initializers);
  for (const name of convert) initializers.set(name, toFloat16Tensor(graph.initializers.get(name)!));
  const rename = new Map<string, string>();
  const head: Node[] = [];
  for (const i of graph.inputs) {
    if (i.dataType !== 'float32') continue;
    rename.set(i.name, `${i.name}.fp16`);
    head.push(cast(`${i.name}.to_fp16`, i.name, `${i.name}.fp16`, FLOAT16));
  }
  const tail: Node[] = [];
  const outputs: ValueInfo[] = [];
  for (const o of graph.outputs) {
    if (o.dataType !== 'float32') {
      outputs.push(o);
      continue;
    }
    if (rename.has(o.name)) throw new PrecisionError(`graph output '${o.name}' is also a graph input; nothing to convert`);
    rename.set(o.name, `${o.name}.fp16`);
    tail.push(cast(`${o.name}.to_fp32`, `${o.name}.fp16`, o.name, FLOAT));
    outputs.push(o);
  }
  const r = (v: string): string => rename.get(v) ?? v;
  const nodes = graph.nodes.map((n) => {
    if (n.op === 'Cast') throw new PrecisionError(`Cast '${n.name}': a graph that already casts cannot be converted to full float16`);
    return { ...n, inputs: n.inputs.map(r), outputs: n.outputs.map(r) };
  });
  return { ...graph, nodes: [...head, ...nodes, ...tail], initializers, outputs };
}

/** The model with float16 weights (and, in 'full' mode, float16 activations); see the file comment. */
export function toFp16(model: Model, mode: Fp16Mode = 'weights'): Model {
  const already = [...model.graph.initializers.values()].some((t) => t.dataType === 'float16');
  if (already) throw new PrecisionError('the model already holds float16 tensors; convert its float32 original instead');
  const graph = mode === 'full' ? fullFp16(model.graph) : weightsOnly(model.graph);
  const metadata = new Map(model.metadata);
  metadata.set('precision', 'fp16');
  metadata.set('fp16_mode', mode);
  return { ...model, graph, metadata };
}
