/**
 * Static INT8 quantisation in QDQ form: QuantizeLinear/DequantizeLinear pairs around the float ops,
 * which ONNX Runtime's CPU EP (graph optimisation 'basic' or above) fuses into integer kernels:
 *   DQ(x), DQ(w), DQ(b:int32) → Conv → Q            ⇒ QLinearConv
 *   DQ(a), DQ(b) → Add|Mul → Q                      ⇒ QLinearAdd | QLinearMul (com.microsoft)
 *   DQ → GlobalAveragePool → Q                      ⇒ QLinearGlobalAveragePool (com.microsoft)
 *   DQ → MaxPool|Resize(nearest) → Q with equal scale and zp ⇒ MaxPool|Resize on the 8-bit tensor
 * Everything else (HardSwish, HardSigmoid, a Relu that cannot be absorbed) runs in float between a
 * DQ and a Q. A bilinear (or cubic) Resize is the exception: ORT 1.30's CPU EP keeps DQ → Resize → Q
 * as three nodes for any mode but nearest (checked on a one-node graph), so quantising it only adds
 * a Q and a DQ pass over its upsampled output; it stays float by default and reads its input's DQ
 * (docs/notes/int8-on-avx2.md has the measurements). Hence:
 * - weights: int8 symmetric in [−64, 64] (reduceRange, the default) or [−127, 127], per output
 *   channel (axis 0, the default) or per tensor. 7-bit is the default because a QDQ model is a
 *   file that must compute the same function on every CPU: x64 without VNNI multiplies u8×s8 with
 *   VPMADDUBSW, whose int16 pair sums saturate with full-range weights (on an LV-UNet checkpoint,
 *   per-channel 8-bit weights had ~4.5x the mean logit error of 7-bit ones on this AVX2 machine and
 *   mask Dice vs FP32 0.94 instead of 0.98), and it costs no time there or on an AVX-512 VNNI machine;
 * - bias: int32 with scale s_x·s_w and zero point 0, as ORT's own quantiser writes it (or float);
 * - activations: asymmetric uint8 (default; x64 MLAS's fast path is u8 activations × s8 weights,
 *   with VNNI's VPDPBUSD) or int8, from calibrated ranges always widened to include 0;
 * - MaxPool and Resize outputs reuse their input's scale and zero point (a pooled or bilinear
 *   value never leaves its input's range, and ORT only drops the QDQ when the two are equal);
 * - a Relu after a quantised Conv or Add is absorbed: the producer's output is quantised with
 *   the Relu's range, whose minimum 0 maps to the lowest code, so the clamp happens in the Q;
 *   MaxPool→Relu is first rewritten to Relu→MaxPool (they commute) so that rule applies there too;
 * - the graph's outputs stay float, and a Conv writing one keeps float weights (its output has no
 *   Q, so ORT would not run it as QLinearConv anyway, and the logits keep full precision).
 */
import type { DataType, Graph, Model, Node, Tensor } from '../ir.js';
import { calibrate, type CalibrationMethod, type Range } from './calibrate.js';
import { PrecisionError } from './fp16.js';

export type ActivationType = 'uint8' | 'int8';

export interface QuantizeOptions {
  readonly method?: CalibrationMethod;
  /** One weight scale per output channel (default true) instead of one per tensor. */
  readonly perChannel?: boolean;
  /** Node names (or name prefixes ending at a '.') that stay float. */
  readonly keepFloat?: readonly string[];
  readonly activationType?: ActivationType;
  /**
   * 7-bit weights ([−64, 64], as ORT's reduce_range; default true): x64 CPUs without VNNI multiply
   * u8×s8 with VPMADDUBSW, whose int16 pair sums saturate when codes are large; 7-bit weights cannot.
   */
  readonly reduceRange?: boolean;
  /**
   * Quantise Resize nodes whose mode is not 'nearest' (default false). ORT's CPU EP runs such a
   * Resize in float between its DQ and Q anyway, so the QDQ pair only adds two passes.
   */
  readonly quantizeLinearResize?: boolean;
  /** Quantise Conv biases to int32 (default true); false keeps them float. */
  readonly quantizeBias?: boolean;
  readonly percentile?: number;
  readonly threads?: number;
  readonly log?: (line: string) => void;
}

export interface QuantParams {
  readonly scale: number;
  readonly zeroPoint: number;
}

