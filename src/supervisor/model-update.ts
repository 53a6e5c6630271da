/**
 * The `reload-model` command on the supervisor side: the store verifies the bundle (signature,
 * policy, hashes) here, the worker loads it beside the serving model, self-tests it and switches
 * between two frames; the outcome is logged and published as an event. Anything that goes wrong
 * before the commit leaves the worker on its old session; a commit that cannot be confirmed
 * restarts the worker, which comes back on the model ServingState names (still the old one).
 */
import { join } from 'node:path';

import { BundleError, reasonOf, type InstallStep } from '../fleet/bundles/errors.js';
import type { SelfTestResult } from '../fleet/bundles/golden.js';
import type { InstalledVersion, ModelStore, PreparedModel } from '../fleet/bundles/store.js';
import type { EventType, ReloadModelCommand, Severity } from '../fleet/index.js';
import type { StartupReport } from './ipc.js';
import type { PlannedProvider } from './session.js';
import type { ServingState } from './serving.js';
import { workerExited } from './worker-rpc.js';

// A TensorRT engine build for a new model takes minutes on a Jetson; downloads are bounded by the fetch limits.
const PREPARE_TIMEOUT_MS = 20 * 60_000;
const SELF_TEST_TIMEOUT_MS = 5 * 60_000;
const COMMIT_TIMEOUT_MS = 60_000;
/** The command's own timeout: fetch, prepare, self-test and commit together. */
export const RELOAD_TIMEOUT_MS = 45 * 60_000;
const INSTALL_STEPS: readonly InstallStep[] = ['fetch', 'signature', 'policy', 'hash', 'load', 'self-test', 'switch'];

interface WorkerModel {
  readonly path: string;
  readonly sha256: string;
  readonly precision: string;
  readonly inputSize: readonly [number, number];
  readonly threshold: number;
}

/** The worker's answer to `commit-model`. */
interface CommitReply {
  readonly framesLost: number;
  readonly switchMs: number;
  readonly model: WorkerModel;
  readonly providers: StartupReport['providers'];
  readonly plan: readonly PlannedProvider[];
}

/** A worker's refusal that names the update step (and file) turns back into the BundleError it was. */
export function asBundleError(err: unknown): unknown {
  const details = (err as { details?: { step?: unknown; file?: unknown } }).details;
  const step = details?.step;
  if (typeof step !== 'string' || !(INSTALL_STEPS as readonly string[]).includes(step)) return err;
  return new BundleError(step as InstallStep, reasonOf(err), typeof details?.file === 'string' ? details.file : undefined, { cause: err });
}

export interface ModelUpdaterOptions {
  /** undefined: the store could not be opened (updates unavailable, said in each refusal). */
  readonly store: ModelStore | undefined;
  readonly stateDir: string;
  readonly trustedKeys: readonly string[];
  readonly keysHint?: string;
  readonly serving: ServingState;
  /** Asks the worker (WorkerRpc.ask). */
  readonly ask: (name: string, args: unknown, timeoutMs?: number) => Promise<unknown>;
  /** Kills the running worker (SIGKILL) so it restarts on the serving model; false when none runs. */
  readonly killWorker: () => boolean;
  readonly log: (line: string) => void;
  readonly emitEvent: (type: EventType, severity: Severity, message: string, details?: Record<string, unknown>) => void;
}

export class ModelUpdater {
  private nextToken = 0;

  constructor(private readonly o: ModelUpdaterOptions) {}

