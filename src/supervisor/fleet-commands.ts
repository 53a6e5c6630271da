/**
 * The commands a running `lvunet-edge run` answers over the fleet link, and what each asks of the
 * worker: status (assembled from supervisor, worker and link), snapshot (sized to fit one reply),
 * set-threshold (kept for restarted workers) and reload-model (ModelUpdater).
 */
import type { ModelStore } from '../fleet/bundles/store.js';
import type { FleetLink } from '../fleet/index.js';
import type { ModelUpdater } from './model-update.js';
import { RELOAD_TIMEOUT_MS } from './model-update.js';
import type { ServingState } from './serving.js';

/** Room for the reply envelope (schema, id, ok, the snapshot's own fields) around the PNG text. */
const SNAPSHOT_ENVELOPE_BYTES = 1024;

export interface RunCommandsOptions {
  readonly deviceId: string;
  readonly group: string | null | undefined;
  readonly serving: ServingState;
  readonly store: ModelStore | undefined;
  /** The supervisor's own figures for the status reply. */
  readonly supervisor: () => { pid: number; state: string; restarts: number; results: number };
  readonly ask: (name: string, args: unknown, timeoutMs?: number) => Promise<unknown>;
  readonly updater: ModelUpdater;
  /** An operator set the threshold: a restarted worker must keep it (and the fleet hears of it). */
  readonly onThreshold: (value: number, commandId: string) => void;
}

/** The status reply: who this device is, what it serves, and how supervisor, worker and link are doing. */
export async function assembleStatus(link: FleetLink, o: RunCommandsOptions): Promise<Record<string, unknown>> {
  const version = o.serving.current.version;
  return {
    device: o.deviceId,
    group: o.group,
    bundle: version ? { version, release: o.store?.current()?.manifest.release ?? null } : null,
    supervisor: o.supervisor(),
    worker: await o.ask('status', {}),
    link: link.stats(),
  };
}

/** The snapshot's budget: one reply under the broker's limit. */
export function snapshotBudget(link: Pick<FleetLink, 'replyBudget'>): number {
  return link.replyBudget('snapshot') - SNAPSHOT_ENVELOPE_BYTES;
}

export function registerRunCommands(link: FleetLink, o: RunCommandsOptions): void {
  link.onCommand('status', () => assembleStatus(link, o));
  link.onCommand('snapshot', () => o.ask('snapshot', { maxBytes: snapshotBudget(link) }));
  link.onCommand('set-threshold', async (c) => {
    const r = await o.ask('set-threshold', { value: c.value });
    o.onThreshold(c.value, c.id);
    return r;
  });
  link.onCommand('reload-model', (c) => o.updater.reload(c), { timeoutMs: RELOAD_TIMEOUT_MS });
}