export interface QuantizeReport {
  readonly quantizedNodes: readonly string[];
  readonly floatNodes: readonly string[];
  readonly absorbedRelus: readonly string[];
  readonly quantizedTensors: number;
  /** Bias values clamped to the int32 range (0 unless a bias is beyond any representable scale). */
  readonly clampedBiases: number;
  /** Weight scales made wider so that their channel's bias fits BIAS_CODE_LIMIT (see widenForBias). */
  readonly widenedWeightScales: number;
}

export interface QuantizeResult {
  readonly model: Model;
  readonly ranges: ReadonlyMap<string, Range>;
  readonly report: QuantizeReport;
}

const QUANTIZABLE = new Set(['Conv', 'Add', 'Mul', 'MaxPool', 'Resize', 'GlobalAveragePool']);
const SHARES_INPUT_PARAMS = new Set(['MaxPool', 'Resize']);
const ABSORBS_RELU = new Set(['Conv', 'Add']);

/** Activation inputs of a quantisable op (weights, bias, roi, scales excluded). */
function activationInputs(n: Node): number[] {
  return n.op === 'Add' || n.op === 'Mul' ? [0, 1] : [0];
}

export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function qRange(type: ActivationType): [number, number] {
  return type === 'uint8' ? [0, 255] : [-128, 127];
}

/** Asymmetric parameters for a float range, widened to include 0 so that 0 is exact. */
export function activationParams(range: Range, type: ActivationType): QuantParams {
  const [qmin, qmax] = qRange(type);
  const rmin = Math.min(0, range.min);
  const rmax = Math.max(0, range.max);
  // An all-zero tensor: any scale represents it; 0 maps to code 0 with zero point 0.
  if (rmax === rmin) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((rmax - rmin) / (qmax - qmin));
  const zeroPoint = Math.min(qmax, Math.max(qmin, roundHalfEven(qmin - rmin / scale)));
  return { scale, zeroPoint };
}

/** Symmetric int8 scales, one per output channel (axis 0) or one for the whole tensor. */
export function weightScales(w: Float32Array, outChannels: number, perChannel: boolean, qmax = 127): Float32Array {
  const groups = perChannel ? outChannels : 1;
  const per = w.length / groups;
  const scales = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    let m = 0;
    for (let i = g * per; i < (g + 1) * per; i++) m = Math.max(m, Math.abs(w[i]));
    // An all-zero channel quantises to zeros under any scale; 1 keeps the bias scale finite.
    scales[g] = m === 0 ? 1 : m / qmax;
  }
  return scales;
}

/**
 * Largest |int32 bias code| allowed. QLinearConv adds the bias code to an int32 sum of products that
 * reaches about 255 · 127 · K (K = c_in·k·k ≤ 4320 here, so < 2^28); 2^30 leaves that room.
 */
export const BIAS_CODE_LIMIT = 2 ** 30;

/**
 * Widens weight scales so that every bias code b / (s_x · s_w) stays within BIAS_CODE_LIMIT. A trained
 * network has channels whose weights are nearly zero but whose bias is not (a BN folded into a conv
 * whose channel died); their tiny weight scale makes the bias code overflow int32, and clamping it
 * silently changes that channel's output (122 of them in a Kvasir-trained LV-UNet). A wider scale
 * costs those near-zero weights nothing they had. ORT's own quantiser makes the same adjustment.
 * Returns how many scales were widened; `scales` is per channel, or one entry for the whole tensor.
 */
export function widenForBias(scales: Float32Array, bias: Float32Array, inputScale: number): number {
  let widened = 0;
  const needed = (c: number): number => Math.abs(bias[c]) / (inputScale * BIAS_CODE_LIMIT);
  if (scales.length === 1) {
    let s = 0;
    for (let c = 0; c < bias.length; c++) s = Math.max(s, needed(c));
    if (s > scales[0]) {
      scales[0] = Math.fround(s * (1 + 2 ** -20));
      widened++;
    }
    return widened;
  }
  for (let c = 0; c < scales.length; c++) {
    const s = needed(c);
    if (s > scales[c]) {
      // Float32 rounding of the scale must not bring the code back over the limit.
      scales[c] = Math.fround(s * (1 + 2 ** -20));
      widened++;
    }
  }
  return widened;
}

export function quantizeWeights(w: Float32Array, scales: Float32Array, qmax = 127): Int8Array {
  const per = w.length / scales.length;
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-qmax, Math.min(qmax, roundHalfEven(w[i] / scales[Math.floor(i / per)])));
  return q;
}

function tensor(dataType: DataType, dims: readonly number[], data: Tensor['data']): Tensor {
  return { dataType, dims: [...dims], data };
}

