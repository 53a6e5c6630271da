import type { Graph, Node } from './ir.js';
import { intsAttr, tensorNumbers } from './ir.js';

export class ShapeError extends Error {}

type Shape = readonly number[];

function broadcast(a: Shape, b: Shape, node: Node): Shape {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${node.op} '${node.name}': cannot broadcast [${a.join(', ')}] with [${b.join(', ')}]`);
    }
    out.push(Math.max(da, db));
  }
  return out;
}

function pooledSize(size: number, k: number, stride: number, padBegin: number, padEnd: number, dilation = 1): number {
  return Math.floor((size + padBegin + padEnd - dilation * (k - 1) - 1) / stride) + 1;
}

/**
 * Static shape of every value, for the ops LV-UNet and its quantised/fp16 forms use. Symbolic
 * dimensions (the batch) are taken as `batch`. Unknown ops are an error rather than a guess, so
 * MAC counts never silently skip part of a graph.
 */
export function inferShapes(graph: Graph, batch = 1): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  for (const i of graph.inputs) shapes.set(i.name, i.shape.map((d) => (typeof d === 'number' ? d : batch)));
  for (const [name, t] of graph.initializers) shapes.set(name, t.dims);
  const get = (name: string, node: Node): Shape => {
    const s = shapes.get(name);
    if (!s) throw new ShapeError(`${node.op} '${node.name}': input '${name}' has no known shape`);
    return s;
  };
  for (const node of graph.nodes) {
    const x = get(node.inputs[0], node);
    let out: Shape;
    switch (node.op) {
      case 'Conv': {
        const w = get(node.inputs[1], node);
        const strides = intsAttr(node, 'strides', [1, 1]);
        const pads = intsAttr(node, 'pads', [0, 0, 0, 0]);
        const dil = intsAttr(node, 'dilations', [1, 1]);
        out = [x[0], w[0], pooledSize(x[2], w[2], strides[0], pads[0], pads[2], dil[0]), pooledSize(x[3], w[3], strides[1], pads[1], pads[3], dil[1])];
        break;
      }
      case 'MaxPool':
      case 'AveragePool': {
        const k = intsAttr(node, 'kernel_shape', [1, 1]);
        const strides = intsAttr(node, 'strides', [1, 1]);
        const pads = intsAttr(node, 'pads', [0, 0, 0, 0]);
        out = [x[0], x[1], pooledSize(x[2], k[0], strides[0], pads[0], pads[2]), pooledSize(x[3], k[1], strides[1], pads[1], pads[3])];
        break;
      }
      case 'GlobalAveragePool':
        out = [x[0], x[1], 1, 1];
        break;
      case 'Resize': {
        const scalesName = node.inputs[2];
        const sizesName = node.inputs[3];
        const scales = scalesName ? graph.initializers.get(scalesName) : undefined;
        const sizes = sizesName ? graph.initializers.get(sizesName) : undefined;
        if (scales && scales.data.length === x.length) {
          const sc = tensorNumbers(scales);
          out = x.map((d, i) => Math.floor(d * sc[i]));
        } else if (sizes && sizes.data.length === x.length) {
          out = tensorNumbers(sizes);
        } else {
          throw new ShapeError(`Resize '${node.name}': needs constant scales or sizes`);
        }
        break;
      }
      case 'Add':
      case 'Mul':
      case 'Sub':
      case 'Div':
        out = broadcast(x, get(node.inputs[1], node), node);
        break;
      case 'BatchNormalization':
      case 'Relu':
      case 'LeakyRelu':
      case 'HardSwish':
      case 'HardSigmoid':
      case 'Sigmoid':
      case 'Clip':
      case 'Identity':
      case 'Cast':
      case 'QuantizeLinear':
      case 'DequantizeLinear':
        out = x;
        break;
      default:
        throw new ShapeError(`${node.op} '${node.name}': shape inference does not know this op`);
    }
    if (out.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new ShapeError(`${node.op} '${node.name}': output shape [${out.join(', ')}] is invalid (input [${x.join(', ')}])`);
    }
    for (const o of node.outputs) shapes.set(o, out);
  }
  return shapes;
}
