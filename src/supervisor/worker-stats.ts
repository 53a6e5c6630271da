/**
 * What the worker tells the supervisor about its pace (stats messages, result latencies), turned
 * into the pipeline part of the fleet telemetry.
 */
import type { Percentiles, PipelineStats } from '../fleet/index.js';
import type { ServingState } from './serving.js';

/** Latencies kept for the percentiles: the last few hundred results, minutes at kiosk frame rates. */
const LATENCY_WINDOW = 500;

export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p95: 0, p99: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

export class WorkerStats {
  private fps = 0;
  private drops = 0;
  private readonly latencies: number[] = [];

  constructor(private readonly serving: ServingState) {}

  /** A `stats` message: fields it does not carry keep their last value. */
  onStats(s: Record<string, unknown>): void {
    if (typeof s.fps === 'number') this.fps = s.fps;
    if (typeof s.drops === 'number') this.drops = s.drops;
  }

  onLatency(totalMs: number): void {
    this.latencies.push(totalMs);
    if (this.latencies.length > LATENCY_WINDOW) this.latencies.shift();
  }

  telemetry(): PipelineStats {
    const report = this.serving.report;
    return {
      fps: this.fps,
      latency_ms: percentiles(this.latencies),
      drops: this.drops,
      provider: report?.providers.active[0] ?? 'none',
      model: report ? { sha256: report.model.sha256, precision: report.model.precision } : null,
    };
  }
}