function matchesKeep(name: string, keep: readonly string[]): boolean {
  return keep.some((k) => name === k || name.startsWith(`${k}.`));
}

interface Working {
  nodes: Node[];
  ranges: Map<string, Range>;
  absorbed: string[];
}

function producerMap(nodes: readonly Node[]): Map<string, Node> {
  const m = new Map<string, Node>();
  for (const n of nodes) for (const o of n.outputs) m.set(o, n);
  return m;
}

function consumerCount(nodes: readonly Node[], value: string): number {
  return nodes.reduce((c, n) => c + n.inputs.filter((i) => i === value).length, 0);
}

/** MaxPool → Relu becomes Relu → MaxPool (max commutes with the clamp), enabling absorption. */
function swapMaxPoolRelu(w: Working, graph: Graph, keep: readonly string[]): void {
  const outputs = new Set(graph.outputs.map((o) => o.name));
  for (let i = 0; i < w.nodes.length; i++) {
    const relu = w.nodes[i];
    if (relu.op !== 'Relu' || matchesKeep(relu.name, keep)) continue;
    const pool = producerMap(w.nodes).get(relu.inputs[0]);
    if (!pool || pool.op !== 'MaxPool' || matchesKeep(pool.name, keep)) continue;
    const x = pool.inputs[0];
    const pooled = pool.outputs[0];
    if (consumerCount(w.nodes, pooled) !== 1 || outputs.has(pooled) || consumerCount(w.nodes, x) !== 1) continue;
    const rx = w.ranges.get(x);
    const ry = w.ranges.get(relu.outputs[0]);
    if (!rx || !ry) continue;
    const clamped = `${relu.name}.pre_pool`;
    w.ranges.set(clamped, { min: Math.max(0, rx.min), max: Math.max(0, rx.max) });
    const p = w.nodes.indexOf(pool);
    w.nodes[p] = { ...relu, inputs: [x], outputs: [clamped] };
    w.nodes[i] = { ...pool, inputs: [clamped, ...pool.inputs.slice(1)], outputs: relu.outputs };
  }
}

/** A Resize that ORT's CPU EP would run in float between its DQ and Q (any mode but nearest). */
export function isFloatOnlyResize(n: Node): boolean {
  if (n.op !== 'Resize') return false;
  const mode = n.attributes.find((a) => a.name === 'mode')?.value ?? 'nearest';
  return mode !== 'nearest';
}

function isQuantized(n: Node, graph: Graph, keep: readonly string[], outputs: ReadonlySet<string>, linearResize = false): boolean {
  if (!QUANTIZABLE.has(n.op) || matchesKeep(n.name, keep)) return false;
  if (!linearResize && isFloatOnlyResize(n)) return false;
  if (n.op === 'Conv') {
    const w = graph.initializers.get(n.inputs[1]);
    if (!w || w.dataType !== 'float32' || outputs.has(n.outputs[0])) return false;
    const b = n.inputs[2] ? graph.initializers.get(n.inputs[2]) : undefined;
    if (n.inputs[2] && (!b || b.dataType !== 'float32')) return false;
  }
  // A constant operand would need its own quantised initializer; LV-UNet has none, so stay float.
  return activationInputs(n).every((i) => n.inputs[i] !== undefined && !graph.initializers.has(n.inputs[i]));
}

/** Absorbs each Relu whose only input is the sole output of a quantised Conv or Add. */
function absorbRelus(w: Working, graph: Graph, keep: readonly string[], outputs: ReadonlySet<string>, linearResize: boolean): void {
  for (const relu of [...w.nodes]) {
    if (relu.op !== 'Relu' || matchesKeep(relu.name, keep)) continue;
    const x = relu.inputs[0];
    const producer = producerMap(w.nodes).get(x);
    if (!producer || !ABSORBS_RELU.has(producer.op) || !isQuantized(producer, graph, keep, outputs, linearResize)) continue;
    if (consumerCount(w.nodes, x) !== 1 || outputs.has(x) || outputs.has(relu.outputs[0])) continue;
    const ry = w.ranges.get(relu.outputs[0]);
    if (!ry) continue;
    // The Relu's range starts at 0 by construction; force it in case calibration clipped oddly.
    w.ranges.set(relu.outputs[0], { min: 0, max: Math.max(0, ry.max) });
    w.nodes.splice(w.nodes.indexOf(relu), 1);
    w.nodes[w.nodes.indexOf(producer)] = { ...producer, outputs: [relu.outputs[0], ...producer.outputs.slice(1)] };
    w.absorbed.push(relu.name);
  }
}

