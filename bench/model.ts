/** Toolchain figures: parameters, MACs, file sizes and CPU latency of each model form. */
import { buildTrainingGraph } from '../src/model/architecture.js';
import { asModel, metadataFor } from '../src/model/export.js';
import { foldBatchNorms, fuse, mergeConsecutive1x1Convs, removeIdentityLeakyRelus } from '../src/model/fusion.js';
import { seededWeights } from '../src/model/init.js';
import { writeOnnx } from '../src/model/onnx/write.js';
import { countMacs, countParameters } from '../src/model/stats.js';
import { compareLatency, type LatencyStats } from './latency.js';

export interface ModelBench {
  readonly forms: Record<string, { params: number; macs: number; onnx_bytes: number }>;
  readonly latency: Record<string, Record<string, LatencyStats>>;
  readonly reference: Record<string, number>;
}

export async function benchModel(log: (s: string) => void, quick: boolean): Promise<ModelBench> {
  const size = { height: 256, width: 256, lambda: 1 };
  const { graph } = buildTrainingGraph(size, seededWeights({ seed: 1, randomBatchNorm: true }));
  const source = { weights: 'seed:1', lambda: 1 };
  // The paper code's export folds only the fusible blocks; its encoder BNs stay separate nodes.
  const paperStyle = mergeConsecutive1x1Convs(
    removeIdentityLeakyRelus(foldBatchNorms(graph, (bn) => !bn.name.startsWith('firstconv') && !bn.name.startsWith('encoder'))),
  );
  const graphs = { training: graph, 'deployment (paper-style, encoder BN unfolded)': paperStyle, deployment: fuse(graph, 1) };
  const forms: ModelBench['forms'] = {};
  const bytes: { name: string; bytes: Uint8Array }[] = [];
  for (const [name, g] of Object.entries(graphs)) {
    const b = writeOnnx(asModel(g, metadataFor(name === 'training' ? 'training' : 'deployment', size, source)));
    forms[name] = { params: countParameters(g), macs: countMacs(g), onnx_bytes: b.length };
    bytes.push({ name, bytes: b });
  }
  const x = Float32Array.from({ length: 3 * 256 * 256 }, (_, i) => Math.sin(i / 97));
  const latency: ModelBench['latency'] = {};
  for (const threads of [1, 2]) {
    log(`model latency, ${threads} thread(s)…`);
    latency[`${threads}_threads`] = await compareLatency(bytes, { name: 'image', data: x, dims: [1, 3, 256, 256] }, {
      threads,
      rounds: quick ? 3 : 10,
      perRound: quick ? 5 : 20,
      warmup: 10,
    });
  }
  return {
    forms,
    latency,
    // Measured on this kind of machine with the paper code's own exports (shared/BRIEF.md §2).
    reference: { paper_deployment_2_threads_ms: 5.85, paper_deployment_1_thread_ms: 6.27, paper_training_2_threads_ms: 5.69 },
  };
}