  /** Runs one reload-model command; resolves with the reply's details, rejects with a message that says what still serves. */
  async reload(c: ReloadModelCommand): Promise<Record<string, unknown>> {
    const { store, serving, log } = this.o;
    const operation = c.rollback ? 'rollback' : 'install';
    const source = c.path ?? c.url;
    const fail = (step: InstallStep | 'unavailable', reason: string, file?: string, cause?: unknown, code?: string): never => {
      const message = `model ${operation} ${c.id} failed at ${step}${file ? ` (${file})` : ''}: ${reason}; still serving ${serving.describe()}`;
      log(`reload-model: ${message}`);
      this.o.emitEvent('fault', 'error', message, {
        kind: 'model-update-failed',
        id: c.id,
        operation,
        source: source ?? null,
        step,
        // policy refusals: 'downgrade', 'wrong-group' or 'expired'.
        code: code ?? null,
        file: file ?? null,
        serving: { model: serving.current.model, version: serving.current.version ?? null },
      });
      throw new Error(message, { cause });
    };
    if (!store) return fail('unavailable', `the model store under ${join(this.o.stateDir, 'models')} could not be opened (see the start-up log)`);
    if (this.o.trustedKeys.length === 0) {
      return fail('unavailable', `no trusted bundle keys: ${this.o.keysHint ?? 'pass --bundle-key public.pem to run'}`);
    }
    log(`reload-model ${c.id}: ${operation}${source ? ` ${source}` : ''}`);
    const from = serving.current;
    const prepare = (next: InstalledVersion): Promise<PreparedModel> => this.prepareInWorker(next, c);
    let changed: boolean;
    let current: InstalledVersion;
    let previous: InstalledVersion | undefined;
    let selfTest: SelfTestResult | undefined;
    let framesLost: number | undefined;
    try {
      if (c.rollback) {
        let seen: { selfTest: SelfTestResult | undefined; framesLost: number | undefined } | undefined;
        const listener = (e: { selfTest: SelfTestResult | undefined; framesLost: number | undefined }): void => {
          seen = e;
        };
        store.once('model-changed', listener);
        try {
          current = await store.rollback({ prepare, reason: c.id });
        } finally {
          store.off('model-changed', listener);
        }
        changed = true;
        previous = store.previous();
        selfTest = seen?.selfTest;
        framesLost = seen?.framesLost;
      } else {
        const r = await store.install(source as string, { prepare, reason: c.id });
        ({ changed, current, previous, selfTest, framesLost } = r);
      }
    } catch (err) {
      if (err instanceof BundleError) return fail(err.step, err.reason, err.file, err, err.code);
      return fail('switch', reasonOf(err), undefined, err);
    }
    if (!changed && serving.current.version !== current.version) {
      // Installed already, but not what this worker serves (it was started with --model).
      return fail('switch', `bundle ${current.version} is already installed but not serving (the run was started with --model); restart without --model to serve it`);
    }
    const model = serving.report?.model;
    const details: Record<string, unknown> = {
      id: c.id,
      cause: operation,
      changed,
      version: current.version,
      // What the signer said the bundle is for (version, group, expiry); null for a legacy bundle.
      release: current.manifest.release ?? null,
      previous: changed ? (from.version ?? null) : (previous?.version ?? null),
      previousModel: changed ? from.model : null,
      source: source ?? null,
      model: model ? { path: model.path, sha256: model.sha256, precision: model.precision } : null,
      selfTest: selfTest ? { meanDice: selfTest.meanDice, threshold: selfTest.threshold, frames: selfTest.perFrame.length } : null,
      framesLost: framesLost ?? 0,
    };
    if (changed) {
      const message = `model ${operation === 'rollback' ? 'rolled back' : 'installed'} by ${c.id}: now serving bundle ${current.version}` +
        `${model ? ` (sha256 ${model.sha256}, ${model.precision})` : ''}; ${framesLost ?? 0} frame(s) lost during the switch`;
      log(`reload-model: ${message}`);
      this.o.emitEvent('model-changed', 'info', message, details);
    } else {
      log(`reload-model ${c.id}: bundle ${current.version} is already serving; nothing switched`);
    }
    return details;
  }

  /** Loads `next` in the worker beside the serving model; the store then self-tests it there, moves its pointers and commits. */
  private async prepareInWorker(next: InstalledVersion, c: ReloadModelCommand): Promise<PreparedModel> {
    const { ask, serving, log } = this.o;
    const token = `m${this.nextToken++}`;
    try {
      await ask('prepare-model', { token, path: next.modelPath, sha256: c.sha256, precision: c.precision }, PREPARE_TIMEOUT_MS);
    } catch (err) {
      throw asBundleError(err);
    }
    return {
      selfTest: async (v) => {
        try {
          return ((await ask('self-test-model', { token, dir: v.dir, manifest: v.manifest }, SELF_TEST_TIMEOUT_MS)) ?? undefined) as SelfTestResult | undefined;
        } catch (err) {
          throw asBundleError(err);
        }
      },
      commit: async () => {
        let committed: CommitReply;
        try {
          committed = (await ask('commit-model', { token }, COMMIT_TIMEOUT_MS)) as CommitReply;
        } catch (err) {
          // Switched or not, we cannot tell: a fresh worker on the old model is a known state.
          if (!workerExited(err) && this.o.killWorker()) {
            log(`reload-model ${c.id}: the switch was not confirmed (${(err as Error).message}); restarting the worker on the old model`);
          }
          throw asBundleError(err);
        }
        serving.current = { model: next.modelPath, version: next.version };
        const report = serving.report;
        if (report) serving.report = { ...report, model: committed.model, providers: committed.providers, plan: committed.plan };
        return { framesLost: committed.framesLost };
      },
      abort: async () => {
        await ask('abort-model', { token }, 10_000).catch(() => undefined);
      },
    };
  }
}
