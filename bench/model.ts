/** Toolchain figures: parameters, MACs, file sizes and CPU latency of each model form, INT8 included. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { buildTrainingGraph } from '../src/model/architecture.js';
import { asModel, metadataFor } from '../src/model/export.js';
import { fuse } from '../src/model/fusion.js';
import { seededWeights } from '../src/model/init.js';
import { constantsAsInitializers } from '../src/model/ir.js';
import { readOnnx } from '../src/model/onnx/read.js';
import { writeOnnx } from '../src/model/onnx/write.js';
import { loadCalibrationSet } from '../src/model/precision/images.js';
import { quantizeInt8, type QuantizeOptions } from '../src/model/precision/quantize.js';
import { countMacs, countParameters } from '../src/model/stats.js';
import { compareLatency, pairedRatio, type LatencyStats } from './latency.js';

export interface Int8Bench {
  /** The quantiser's default variant, spelled out. */
  readonly variant: string;
  readonly calibration: string;
  /** INT8 / FP32 deployment latency, paired over interleaved rounds of the same run (pairedRatio). */
  readonly ratio: Record<string, number>;
  readonly target: number;
}

export interface ModelBench {
  readonly forms: Record<string, { params: number; macs: number; onnx_bytes: number }>;
  readonly latency: Record<string, Record<string, LatencyStats>>;
  readonly reference: Record<string, number>;
  readonly int8: Int8Bench;
  /** Ours vs the paper code's own export, same weights: paired ratios (pairedRatio), by thread count. */
  readonly paper: { same_function_max_abs_logit: number; ratio: Record<string, number>; dynamic_batch_ratio: Record<string, number>; target: number };
}

export const INT8_FORM = 'deployment int8 (QDQ, default quantiser)';
/**
 * The paper code's own deployment export: tools/torch-reference/export_paper_onnx.py ran
 * torch.onnx.export (1.13, opset 17, batch 1) on the PyTorch reference's deploy module with the torch
 * fixture's weights, and test/model/torch-reference.test.ts checks it computes the PyTorch logits.
 * Every other form here is built from the same weights, so the rows differ only in how the graph is written.
 */
export const PAPER_FORM = 'paper export (torch.onnx.export of the deploy module)';
export const DYNAMIC_FORM = 'deployment, symbolic batch (--dynamic-batch)';
const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'torch-reference');

