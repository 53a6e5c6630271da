/**
 * The link's own messages: events, the birth/will status and telemetry, stamped with the device
 * and the (injected) clock.
 */
import {
  EVENT_SCHEMA,
  STATUS_SCHEMA,
  TELEMETRY_SCHEMA,
  type EventMessage,
  type EventType,
  type ModelRef,
  type Percentiles,
  type Severity,
  type StatusMessage,
  type TelemetryMessage,
} from '../schemas.js';
import type { StoreStats } from '../queue/store.js';

/** What the pipeline reports for telemetry; the link adds system figures. */
export interface PipelineStats {
  fps: number;
  latency_ms: Percentiles;
  drops: number;
  provider: string;
  model: ModelRef | null;
  /** Worker processes restarted since start (the supervisor's count); left out where there is no worker. */
  worker_restarts?: number;
}

export interface Stamp {
  readonly device: string;
  readonly now: () => number;
}

export function eventMessage(s: Stamp, type: EventType, severity: Severity, message: string, details?: Record<string, unknown>): EventMessage {
  const event: EventMessage = { schema: EVENT_SCHEMA, device: s.device, time: new Date(s.now()).toISOString(), type, severity, message };
  if (details) event.details = details;
  return event;
}

/** The retained birth ('online') and will/goodbye ('offline') message. */
export function statusMessage(s: Stamp, state: 'online' | 'offline', versions: Record<string, string>): StatusMessage {
  return { schema: STATUS_SCHEMA, device: s.device, state, time: new Date(s.now()).toISOString(), versions };
}

/** System figures at the moment of sending (CPU, memory, temperature, uptime). */
export interface SystemSample {
  readonly cpuPct: number;
  readonly rssBytes: number;
  readonly temperatureC: number | null;
  readonly uptimeS: number;
  /** p99 event-loop delay of this process over the last interval, ms; undefined when not measured. */
  readonly eventLoopLagMs?: number;
}

export function telemetryMessage(s: Stamp, p: PipelineStats, sys: SystemSample, queue: StoreStats, refused: number): TelemetryMessage {
  return {
    schema: TELEMETRY_SCHEMA,
    device: s.device,
    time: new Date(s.now()).toISOString(),
    fps: p.fps,
    latency_ms: p.latency_ms,
    drops: p.drops,
    provider: p.provider,
    cpu_pct: Math.round(sys.cpuPct * 10) / 10,
    memory_rss_bytes: sys.rssBytes,
    temperature_c: sys.temperatureC,
    uptime_s: sys.uptimeS,
    model: p.model,
    queue: { pending: queue.pending, dropped: queue.dropped, damaged: queue.damaged, refused },
    ...(sys.eventLoopLagMs === undefined ? {} : { event_loop_lag_ms: Math.round(sys.eventLoopLagMs * 10) / 10 }),
    ...(p.worker_restarts === undefined ? {} : { worker_restarts: p.worker_restarts }),
  };
}
