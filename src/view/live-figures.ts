/**
 * The figures the live view shows and /metrics exports, kept by the supervisor from what it already
 * receives: the worker's ready report and stats messages, every result (per-stage latency), the
 * results it publishes, worker restarts, the fleet link's state and queue, and events. One object,
 * so the page and the Prometheus exposition cannot disagree.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

import type { LinkStats } from '../fleet/publisher.js';
import { LatencyRing } from '../runtime/pipeline/stats.js';
import { STAGES, type StageName } from '../runtime/pipeline/pipeline.js';
import type { ResultV1 } from '../runtime/sinks/index.js';
import type { StartupReport, WorkerEvent, WorkerStatsMessage } from '../supervisor/ipc.js';

/** Results the latency percentiles describe: the last few hundred, seconds to minutes of video. */
const LATENCY_WINDOW = 500;
/** Rates are counted over this much recent time. */
const RATE_WINDOW_MS = 5000;
/** Events the page lists. */
const EVENT_HISTORY = 20;

export interface Lag {
  p50: number;
  p99: number;
  max: number;
}

/** Counts over time, as a rate over the last RATE_WINDOW_MS. */
export class RateMeter {
  private readonly marks: { t: number; n: number }[] = [];
  total = 0;

  constructor(private readonly now: () => number = Date.now) {}

  add(n = 1): void {
    this.total += n;
    this.marks.push({ t: this.now(), n: this.total });
    this.trim();
  }

  /** Per second, over the window; 0 with fewer than two marks in it. */
  rate(): number {
    this.trim();
    const m = this.marks;
    if (m.length < 2) return 0;
    const dt = m[m.length - 1].t - m[0].t;
    return dt > 0 ? Math.round(((m[m.length - 1].n - m[0].n) * 10000) / dt) / 10 : 0;
  }

  private trim(): void {
    const now = this.now();
    while (this.marks.length > 2 && now - this.marks[0].t > RATE_WINDOW_MS) this.marks.shift();
    if (this.marks.length > 0 && now - this.marks[this.marks.length - 1].t > RATE_WINDOW_MS) this.marks.length = 0;
  }
}

export interface ViewState {
  model: { name: string | null; path: string; version: string | null; sha256: string; precision: string } | null;
  provider: string | null;
  worker: { state: string; pid: number | null; ready: boolean; restarts: number };
  fps: { capture: number; inference: number; published: number };
  latencyMs: Record<StageName, { p50: number; p99: number }>;
  drops: { total: number; byReason: Record<string, number> };
  loopLagMs: { supervisor: Lag; worker: Lag };
  mqtt: { state: string; queueDepth: number; acked: number; refused: number; dropped: number } | null;
  threshold: number | null;
  results: number;
  published: number;
  previews: number;
  viewers: number;
  events: { time: string; type: string; severity: string; message: string }[];
}

export interface LiveSources {
  readonly worker: () => { state: string; pid: number | undefined; restarts: number };
  readonly version: () => string | undefined;
  /**
   * The serving model's startup report, read on every state() (serving.report): a reload-model
   * replaces its model, providers and plan without a new ready, so a copy kept here would go stale.
   */
  readonly report: () => StartupReport | undefined;
  readonly link: () => LinkStats | undefined;
  readonly viewers: () => number;
}

export class LiveFigures {
  private ready = false;
  private readonly rings = Object.fromEntries(STAGES.map((s) => [s, new LatencyRing(LATENCY_WINDOW)])) as Record<StageName, LatencyRing>;
  readonly resultRate: RateMeter;
  readonly publishRate: RateMeter;
  private readonly captureRate: RateMeter;
  private lastCaptured = 0;
  /** Drops of workers that have exited, so totals never go down on a restart. */
  private dropsBefore: Record<string, number> = {};
  private drops: Record<string, number> = {};
  private workerLag: Lag = { p50: 0, p99: 0, max: 0 };
  private threshold: number | null = null;
  private previews = 0;
  private readonly events: ViewState['events'] = [];
  private readonly loop: IntervalHistogram;
  private loopLast: Lag = { p50: 0, p99: 0, max: 0 };
  private readonly loopTimer: NodeJS.Timeout;
  /** Observers of each result (the Prometheus summaries). */
  readonly resultObservers: ((result: ResultV1) => void)[] = [];

