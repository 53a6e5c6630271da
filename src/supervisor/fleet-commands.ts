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
  /**
   * Sets the threshold in the worker, kept for restarted workers and announced: the one path for
   * the fleet command and the live view's slider (run-supervised.ts).
   */
  readonly setThreshold: (value: number, by: string) => Promise<unknown>;
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
  link.onCommand('set-threshold', (c) => o.setThreshold(c.value, `command ${c.id}`));
  link.onCommand('reload-model', (c) => o.updater.reload(c), { timeoutMs: RELOAD_TIMEOUT_MS });
}
