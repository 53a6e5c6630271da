/** `model inspect`: what an ONNX file is, from the file alone. */
import { readFileSync } from 'node:fs';
import { readOnnx } from './onnx/read.js';
import { countMacs, countParameters, opHistogram } from './stats.js';
import { sha256 } from '../util/files.js';
import { constantsAsInitializers, type ValueInfo } from './ir.js';

export interface InspectReport {
  readonly file: string;
  readonly sha256: string;
  readonly bytes: number;
  readonly opset: number;
  readonly irVersion: number;
  readonly producer: string;
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly params: number;
  /** Multiply-accumulates of every Conv at the model's declared input size, batch 1. */
  readonly macs: number;
  readonly nodes: number;
  readonly ops: Record<string, number>;
  readonly metadata: Record<string, string>;
}

export function inspectOnnx(path: string): InspectReport {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ONNX file ${path}: ${(err as Error).message}`);
  }
  const model = readOnnx(bytes, path);
  const graph = constantsAsInitializers(model.graph);
  return {
    file: path,
    sha256: sha256(bytes),
    bytes: bytes.length,
    opset: model.opset,
    irVersion: model.irVersion,
    producer: `${model.producer.name} ${model.producer.version}`.trim(),
    inputs: model.graph.inputs,
    outputs: model.graph.outputs,
    params: countParameters(graph),
    macs: countMacs(graph),
    nodes: model.graph.nodes.length,
    ops: opHistogram(model.graph),
    metadata: Object.fromEntries(model.metadata),
  };
}

export function formatInspect(r: InspectReport): string {
  const shape = (v: ValueInfo): string => `${v.name} ${v.dataType}[${v.shape.join(', ')}]`;
  return [
    `${r.file}`,
    `  sha256   ${r.sha256}`,
    `  size     ${(r.bytes / 1e6).toFixed(2)} MB, opset ${r.opset}, IR ${r.irVersion}, producer ${r.producer || '?'}`,
    `  inputs   ${r.inputs.map(shape).join('; ')}`,
    `  outputs  ${r.outputs.map(shape).join('; ')}`,
    `  params   ${r.params.toLocaleString('en-US')}`,
    `  MACs     ${(r.macs / 1e9).toFixed(4)} G`,
    `  ops      ${Object.entries(r.ops).map(([k, v]) => `${k}×${v}`).join(' ')}`,
    ...(r.metadata.mode ? [`  mode     ${r.metadata.mode}, λ ${r.metadata.lambda ?? '?'}`] : []),
  ].join('\n');
}