/** The quantiser's defaults; written out so the bench names what it measured. */
const INT8_DEFAULTS: QuantizeOptions = { method: 'minmax', perChannel: true, reduceRange: true, activationType: 'uint8', quantizeLinearResize: false };
const INT8_VARIANT = 'u8 activations (minmax), s8 7-bit per-channel weights, int32 bias, bilinear Resize float';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function logits(bytes: Uint8Array, x: Float32Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, 256, 256]) });
    return out[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

export async function benchModel(log: (s: string) => void, quick: boolean): Promise<ModelBench> {
  const size = { height: 256, width: 256, lambda: 1 };
  const meta = JSON.parse(readFileSync(join(FIXTURE, 'meta.json'), 'utf8')) as { seed: number; gain: number; randomBatchNorm: boolean };
  const weights = seededWeights({ seed: meta.seed, randomBatchNorm: meta.randomBatchNorm, gain: meta.gain });
  const source = { weights: `seed:${meta.seed} gain:${meta.gain} (torch fixture)`, lambda: 1 };
  const { graph } = buildTrainingGraph(size, weights);
  const deployment = fuse(graph, 1);
  const dynamic = fuse(buildTrainingGraph({ ...size, dynamicBatch: true }, weights).graph, 1);
  const forms: ModelBench['forms'] = {};
  const bytes: { name: string; bytes: Uint8Array }[] = [];
  const graphs = { training: graph, deployment, [DYNAMIC_FORM]: dynamic };
  for (const [name, g] of Object.entries(graphs)) {
    const b = writeOnnx(asModel(g, metadataFor(name === 'training' ? 'training' : 'deployment', { ...size, dynamicBatch: name === DYNAMIC_FORM }, source)));
    forms[name] = { params: countParameters(g), macs: countMacs(g), onnx_bytes: b.length };
    bytes.push({ name, bytes: b });
  }
  const paperBytes = readFileSync(join(FIXTURE, 'paper-deploy.onnx'));
  const paperGraph = constantsAsInitializers(readOnnx(paperBytes, 'paper-deploy.onnx').graph);
  forms[PAPER_FORM] = { params: countParameters(paperGraph), macs: countMacs(paperGraph), onnx_bytes: paperBytes.length };
  bytes.push({ name: PAPER_FORM, bytes: paperBytes });
  const probe = Float32Array.from({ length: 3 * 256 * 256 }, (_, i) => Math.cos(i / 131));
  const sameFunction = maxAbsDiff(await logits(bytes[1].bytes, probe), await logits(paperBytes, probe));
  log(`model: deployment vs paper export, same weights: max |Δ logit| ${sameFunction.toExponential(2)}`);
  if (!(sameFunction <= 1e-4)) throw new Error(`the paper export and our deployment graph disagree (max |Δ logit| ${sameFunction}); rebuild the fixture`);

  // INT8 with the quantiser's defaults, calibrated on real frames when the datasets are beside the checkout.
  const kvasir = join(process.cwd(), '..', 'shared', 'datasets', 'kvasir-seg');
  const count = quick ? 4 : 16;
  let calibration: string;
  let inputs: Float32Array[];
  if (existsSync(kvasir)) {
    inputs = [...(await loadCalibrationSet(kvasir, count, { width: 256, height: 256 })).inputs];
    calibration = `${count} Kvasir-SEG images (minmax)`;
  } else {
    inputs = Array.from({ length: 2 }, (_, k) => Float32Array.from({ length: 3 * 256 * 256 }, (_, i) => 2 * Math.sin(i / (53 + k * 17))));
    calibration = '2 synthetic frames (no ../shared/datasets; latency only)';
  }
  log(`model: quantising the deployment graph to INT8 (${calibration})…`);
  const deploymentModel = asModel(deployment, metadataFor('deployment', size, source));
  const q = await quantizeInt8(deploymentModel, inputs, { ...INT8_DEFAULTS, threads: 2 });
  const int8Bytes = writeOnnx(q.model);
  forms[INT8_FORM] = { params: forms.deployment.params, macs: forms.deployment.macs, onnx_bytes: int8Bytes.length };
  bytes.push({ name: INT8_FORM, bytes: int8Bytes });

  const x = Float32Array.from({ length: 3 * 256 * 256 }, (_, i) => Math.sin(i / 97));
  const latency: ModelBench['latency'] = {};
  const ratio: Record<string, number> = {};
  const vsPaper: Record<string, number> = {};
  const dynamicVsPaper: Record<string, number> = {};
  for (const threads of [1, 2]) {
    log(`model latency, ${threads} thread(s)…`);
    const key = `${threads}_threads`;
    latency[key] = await compareLatency(bytes, { name: 'image', data: x, dims: [1, 3, 256, 256] }, {
      threads,
      // Short rounds, many of them: pairedRatio then compares runs seconds apart, not minutes.
      rounds: quick ? 3 : 40,
      perRound: 5,
      warmup: 10,
    });
    const int8 = latency[key][INT8_FORM].median_ms;
    ratio[key] = pairedRatio(latency[key][INT8_FORM], latency[key].deployment);
    vsPaper[key] = pairedRatio(latency[key].deployment, latency[key][PAPER_FORM]);
    dynamicVsPaper[key] = pairedRatio(latency[key][DYNAMIC_FORM], latency[key][PAPER_FORM]);
    log(`model: deployment / paper export, ${threads} thread(s), paired over rounds: ${vsPaper[key].toFixed(3)}`);
    log(
      `model: INT8 / FP32 deployment, ${threads} thread(s), interleaved: ${ratio[key].toFixed(3)} ` +
        `(${int8.toFixed(2)} vs ${latency[key].deployment.median_ms.toFixed(2)} ms); target ≤ 0.6 at 2 threads`,
    );
  }
  return {
    forms,
    latency,
    // Measured on this kind of machine with the paper code's own exports (shared/BRIEF.md §2).
    reference: { paper_deployment_2_threads_ms: 5.85, paper_deployment_1_thread_ms: 6.27, paper_training_2_threads_ms: 5.69 },
    int8: { variant: INT8_VARIANT, calibration, ratio, target: 0.6 },
    paper: { same_function_max_abs_logit: sameFunction, ratio: vsPaper, dynamic_batch_ratio: dynamicVsPaper, target: 1 },
  };
}