  constructor(
    private readonly sources: LiveSources,
    now: () => number = Date.now,
  ) {
    this.resultRate = new RateMeter(now);
    this.publishRate = new RateMeter(now);
    this.captureRate = new RateMeter(now);
    // The supervisor's own event-loop delay, over 5 s windows: what the view and the fleet link cost it.
    this.loop = monitorEventLoopDelay({ resolution: 1 });
    this.loop.enable();
    this.loopTimer = setInterval(() => {
      this.loopLast = lagOf(this.loop);
      this.loop.reset();
    }, 5000);
    this.loopTimer.unref();
  }

  close(): void {
    clearInterval(this.loopTimer);
    this.loop.disable();
  }

  /** The worker reported ready (its report is read from sources.report). */
  onReady(): void {
    this.ready = true;
    for (const [k, v] of Object.entries(this.drops)) this.dropsBefore[k] = (this.dropsBefore[k] ?? 0) + v;
    this.drops = {};
    this.lastCaptured = 0;
  }

  onWorkerExit(): void {
    this.ready = false;
  }

  /** A stats message (validated by the IPC schema); fields it lacks keep their last value. */
  onStats(s: WorkerStatsMessage): void {
    if (s.captured !== undefined) {
      this.captureRate.add(Math.max(0, s.captured - this.lastCaptured));
      this.lastCaptured = s.captured;
    }
    if (s.dropsByReason) this.drops = { ...s.dropsByReason };
    if (s.loopLagMs) this.workerLag = { ...s.loopLagMs };
    if (s.threshold !== undefined) this.threshold = s.threshold;
    if (s.previews !== undefined) this.previews = s.previews;
  }

  onResult(result: ResultV1): void {
    this.resultRate.add();
    const l = result.latencyMs as Partial<Record<StageName, number>>;
    for (const stage of STAGES) {
      const v = l[stage];
      if (typeof v === 'number') this.rings[stage].add(v);
    }
    for (const observe of this.resultObservers) observe(result);
  }

  onPublished(): void {
    this.publishRate.add();
  }

  onThreshold(value: number): void {
    this.threshold = value;
  }

  onEvent(e: WorkerEvent): void {
    this.events.unshift({ time: new Date().toISOString(), type: e.type, severity: e.severity, message: e.message });
    if (this.events.length > EVENT_HISTORY) this.events.length = EVENT_HISTORY;
  }

  dropsByReason(): Record<string, number> {
    const out: Record<string, number> = { ...this.dropsBefore };
    for (const [k, v] of Object.entries(this.drops)) out[k] = (out[k] ?? 0) + v;
    return out;
  }

  get isReady(): boolean {
    return this.ready && this.sources.worker().state === 'running';
  }

  state(): ViewState {
    const r = this.sources.report();
    const w = this.sources.worker();
    const link = this.sources.link();
    const byReason = this.dropsByReason();
    const latencyMs = Object.fromEntries(
      STAGES.map((s) => {
        const p = this.rings[s].percentiles();
        return [s, { p50: p.p50, p99: p.p99 }];
      }),
    ) as ViewState['latencyMs'];
    return {
      model: r
        ? { name: r.model.name ?? null, path: r.model.path, version: this.sources.version() ?? null, sha256: r.model.sha256, precision: r.model.precision }
        : null,
      provider: r?.providers.active[0] ?? null,
      worker: { state: w.state, pid: w.pid ?? null, ready: this.isReady, restarts: w.restarts },
      fps: { capture: this.captureRate.rate(), inference: this.resultRate.rate(), published: this.publishRate.rate() },
      latencyMs,
      drops: { total: Object.values(byReason).reduce((a, b) => a + b, 0), byReason },
      loopLagMs: { supervisor: { ...this.loopLast }, worker: { ...this.workerLag } },
      mqtt: link
        ? { state: link.state, queueDepth: link.queue.pending, acked: link.acked, refused: link.refused, dropped: link.queue.dropped }
        : null,
      threshold: this.threshold,
      results: this.resultRate.total,
      published: this.publishRate.total,
      previews: this.previews,
      viewers: this.sources.viewers(),
      events: [...this.events],
    };
  }
}

function lagOf(h: IntervalHistogram): Lag {
  // Before any sample the histogram reports NaN / a huge min: say 0, not nonsense.
  const ms = (ns: number): number => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
}
