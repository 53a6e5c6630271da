/**
 * `fleet status`: one line per device from what the devices publish and the ingest stored: online or
 * offline (retained birth / last will), last seen, model (release version and file name from the
 * last `model-changed` event; sha256 and precision from telemetry), provider, fps, event-loop lag,
 * worker restarts, offline-queue depth, last error (newest `error`/`critical` event), results stored,
 * and the device's part in rollouts.
 */
import type { FleetDb } from './db/fleet-db.js';

export interface DeviceStatus {
  device: string;
  /** null: no birth or will seen yet (the ingest started after the device's last connect). */
  state: 'online' | 'offline' | null;
  /** null: nothing from the device itself yet, only its retained will. */
  lastSeen: string | null;
  model: { name: string | null; version: string | null; sha256: string | null; precision: string | null };
  provider: string | null;
  fps: number | null;
  eventLoopLagMs: number | null;
  workerRestarts: number | null;
  queuePending: number | null;
  lastError: { time: string; message: string } | null;
  results: { rows: number; maxSeq: number | null };
  versions: Record<string, string>;
  groups: string[];
  /** The newest rollout this device is part of: its id, wave and outcome there. */
  rollout: { id: string; wave: number; state: string; detail: string | null } | null;
}

const numberOr = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const stringOr = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export async function fleetStatus(db: FleetDb): Promise<DeviceStatus[]> {
  const [devices, errors, changes, counts, groups, rollouts] = await Promise.all([
    db.devices(),
    db.latestEvents({ severities: ['error', 'critical'] }),
    db.latestEvents({ types: ['model-changed'] }),
    db.resultCounts(),
    db.groups(),
    db.rollouts(),
  ]);
  const rolloutOf = new Map<string, DeviceStatus['rollout']>();
  for (const r of rollouts) {
    for (const d of await db.rolloutDevices(r.id)) rolloutOf.set(d.device, { id: r.id, wave: d.wave, state: d.state, detail: d.detail });
  }
  return devices.map((d) => {
    const t = d.telemetry ?? {};
    const model = (t.model ?? null) as { sha256?: unknown; precision?: unknown } | null;
    const queue = (t.queue ?? null) as { pending?: unknown } | null;
    const change = changes.get(d.device)?.details ?? null;
    const changedModel = (change?.model ?? null) as { path?: unknown } | null;
    const path = stringOr(changedModel?.path);
    const err = errors.get(d.device);
    const c = counts.get(d.device);
    return {
      device: d.device,
      state: d.state,
      lastSeen: d.lastSeen === null ? null : new Date(d.lastSeen).toISOString(),
      model: {
        name: path === null ? null : (path.split('/').pop() ?? path),
        // The signed release version; a bundle signed without one is known by its manifest's sha256.
        version: stringOr((change?.release as { version?: unknown } | null | undefined)?.version) ?? stringOr(change?.version),
        sha256: stringOr(model?.sha256),
        precision: stringOr(model?.precision),
      },
      provider: stringOr(t.provider),
      fps: numberOr(t.fps),
      eventLoopLagMs: numberOr(t.event_loop_lag_ms),
      workerRestarts: numberOr(t.worker_restarts),
      queuePending: numberOr(queue?.pending),
      lastError: err ? { time: err.timeIso, message: err.message } : null,
      results: { rows: c?.rows ?? 0, maxSeq: c?.maxSeq ?? null },
      versions: d.versions,
      groups: [...groups].filter(([, members]) => members.includes(d.device)).map(([name]) => name),
      rollout: rolloutOf.get(d.device) ?? null,
    };
  });
}

const dash = (v: string | number | null): string => (v === null ? '-' : String(v));

/** The human table: one line per device. */
export function statusTable(rows: readonly DeviceStatus[]): string {
  const head = ['device', 'state', 'last seen', 'model', 'sha256', 'prec', 'provider', 'fps', 'lag ms', 'restarts', 'queue', 'results', 'rollout', 'last error'];
  const lines = rows.map((r) => [
    r.device,
    dash(r.state),
    dash(r.lastSeen),
    r.model.version === null ? dash(r.model.name) : `${r.model.version}${r.model.name ? ` (${r.model.name})` : ''}`,
    r.model.sha256 === null ? '-' : r.model.sha256.slice(0, 12),
    dash(r.model.precision),
    dash(r.provider),
    r.fps === null ? '-' : r.fps.toFixed(1),
    r.eventLoopLagMs === null ? '-' : r.eventLoopLagMs.toFixed(1),
    dash(r.workerRestarts),
    dash(r.queuePending),
    String(r.results.rows),
    r.rollout ? `${r.rollout.id} w${r.rollout.wave + 1} ${r.rollout.state}` : '-',
    r.lastError ? `${r.lastError.time} ${r.lastError.message}` : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (i === head.length - 1 ? 0 : l[i].length))));
  const fmt = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [fmt(head), ...lines.map(fmt)].join('\n');
}
