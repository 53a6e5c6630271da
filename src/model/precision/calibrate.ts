/**
 * Activation ranges for static quantisation. The float32 model is copied with every tensor that
 * needs a range added as an extra graph output and run in onnxruntime-node (optimisation off, so
 * no fusion hides an intermediate tensor) on preprocessed calibration images.
 *
 * - minmax: the observed min and max.
 * - percentile: a histogram of |x| over [0, max|x|]; the range is clipped to the given percentile
 *   of |x| (symmetric clip, as ORT's percentile calibrator does).
 * - entropy: the same histogram; the clip threshold minimises KL(P‖Q) between the clipped
 *   distribution and its 128-level quantisation (TensorRT's method, 2048 bins).
 * Clipping never widens a range: the result is [max(min, −T), min(max, T)].
 */
import type { Graph, Model, ValueInfo } from '../ir.js';
import { inferShapes } from '../shapes.js';
import { FloatSession, inputDims } from './ort.js';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

export interface Range {
  readonly min: number;
  readonly max: number;
}

export interface CalibrateOptions {
  readonly method?: CalibrationMethod;
  /** percentile method: the share of |x| kept, in percent. */
  readonly percentile?: number;
  readonly bins?: number;
  /** Tensors to calibrate; default every float tensor (graph inputs and node outputs). */
  readonly tensors?: readonly string[];
  readonly threads?: number;
  readonly log?: (line: string) => void;
}

export const DEFAULT_PERCENTILE = 99.999;
export const DEFAULT_BINS = 2048;
/** TensorRT's target: the KL search compares against a 128-level (int8 magnitude) quantisation. */
const KL_TARGET_BINS = 128;

/** Every float32 value a node produces, plus the float32 graph inputs, in graph order. */
export function floatTensors(graph: Graph): string[] {
  const out = graph.inputs.filter((i) => i.dataType === 'float32').map((i) => i.name);
  const floatOps = new Set(['QuantizeLinear', 'Cast']);
  for (const n of graph.nodes) if (!floatOps.has(n.op)) out.push(...n.outputs.filter((o) => o !== ''));
  return out;
}

/** A copy of the graph that also outputs `tensors` (graph inputs among them are skipped: the feed is known). */
export function calibrationGraph(graph: Graph, tensors: readonly string[]): Graph {
  const shapes = inferShapes(graph, 1);
  const batch = graph.inputs[0]?.shape[0] ?? 1;
  const present = new Set(graph.outputs.map((o) => o.name));
  const inputs = new Set(graph.inputs.map((i) => i.name));
  const extra: ValueInfo[] = [];
  for (const t of tensors) {
    if (present.has(t) || inputs.has(t)) continue;
    const shape = shapes.get(t);
    if (!shape) throw new Error(`calibration: tensor '${t}' is not produced by any node of graph '${graph.name}'`);
    extra.push({ name: t, dataType: 'float32', shape: shape.map((d, i) => (i === 0 ? batch : d)) });
    present.add(t);
  }
  return { ...graph, outputs: [...graph.outputs, ...extra] };
}

class Histogram {
  readonly counts: Float64Array;
  constructor(
    readonly absMax: number,
    bins: number,
  ) {
    this.counts = new Float64Array(bins);
  }

  add(data: Float32Array): void {
    const bins = this.counts.length;
    if (this.absMax === 0) {
      this.counts[0] += data.length;
      return;
    }
    const k = bins / this.absMax;
    for (let i = 0; i < data.length; i++) {
      const b = Math.floor(Math.abs(data[i]) * k);
      this.counts[b < bins ? b : bins - 1]++;
    }
  }

  get width(): number {
    return this.absMax / this.counts.length;
  }
}

/** The upper edge of the bin where the cumulative share of |x| reaches `percentile`. */
export function percentileThreshold(counts: Float64Array, width: number, percentile: number): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const target = (total * percentile) / 100;
  let cum = 0;
  for (let i = 0; i < counts.length; i++) {
    cum += counts[i];
    if (cum >= target) return (i + 1) * width;
  }
  return counts.length * width;
}