/** QDQ model from precomputed activation ranges (keyed by tensor name of `model`). */
export function quantizeWithRanges(model: Model, ranges: ReadonlyMap<string, Range>, options: QuantizeOptions = {}): QuantizeResult {
  const graph = model.graph;
  const keep = options.keepFloat ?? [];
  const unknown = keep.filter((k) => !graph.nodes.some((n) => matchesKeep(n.name, [k])));
  if (unknown.length > 0) throw new PrecisionError(`--keep-float: no node named (or prefixed) ${unknown.map((k) => `'${k}'`).join(', ')} in graph '${graph.name}'`);
  const perChannel = options.perChannel ?? true;
  const reduceRange = options.reduceRange ?? true;
  const linearResize = options.quantizeLinearResize ?? false;
  const type = options.activationType ?? 'uint8';
  const zpType: DataType = type;
  const quantizeBias = options.quantizeBias ?? true;
  const wMax = reduceRange ? 64 : 127;
  const outputs = new Set(graph.outputs.map((o) => o.name));

  const w: Working = { nodes: [...graph.nodes], ranges: new Map(ranges), absorbed: [] };
  swapMaxPoolRelu(w, graph, keep);
  absorbRelus(w, graph, keep, outputs, linearResize);

  const quantized = new Set(w.nodes.filter((n) => isQuantized(n, graph, keep, outputs, linearResize)));
  const producers = producerMap(w.nodes);

  // Tensors that get a Q/DQ pair: activation inputs and outputs of quantised nodes, never a graph output.
  const qTensors = new Set<string>();
  for (const n of quantized) {
    for (const i of activationInputs(n)) qTensors.add(n.inputs[i]);
    if (!outputs.has(n.outputs[0])) qTensors.add(n.outputs[0]);
  }
  for (const o of outputs) qTensors.delete(o);

  const params = new Map<string, QuantParams>();
  const paramsOf = (t: string): QuantParams => {
    const known = params.get(t);
    if (known) return known;
    const p = producers.get(t);
    let result: QuantParams;
    if (p && quantized.has(p) && SHARES_INPUT_PARAMS.has(p.op) && qTensors.has(p.inputs[0])) {
      result = paramsOf(p.inputs[0]);
    } else {
      const r = w.ranges.get(t);
      if (!r) throw new PrecisionError(`no calibrated range for tensor '${t}'${p ? ` (output of ${p.op} '${p.name}')` : ''}`);
      result = activationParams(r, type);
    }
    params.set(t, result);
    return result;
  };

  const initializers = new Map(graph.initializers);
  const scaleName = (t: string): string => `${t}.scale`;
  const zpName = (t: string): string => `${t}.zero_point`;
  const qdq = (t: string): Node[] => {
    const p = paramsOf(t);
    initializers.set(scaleName(t), tensor('float32', [], Float32Array.of(p.scale)));
    initializers.set(zpName(t), tensor(zpType, [], type === 'uint8' ? Uint8Array.of(p.zeroPoint) : Int8Array.of(p.zeroPoint)));
    return [
      { op: 'QuantizeLinear', name: `${t}.quantize`, inputs: [t, scaleName(t), zpName(t)], outputs: [`${t}.q`], attributes: [] },
      { op: 'DequantizeLinear', name: `${t}.dequantize`, inputs: [`${t}.q`, scaleName(t), zpName(t)], outputs: [`${t}.dq`], attributes: [] },
    ];
  };

  let clampedBiases = 0;
  let widenedWeightScales = 0;
  const weightNodes = (n: Node): { nodes: Node[]; inputs: string[] } => {
    const [x, wName, bName] = n.inputs;
    const wT = graph.initializers.get(wName)!;
    const wData = wT.data as Float32Array;
    const cout = wT.dims[0];
    const scales = weightScales(wData, cout, perChannel, wMax);
    if (bName && quantizeBias) widenedWeightScales += widenForBias(scales, graph.initializers.get(bName)!.data as Float32Array, paramsOf(x).scale);
    const axis = perChannel ? [{ name: 'axis', type: 'int' as const, value: 0 }] : [];
    const sDims = perChannel ? [cout] : [];
    const wq = `${wName}.int8`;
    if (initializers.has(wq)) throw new PrecisionError(`Conv '${n.name}': weight '${wName}' is shared with another Conv; quantise a graph with one weight per Conv`);
    initializers.set(wq, tensor('int8', wT.dims, quantizeWeights(wData, scales, wMax)));
    initializers.set(`${wName}.scale`, tensor('float32', sDims, scales));
    initializers.set(`${wName}.zero_point`, tensor('int8', sDims, new Int8Array(scales.length)));
    const nodes: Node[] = [
      { op: 'DequantizeLinear', name: `${wName}.dequantize`, inputs: [wq, `${wName}.scale`, `${wName}.zero_point`], outputs: [`${wName}.dq`], attributes: axis },
    ];
    const inputs = [`${x}.dq`, `${wName}.dq`];
    if (bName) {
      if (!quantizeBias) {
        inputs.push(bName);
      } else {
        const b = graph.initializers.get(bName)!.data as Float32Array;
        const sx = paramsOf(x).scale;
        const bScale = new Float32Array(cout);
        const bq = new Int32Array(cout);
        for (let c = 0; c < cout; c++) {
          bScale[c] = Math.fround(sx * scales[perChannel ? c : 0]);
          const v = roundHalfEven(b[c] / bScale[c]);
          const clamped = Math.max(-2147483647, Math.min(2147483647, v));
          if (clamped !== v) clampedBiases++;
          bq[c] = clamped;
        }
        // The bias scale is per channel whenever either factor is; a per-tensor case keeps a vector too.
        initializers.set(`${bName}.int32`, tensor('int32', [cout], bq));
        initializers.set(`${bName}.scale`, tensor('float32', [cout], bScale));
        initializers.set(`${bName}.zero_point`, tensor('int32', [cout], new Int32Array(cout)));
        nodes.push({
          op: 'DequantizeLinear',
          name: `${bName}.dequantize`,
          inputs: [`${bName}.int32`, `${bName}.scale`, `${bName}.zero_point`],
          outputs: [`${bName}.dq`],
          attributes: [{ name: 'axis', type: 'int', value: 0 }],
        });
        inputs.push(`${bName}.dq`);
      }
    }
    return { nodes, inputs };
  };

  const out: Node[] = [];
  for (const i of graph.inputs) if (qTensors.has(i.name)) out.push(...qdq(i.name));
  for (const n of w.nodes) {
    const isQ = quantized.has(n);
    const mapInput = (v: string, index: number): string => {
      if (!qTensors.has(v)) return v;
      const p = producers.get(v);
      // Float consumers of a quantised producer read the DQ too: a second reader of the float
      // output would stop ORT from fusing the producer into its integer kernel.
      const useDq = (isQ && activationInputs(n).includes(index)) || (p !== undefined && quantized.has(p));
      return useDq ? `${v}.dq` : v;
    };
    if (isQ && n.op === 'Conv') {
      const { nodes, inputs } = weightNodes(n);
      out.push(...nodes, { ...n, inputs });
    } else {
      out.push({ ...n, inputs: n.inputs.map(mapInput) });
    }
    for (const o of n.outputs) if (qTensors.has(o)) out.push(...qdq(o));
  }

  const used = new Set(out.flatMap((n) => n.inputs));
  const kept = new Map([...initializers].filter(([name]) => used.has(name)));
  const metadata = new Map(model.metadata);
  metadata.set('precision', 'int8');
  metadata.set(
    'quantization',
    JSON.stringify({ format: 'QDQ', activations: type, weights: reduceRange ? 'int8 symmetric 7-bit' : 'int8 symmetric', perChannel, bias: quantizeBias ? 'int32' : 'float', linearResize: linearResize ? 'int8' : 'float' }),
  );
  const names = (ns: Iterable<Node>): string[] => [...ns].map((n) => n.name);
  return {
    model: { ...model, graph: { ...graph, nodes: out, initializers: kept }, metadata },
    ranges: w.ranges,
    report: {
      quantizedNodes: names(quantized),
      floatNodes: names(w.nodes.filter((n) => !quantized.has(n))),
      absorbedRelus: w.absorbed,
      quantizedTensors: qTensors.size,
      clampedBiases,
      widenedWeightScales,
    },
  };
}

/** Calibrates on `calibrationInputs` (preprocessed NCHW float32, batch 1) and quantises. */
export async function quantizeInt8(model: Model, calibrationInputs: readonly Float32Array[], options: QuantizeOptions = {}): Promise<QuantizeResult> {
  const ranges = await calibrate(model, calibrationInputs, {
    method: options.method ?? 'minmax',
    percentile: options.percentile,
    threads: options.threads,
    log: options.log,
  });
  return quantizeWithRanges(model, ranges, options);
}
