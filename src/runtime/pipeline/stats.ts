/**
 * Per-stage latency and drop accounting. Latencies go into fixed-size rings, so a pipeline running for
 * days keeps constant memory; percentiles describe the most recent RING_SIZE frames.
 */
export const RING_SIZE = 16384;

export interface Percentiles {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export class LatencyRing {
  private readonly values: Float64Array;
  private n = 0;

  constructor(capacity = RING_SIZE) {
    this.values = new Float64Array(capacity);
  }

  add(ms: number): void {
    this.values[this.n % this.values.length] = ms;
    this.n++;
  }

  /** Nearest-rank percentiles over the samples held, in ms rounded to 3 decimals. */
  percentiles(): Percentiles {
    const held = Math.min(this.n, this.values.length);
    if (held === 0) return { count: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };
    const sorted = this.values.slice(0, held).sort();
    const rank = (p: number): number => round3(sorted[Math.min(held - 1, Math.max(0, Math.ceil((p / 100) * held) - 1))]);
    let sum = 0;
    for (const v of sorted) sum += v;
    return { count: this.n, mean: round3(sum / held), p50: rank(50), p95: rank(95), p99: rank(99), max: round3(sorted[held - 1]) };
  }
}

export function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/**
 * Where a frame was dropped: 'source' (the source reported it: corrupt, truncated, empty...),
 * 'preprocess' (the native preprocessor refused it), 'queue.inference' / 'queue.postprocess' (replaced
 * by a newer frame while waiting, 'latest' mode only), 'postprocess' (postprocessing threw).
 */
export type DropStage = 'source' | 'preprocess' | 'queue.inference' | 'queue.postprocess' | 'postprocess';

export interface DropCounts {
  total: number;
  byStage: Partial<Record<DropStage, number>>;
  /** `<stage>:<reason>`, e.g. source:truncated, preprocess:ERR_FRAME_SIZE, queue.inference:replaced. */
  byReason: Record<string, number>;
}

export class DropCounter {
  private total = 0;
  private readonly byStage: Partial<Record<DropStage, number>> = {};
  private readonly byReason: Record<string, number> = {};

  add(stage: DropStage, reason: string): number {
    this.total++;
    this.byStage[stage] = (this.byStage[stage] ?? 0) + 1;
    const key = `${stage}:${reason}`;
    this.byReason[key] = (this.byReason[key] ?? 0) + 1;
    return this.byReason[key];
  }

  counts(): DropCounts {
    return { total: this.total, byStage: { ...this.byStage }, byReason: { ...this.byReason } };
  }
}
