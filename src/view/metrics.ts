/**
 * GET /metrics: the live figures (live-figures.ts) in the Prometheus text format, by prom-client.
 * Gauges are read from LiveFigures at scrape time; per-stage latency is a summary observed on every
 * result (its _count and _sum are exact, its quantiles prom-client's sliding-window estimate);
 * counters never go down across worker restarts (LiveFigures keeps the totals of exited workers).
 * Process metrics (resident memory, CPU, heap) come from prom-client's defaults, for the
 * supervisor process.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry, Summary } from 'prom-client';

import { STAGES } from '../runtime/pipeline/pipeline.js';
import type { LiveFigures } from './live-figures.js';

export interface Metrics {
  readonly registry: Registry;
  readonly contentType: string;
  text(): Promise<string>;
}

export function createMetrics(figures: LiveFigures): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const state = (): ReturnType<LiveFigures['state']> => figures.state();

  const stage = new Summary({
    name: 'lvunet_stage_latency_seconds',
    help: 'Per-stage latency of each result (capture to sink; total is capture to result)',
    labelNames: ['stage'],
    percentiles: [0.5, 0.99],
    maxAgeSeconds: 60,
    ageBuckets: 5,
    registers: [registry],
  });
  figures.resultObservers.push((r) => {
    const l = r.latencyMs as Record<string, number | undefined>;
    for (const s of STAGES) {
      const v = l[s];
      if (typeof v === 'number') stage.observe({ stage: s }, v / 1000);
    }
  });

  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  // Totals kept by LiveFigures, set as absolute values at scrape time.
  const total = (name: string, help: string, labelNames: string[], read: () => [Record<string, string>, number][]): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, v] of read()) this.inc(labels, v);
      },
    });
  };

  gauge('lvunet_worker_ready', '1 while the worker is running and has reported ready', () => (figures.isReady ? 1 : 0));
  total('lvunet_worker_restarts_total', 'Worker restarts by the supervisor', [], () => [[{}, state().worker.restarts]]);
  gauge('lvunet_capture_fps', 'Frames captured a second (last 5 s)', () => state().fps.capture);
  gauge('lvunet_inference_fps', 'Results a second (last 5 s)', () => state().fps.inference);
  gauge('lvunet_published_fps', 'Results published to MQTT a second (last 5 s)', () => state().fps.published);
  total('lvunet_results_total', 'Results received from the worker', [], () => [[{}, state().results]]);
  total('lvunet_results_published_total', 'Results handed to the MQTT link', [], () => [[{}, state().published]]);
  total('lvunet_frames_dropped_total', 'Frames dropped, by stage:reason', ['reason'], () => Object.entries(state().drops.byReason).map(([reason, n]) => [{ reason }, n]));
  new Gauge({
    name: 'lvunet_event_loop_lag_seconds',
    help: 'Event-loop delay of the supervisor (last 5 s) and the worker (last 1 s)',
    labelNames: ['process', 'quantile'],
    registers: [registry],
    collect() {
      const l = state().loopLagMs;
      for (const [process, v] of Object.entries(l)) {
        this.set({ process, quantile: '0.5' }, v.p50 / 1000);
        this.set({ process, quantile: '0.99' }, v.p99 / 1000);
      }
    },
  });
  gauge('lvunet_mqtt_connected', '1 while the MQTT link is online; 0 offline or without a broker', () => (state().mqtt?.state === 'online' ? 1 : 0));
  gauge('lvunet_mqtt_queue_depth', 'Messages in the offline queue, not yet acknowledged by the broker', () => state().mqtt?.queueDepth ?? 0);
  gauge('lvunet_threshold', 'The probability threshold results are computed with', () => state().threshold ?? Number.NaN);
  gauge('lvunet_viewers', 'Live-view viewers connected', () => state().viewers);
  new Gauge({
    name: 'lvunet_model_info',
    help: 'The model served (value 1)',
    labelNames: ['name', 'version', 'sha256', 'precision', 'provider'],
    registers: [registry],
    collect() {
      this.reset();
      const s = state();
      if (s.model) this.set({ name: s.model.name ?? '', version: s.model.version ?? '', sha256: s.model.sha256, precision: s.model.precision, provider: s.provider ?? '' }, 1);
    },
  });

  return { registry, contentType: registry.contentType, text: () => registry.metrics() };
}
