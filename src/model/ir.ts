/**
 * A small in-memory graph that mirrors ONNX closely (op names, attributes, NCHW float tensors). The
 * architecture emits it, fusion rewrites it, the ONNX writer serialises it, the ONNX reader produces
 * it back, and inspection counts parameters and MACs on it. Keeping one graph form means every
 * pass is tested once and works the same on a model we built and on one we were handed.
 */

export type DataType = 'float32' | 'float16' | 'int8' | 'uint8' | 'int32' | 'int64';

export interface Tensor {
  readonly dataType: DataType;
  readonly dims: readonly number[];
  /** Raw little-endian bytes for non-float32 types; float32 tensors use `data`. */
  readonly data: Float32Array | Int32Array | BigInt64Array | Int8Array | Uint8Array | Uint16Array;
}

export type AttributeValue = number | string | readonly number[] | readonly string[] | Tensor;

export interface Attribute {
  readonly name: string;
  readonly type: 'float' | 'int' | 'string' | 'floats' | 'ints' | 'strings' | 'tensor';
  readonly value: AttributeValue;
}

export interface Node {
  readonly op: string;
  readonly name: string;
  /** '' marks an omitted optional input, as in ONNX. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: readonly Attribute[];
  readonly domain?: string;
}

export interface ValueInfo {
  readonly name: string;
  readonly dataType: DataType;
  /** A string is a symbolic dimension (e.g. 'batch'). */
  readonly shape: readonly (number | string)[];
}

export interface Graph {
  readonly name: string;
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly nodes: readonly Node[];
  readonly initializers: ReadonlyMap<string, Tensor>;
}

export interface Model {
  readonly graph: Graph;
  readonly opset: number;
  readonly irVersion: number;
  readonly producer: { readonly name: string; readonly version: string };
  readonly metadata: ReadonlyMap<string, string>;
}

export function float32Tensor(dims: readonly number[], data?: Float32Array): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data && data.length !== n) {
    throw new Error(`tensor data has ${data.length} values but dims [${dims.join(', ')}] need ${n}`);
  }
  return { dataType: 'float32', dims: [...dims], data: data ?? new Float32Array(n) };
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function attr(node: Node, name: string): AttributeValue | undefined {
  return node.attributes.find((a) => a.name === name)?.value;
}

export function intAttr(node: Node, name: string, fallback: number): number {
  const v = attr(node, name);
  return typeof v === 'number' ? v : fallback;
}

export function intsAttr(node: Node, name: string, fallback: readonly number[]): readonly number[] {
  const v = attr(node, name);
  return Array.isArray(v) && (v.length === 0 || typeof v[0] === 'number') ? (v as readonly number[]) : fallback;
}

export function floatAttr(node: Node, name: string, fallback: number): number {
  const v = attr(node, name);
  return typeof v === 'number' ? v : fallback;
}

/** Tensor values as plain numbers (int64 included), for small constant tensors. */
export function tensorNumbers(t: Tensor): number[] {
  const out: number[] = [];
  for (let i = 0; i < t.data.length; i++) out.push(Number(t.data[i]));
  return out;
}

/**
 * The graph with every `Constant` node that holds a tensor (`value`) turned into an initializer of
 * the same name. torch.onnx.export writes Resize scales and similar small tensors that way; shape
 * inference and statistics read constants from the initializers.
 */
export function constantsAsInitializers(graph: Graph): Graph {
  const initializers = new Map(graph.initializers);
  const nodes: Node[] = [];
  for (const n of graph.nodes) {
    const value = n.op === 'Constant' && (n.domain ?? '') === '' ? n.attributes.find((a) => a.name === 'value' && a.type === 'tensor') : undefined;
    if (value && n.outputs.length === 1) initializers.set(n.outputs[0], value.value as Tensor);
    else nodes.push(n);
  }
  return nodes.length === graph.nodes.length ? graph : { ...graph, nodes, initializers };
}
