/** Turns the architecture into the two ONNX models the toolchain ships, with their metadata. */
import { batchDim, buildTrainingGraph, INPUT_NAME, OUTPUT_NAME, type BuildOptions } from './architecture.js';
import type { WeightProvider } from './graph-builder.js';
import type { Graph, Model } from './ir.js';
import { fuse } from './fusion.js';
import { PREPROCESSING } from './preprocessing.js';

export const OPSET = 17;
/** IR version 8 is what opset 17 shipped with; every ONNX Runtime since 1.12 reads it. */
export const IR_VERSION = 8;
export const PRODUCER = { name: 'lvunet-edge', version: '0.1.0' };

export type Mode = 'training' | 'deployment';

export interface ModelSource {
  /** sha256 of the weights file, or 'seed:<n>' for seeded random weights. */
  readonly weights: string;
  readonly lambda: number;
}

export function metadataFor(mode: Mode, o: BuildOptions, source: ModelSource): Map<string, string> {
  return new Map([
    ['architecture', 'LV-UNet (Jiang et al., BIBM 2024); encoder MobileNetV3-Large features[0..9]'],
    ['mode', mode],
    ['input', JSON.stringify({ name: INPUT_NAME, shape: [batchDim(o), 3, o.height, o.width], layout: 'NCHW', dtype: 'float32' })],
    ['output', JSON.stringify({ name: OUTPUT_NAME, shape: [batchDim(o), 1, o.height, o.width], meaning: 'logit of foreground; sigmoid > 0.5 is the mask' })],
    ['normalization', JSON.stringify(PREPROCESSING)],
    ['lambda', String(source.lambda)],
    ['weights', source.weights],
  ]);
}

export function asModel(graph: Graph, metadata: Map<string, string>): Model {
  return { graph, opset: OPSET, irVersion: IR_VERSION, producer: PRODUCER, metadata };
}

export interface BuiltModels {
  readonly training: Model;
  readonly deployment: Model;
}

/** Builds training mode, then fuses it; fusion throws unless λ = 1. */
export function buildModels(o: BuildOptions, weights: WeightProvider, source: ModelSource): BuiltModels {
  const { graph } = buildTrainingGraph(o, weights);
  const deployed = fuse(graph, o.lambda);
  return {
    training: asModel(graph, metadataFor('training', o, source)),
    deployment: asModel(deployed, metadataFor('deployment', o, source)),
  };
}
