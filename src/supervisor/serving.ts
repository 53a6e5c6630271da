/**
 * What the worker serves: the configured model or an installed bundle version, and what the worker
 * last reported about it. The one place a restarted worker learns which model to load, so a
 * half-done update's model is never served after a crash.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { ModelStore } from '../fleet/bundles/store.js';
import type { Precision } from '../model/manifest.js';
import type { StartupReport } from './ipc.js';

export interface Serving {
  readonly model: string;
  readonly precision?: Precision;
  /** The bundle version (sha256 of its manifest) when the model came from the store. */
  readonly version?: string;
}

export class ServingState {
  /** Set by each worker's `ready` and by a committed model switch. */
  report: StartupReport | undefined;

  constructor(public current: Serving) {}

  describe(): string {
    return this.current.version ? `bundle ${this.current.version} (${this.current.model})` : this.current.model;
  }
}

export interface ModelStoreSetup {
  readonly stateDir: string;
  /** A broker is configured: this device can be told to update. */
  readonly fleet: boolean;
  readonly trustedKeys: readonly string[];
  readonly requireGolden?: boolean;
  readonly deviceGroup?: string;
  /** --model was given on the command line: it serves at start-up even when a bundle is installed. */
  readonly modelExplicit?: boolean;
  readonly configured: Serving;
  readonly log: (line: string) => void;
}

export interface OpenedModels {
  readonly store: ModelStore | undefined;
  readonly serving: Serving;
  /** Set when the installed bundle serving now is past its notAfter: said on the fleet too. */
  readonly expired: string | undefined;
}

/**
 * The model store (installed bundles under <state_dir>/models), opened when this device can be told
 * to update (a broker) or already has bundles; a store it cannot open only disables updates.
 */
export async function openModels(o: ModelStoreSetup): Promise<OpenedModels> {
  let serving = o.configured;
  let expired: string | undefined;
  if (!o.fleet && !existsSync(join(o.stateDir, 'models'))) return { store: undefined, serving, expired };
  try {
    const store = await ModelStore.open({
      stateDir: o.stateDir,
      trustedKeys: o.trustedKeys,
      requireGolden: o.requireGolden,
      // Version, group and expiry of every bundle are checked against this (policy.ts); the fleet link never downgrades.
      deviceGroup: o.deviceGroup,
      // Never used: every load and self-test goes through the worker (ModelUpdater's prepare hook).
      runModel: () => Promise.reject(new Error('models are only run in the worker process')),
    });
    const installed = store.current();
    if (installed && o.modelExplicit) {
      o.log(`models: installed bundle ${installed.version} not used at start-up: --model ${o.configured.model} was given`);
    } else if (installed) {
      serving = { model: installed.modelPath, version: installed.version };
      o.log(`models: serving installed bundle ${installed.version} (${installed.modelPath}) instead of ${o.configured.model}`);
      const notAfter = installed.manifest.release?.notAfter;
      if (notAfter !== undefined && Date.now() > Date.parse(notAfter)) {
        // Serving never stops on a date (or a wrong clock); the fleet should replace it.
        expired = `installed bundle ${installed.version} expired at ${notAfter}; it keeps serving, but a rollback to it would be refused: install a current bundle`;
        o.log(`models: ${expired}`);
      }
    }
    return { store, serving, expired };
  } catch (err) {
    o.log(`models: cannot open the model store under ${join(o.stateDir, 'models')}: ${(err as Error).message}; reload-model is unavailable`);
    return { store: undefined, serving, expired };
  }
}
