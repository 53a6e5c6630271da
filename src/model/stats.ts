import type { Graph } from './ir.js';
import { elementCount } from './ir.js';
import { inferShapes } from './shapes.js';

/**
 * Learned parameters: weights and biases of Conv/Gemm/MatMul and BN scale/shift, reached directly
 * or through DequantizeLinear/Cast (quantised and fp16 graphs). BN running statistics and shape
 * constants are not parameters.
 */
export function countParameters(graph: Graph): number {
  const producers = new Map<string, { op: string; inputs: readonly string[] }>();
  for (const n of graph.nodes) for (const o of n.outputs) producers.set(o, n);
  const counted = new Set<string>();
  const source = (name: string): string | undefined => {
    let cur = name;
    for (let hops = 0; hops < 4; hops++) {
      if (graph.initializers.has(cur)) return cur;
      const p = producers.get(cur);
      if (!p || (p.op !== 'DequantizeLinear' && p.op !== 'Cast' && p.op !== 'Identity')) return undefined;
      cur = p.inputs[0];
    }
    return undefined;
  };
  let total = 0;
  const take = (name: string | undefined): void => {
    const init = name ? source(name) : undefined;
    if (!init || counted.has(init)) return;
    counted.add(init);
    total += elementCount(graph.initializers.get(init)!.dims);
  };
  for (const n of graph.nodes) {
    if (n.op === 'Conv' || n.op === 'Gemm' || n.op === 'MatMul' || n.op === 'ConvTranspose') {
      take(n.inputs[1]);
      take(n.inputs[2]);
    } else if (n.op === 'BatchNormalization') {
      take(n.inputs[1]);
      take(n.inputs[2]);
    }
  }
  return total;
}

/** Multiply-accumulates of every Conv (depthwise and SE 1x1 included) at the graph's input size. */
export function countMacs(graph: Graph, batch = 1): number {
  const shapes = inferShapes(graph, batch);
  let macs = 0;
  for (const n of graph.nodes) {
    if (n.op !== 'Conv') continue;
    const out = shapes.get(n.outputs[0])!;
    const w = shapes.get(n.inputs[1])!;
    macs += elementCount(out) * w[1] * w[2] * w[3];
  }
  return macs;
}

export function opHistogram(graph: Graph): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of graph.nodes) h[n.op] = (h[n.op] ?? 0) + 1;
  return Object.fromEntries(Object.entries(h).sort(([a], [b]) => a.localeCompare(b)));
}