/** TensorRT's entropy calibration on a histogram of |x|; returns the clip threshold. */
export function entropyThreshold(histogram: Float64Array, width: number, target = KL_TARGET_BINS): number {
  // The first bin holds every exact zero: after a ReLU most of a tensor. Left as it is, that spike
  // dominates P and Q alike and the search settles on the smallest clip it tries (128/2048 of the
  // range): on both shipped models every layer was clipped so hard that INT8 masks agreed with FP32
  // at Dice 0.0005. TensorRT's calibrator (NVIDIA pytorch-quantization, _compute_amax_entropy) sets the
  // zero bin to its neighbour's count before the search; so does this.
  const counts = Float64Array.from(histogram);
  if (counts.length > 1) counts[0] = counts[1];
  const n = counts.length;
  if (n <= target) return n * width;
  let best = n;
  let bestKl = Infinity;
  const p = new Float64Array(n);
  const q = new Float64Array(n);
  let tail = 0;
  for (let i = target; i < n; i++) tail += counts[i];
  for (let i = target; i <= n; i++) {
    // P: the first i bins, with everything beyond the clip folded into the last one.
    for (let k = 0; k < i; k++) p[k] = counts[k];
    p[i - 1] += tail;
    // Q: the first i bins merged into `target` levels and spread back over their non-empty bins.
    const per = i / target;
    for (let j = 0; j < target; j++) {
      const start = Math.floor(j * per);
      const end = j === target - 1 ? i : Math.floor((j + 1) * per);
      let sum = 0;
      let nonzero = 0;
      for (let k = start; k < end; k++) {
        sum += counts[k];
        if (counts[k] !== 0) nonzero++;
      }
      for (let k = start; k < end; k++) q[k] = counts[k] !== 0 ? sum / nonzero : 0;
    }
    let ps = 0;
    let qs = 0;
    for (let k = 0; k < i; k++) {
      ps += p[k];
      qs += q[k];
    }
    // A clip below all but the last bin's values (e.g. a hard-sigmoid output in [0.15, 0.8] clipped
    // at 0.05) folds the whole tensor into one level: P and Q are then the same single spike and their
    // divergence 0, so the smallest such clip won and every value became one. Such clips are excluded.
    let inside = 0;
    for (let k = 0; k < i - 1; k++) inside += counts[k];
    let kl = Infinity;
    if (inside > 0 && ps > 0 && qs > 0) {
      kl = 0;
      for (let k = 0; k < i; k++) {
        if (p[k] === 0) continue;
        // A bin that Q leaves empty (only the folded tail can do that) is smoothed, not infinite.
        const qk = q[k] === 0 ? 1e-10 : q[k] / qs;
        kl += (p[k] / ps) * Math.log(p[k] / ps / qk);
      }
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
    if (i < n) tail -= counts[i];
  }
  return (best + 0.5) * width;
}

/** Observed ranges of `tensors` (default: all float tensors) over the inputs. */
export async function calibrate(model: Model, inputs: readonly Float32Array[], options: CalibrateOptions = {}): Promise<Map<string, Range>> {
  if (inputs.length === 0) throw new Error('calibration needs at least one input');
  const method = options.method ?? 'minmax';
  const log = options.log ?? (() => {});
  const tensors = [...new Set(options.tensors ?? floatTensors(model.graph))];
  const graph = calibrationGraph(model.graph, tensors);
  const dims = inputDims(model, 'calibration');
  const session = await FloatSession.create({ ...model, graph }, dims, { optimization: 'disabled', threads: options.threads }, 'calibration graph');
  const inputName = model.graph.inputs[0].name;
  const fetch = tensors.filter((t) => t !== inputName);
  const outputsOf = async (x: Float32Array): Promise<Map<string, Float32Array>> => {
    const out = await session.run(x, fetch);
    if (tensors.includes(inputName)) out.set(inputName, x);
    return out;
  };
  try {
    const mins = new Map<string, number>(tensors.map((t) => [t, Infinity]));
    const maxs = new Map<string, number>(tensors.map((t) => [t, -Infinity]));
    for (let i = 0; i < inputs.length; i++) {
      for (const [name, data] of await outputsOf(inputs[i])) {
        let lo = mins.get(name)!;
        let hi = maxs.get(name)!;
        for (let k = 0; k < data.length; k++) {
          const v = data[k];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        mins.set(name, lo);
        maxs.set(name, hi);
      }
      if ((i + 1) % 16 === 0 || i + 1 === inputs.length) log(`calibration: min/max pass ${i + 1}/${inputs.length}`);
    }
    const ranges = new Map<string, Range>();
    for (const t of tensors) {
      const min = mins.get(t)!;
      const max = maxs.get(t)!;
      if (!Number.isFinite(min) || !Number.isFinite(max)) throw new Error(`calibration: tensor '${t}' has non-finite values (min ${min}, max ${max})`);
      ranges.set(t, { min, max });
    }
    if (method === 'minmax') return ranges;

    const bins = options.bins ?? DEFAULT_BINS;
    const hists = new Map(tensors.map((t) => [t, new Histogram(Math.max(-ranges.get(t)!.min, ranges.get(t)!.max), bins)]));
    for (let i = 0; i < inputs.length; i++) {
      for (const [name, data] of await outputsOf(inputs[i])) hists.get(name)!.add(data);
      if ((i + 1) % 16 === 0 || i + 1 === inputs.length) log(`calibration: histogram pass ${i + 1}/${inputs.length}`);
    }
    const percentile = options.percentile ?? DEFAULT_PERCENTILE;
    if (!(percentile > 0 && percentile <= 100)) throw new Error(`calibration: percentile ${percentile} is not in (0, 100]`);
    for (const t of tensors) {
      const h = hists.get(t)!;
      const threshold = method === 'percentile' ? percentileThreshold(h.counts, h.width, percentile) : entropyThreshold(h.counts, h.width);
      const r = ranges.get(t)!;
      const clipped = { min: Math.max(r.min, -threshold), max: Math.min(r.max, threshold) };
      // A threshold below every value of a one-signed tensor would invert the range: keep it whole.
      ranges.set(t, clipped.min <= clipped.max ? clipped : r);
    }
    log(`calibration: ${method} thresholds for ${tensors.length} tensors`);
    return ranges;
  } finally {
    await session.release();
  }
}
