/**
 * The on-device model store. Layout under `<stateDir>/models/`:
 *
 *   versions/<sha256 of manifest.json>/   verified bundles, never modified once in place
 *   current  -> versions/<sha>            symlink; replaced by rename(2), so it is always whole
 *   previous -> versions/<sha>            what rollback() returns to
 *   staging/<id>/                          downloads in progress; anything here after a crash is junk
 *
 * The only operation that changes which model runs is the rename of `current`. Everything before it
 * (fetch, signature, hashes, load, self-test) happens beside the running model, so any failure, or a
 * crash at any point, leaves `current` naming the complete version it named before.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, open, readdir, readFile, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '../../util/files.js';
import { BundleError, reasonOf, type InstallStep } from './errors.js';
import { DEFAULT_FETCH_LIMITS, type FetchLimits } from './fetch.js';
import { MANIFEST_FILE, parseBundleManifest, type BundleManifest } from './format.js';
import { modelInfo, runSelfTest, type RunModel, type SelfTestResult } from './golden.js';
import { loadTrustedKeys, type TrustedKey } from './keys.js';
import { checkReleasePolicy, type PolicyContext } from './policy.js';
import { checkBundle } from './verify.js';

export interface InstalledVersion {
  /** sha256 of the version's manifest.json. */
  readonly version: string;
  /** Absolute path of versions/<version>/. */
  readonly dir: string;
  /** The model file the runtime should load (the self-tested one). */
  readonly modelPath: string;
  readonly manifest: BundleManifest;
}

/**
 * What a prepare hook returns: the new model loaded beside the old one. commit() makes the runtime
 * serve it (called right after `current` is switched); abort() drops it (any failure before that).
 */
export interface PreparedModel {
  commit(): Promise<CommitReport | void> | CommitReport | void;
  abort(): Promise<void> | void;
  /**
   * Runs the golden self-test on the loaded model itself (the session that will serve, in the
   * process that holds it) instead of through `runModel`; a rollback runs it too when given.
   */
  selfTest?(version: InstalledVersion): Promise<SelfTestResult | undefined>;
}

export interface CommitReport {
  /** Frames the runtime dropped or delayed past their deadline while changing sessions. */
  readonly framesLost?: number;
}

/** Loads `next` while the runtime keeps serving the old model; throwing fails the 'load' step. */
export type PrepareHook = (next: InstalledVersion) => Promise<PreparedModel | void>;

export type ChangeCause = 'install' | 'rollback';

export interface ModelChangedEvent {
  readonly cause: ChangeCause;
  readonly current: InstalledVersion;
  readonly previous: InstalledVersion | undefined;
  readonly source: string | undefined;
  readonly selfTest: SelfTestResult | undefined;
  readonly framesLost: number | undefined;
  readonly reason: string | undefined;
}

export interface UpdateFailedEvent {
  readonly operation: 'install' | 'rollback';
  readonly source: string | undefined;
  readonly step: InstallStep;
  readonly file: string | undefined;
  readonly message: string;
  /** The version still serving (unchanged by the failure). */
  readonly current: string | undefined;
}

export interface RolledBackEvent {
  readonly from: string;
  readonly to: string;
  readonly reason: string | undefined;
}

export type ModelStoreEvents = {
  'model-changed': [ModelChangedEvent];
  'update-failed': [UpdateFailedEvent];
  'rolled-back': [RolledBackEvent];
};

/** Points in the switch where tests inject a crash. */
export type SwitchPoint = 'staged' | 'loaded' | 'previous-written' | 'current-written' | 'committed';

export interface ModelStoreOptions {
  readonly stateDir: string;
  /** PEM files of the public keys a bundle may be signed with (re-read on every install), or loaded keys. */
  readonly trustedKeys: readonly string[] | readonly TrustedKey[];
  readonly runModel: RunModel;
  readonly limits?: FetchLimits;
  /** Refuse bundles without golden frames (default false: the self-test is skipped for them). */
  readonly requireGolden?: boolean;
  /** This device's group (config device.group): bundles bound to another group are refused. */
  readonly deviceGroup?: string;
  /** The clock bundle expiry is checked against (tests inject one). */
  readonly now?: () => Date;
  /** Test hook: throwing here simulates a crash at that point of an install. */
  readonly onSwitchPoint?: (point: SwitchPoint) => void;
}

export interface OperationOptions {
  readonly prepare?: PrepareHook;
  /** Carried into the events (e.g. the MQTT request id or "operator rollback"). */
  readonly reason?: string;
  /**
   * install only: accept a bundle whose version is lower than the installed one. For a local
   * operator (`bundle install --allow-downgrade`), who can already write the state dir; the fleet
   * link never sets it, so `cmd/` can only go back to the recorded previous bundle (rollback).
   */
  readonly allowDowngrade?: boolean;
}

export interface InstallResult {
  /** False when the bundle is the version already current (nothing was switched). */
  readonly changed: boolean;
  readonly current: InstalledVersion;
  readonly previous: InstalledVersion | undefined;
  readonly selfTest: SelfTestResult | undefined;
  readonly framesLost: number | undefined;
}

export interface RecoveryReport {
  readonly removedStaging: number;
  readonly removedVersions: readonly string[];
  readonly repaired: readonly string[];
}

const CURRENT = 'current';
const PREVIOUS = 'previous';
const VERSIONS = 'versions';
const STAGING = 'staging';
const LOCK = 'lock';
const TARGET = /^versions\/([0-9a-f]{64})$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else, which still means the lock is held.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The manifest objects of one version parse from the same bytes; compare what identifies them. */
function sameManifest(v: InstalledVersion, m: BundleManifest): boolean {
  return JSON.stringify(v.manifest) === JSON.stringify(m);
}

function primaryModel(manifest: BundleManifest): string {
  if (manifest.golden) return manifest.golden.model;
  const deployment = manifest.files.filter((f) => f.mode === 'deployment');
  return (deployment.find((f) => f.precision === 'fp32') ?? deployment[0] ?? manifest.files[0]).file;
}

export class ModelStore extends EventEmitter<ModelStoreEvents> {
  /** `<stateDir>/models`. */
  readonly root: string;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly options: ModelStoreOptions) {
    super();
    this.root = join(options.stateDir, 'models');
  }

  /** Opens (creating) the store and repairs what a crash may have left: see recover(). */
  static async open(options: ModelStoreOptions, how: { recover?: boolean } = {}): Promise<ModelStore> {
    const store = new ModelStore(options);
    await mkdir(join(store.root, VERSIONS), { recursive: true });
    await mkdir(join(store.root, STAGING), { recursive: true });
    if (how.recover ?? true) await store.recover();
    return store;
  }

  /** The version `current` names, or undefined when none is installed. */
  current(): InstalledVersion | undefined {
    return this.readPointer(CURRENT);
  }

  previous(): InstalledVersion | undefined {
    return this.readPointer(PREVIOUS);
  }

  /**
   * fetch → signature → hash → load → self-test → switch. On any failure `current` is unchanged,
   * 'update-failed' is emitted and a BundleError naming the step (and file) is thrown.
   */
  install(source: string, options: OperationOptions = {}): Promise<InstallResult> {
    return this.serial(() => this.locked('install', source, () => this.doInstall(source, options)));
  }

  /** Makes `previous` current again (after re-verifying its signature and hashes). */
  rollback(options: OperationOptions = {}): Promise<InstalledVersion> {
    return this.serial(() => this.locked('rollback', undefined, () => this.doRollback(options)));
  }

  /**
   * Clears staging, removes half-written pointer temporaries, points `current` at `previous` if what
   * it names is gone, and deletes versions neither pointer names. Safe to call at any time no
   * install is running; open() calls it.
   */
  recover(): Promise<RecoveryReport> {
    return this.serial(async () => {
      let release: () => Promise<void>;
      try {
        release = await this.acquireLock();
      } catch (err) {
        // Another live process is installing: its staging dir and pointers are not junk.
        if (err instanceof BundleError) return { removedStaging: 0, removedVersions: [], repaired: [`skipped: ${err.reason}`] };
        throw err;
      }
      try {
        return await this.doRecover();
      } finally {
        await release();
      }
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async locked<T>(operation: 'install' | 'rollback', source: string | undefined, fn: () => Promise<T>): Promise<T> {
    let release: () => Promise<void>;
    try {
      release = await this.acquireLock();
    } catch (err) {
      const failure = err instanceof BundleError ? err : new BundleError('switch', reasonOf(err), join(this.root, LOCK), { cause: err });
      this.emit('update-failed', { operation, source, step: failure.step, file: failure.file, message: failure.message, current: this.current()?.version });
      throw failure;
    }
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  /**
   * One writer per state dir across processes (the runtime's store and a `bundle install` from a
   * shell): a lock file holding the owner's pid. A lock whose owner is dead is left over from a
   * crash and is taken over.
   */
  private async acquireLock(): Promise<() => Promise<void>> {
    const path = join(this.root, LOCK);
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await open(path, 'wx', 0o644);
        try {
          await handle.writeFile(`${process.pid}\n`);
        } finally {
          await handle.close();
        }
        return () => rm(path, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
          if (err instanceof BundleError) throw err;
          throw new BundleError('switch', `cannot take the store lock: ${reasonOf(err)}`, path, { cause: err });
        }
      }
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
        throw new BundleError('switch', `pid ${pid} is changing models in ${this.root}; try again when it is done`, path);
      }
      await rm(path, { force: true });
    }
  }

  private async doInstall(source: string, options: OperationOptions): Promise<InstallResult> {
    const before = this.current();
    const previousBefore = this.previous();
    const staging = join(this.root, STAGING, randomUUID());
    let step: InstallStep = 'fetch';
    let placed: string | undefined;
    let prepared: PreparedModel | void = undefined;
    let switched = false;
    try {
      const trusted = this.trustedKeys();
      const verified = await checkBundle(source, trusted, {
        stagingDir: staging,
        limits: this.options.limits ?? DEFAULT_FETCH_LIMITS,
        // Same manifest bytes as the current one: nothing switches, so nothing to refuse.
        accept: (manifest) => {
          if (before && sameManifest(before, manifest)) return;
          checkReleasePolicy(manifest, this.policyContext('install', before, options.allowDowngrade));
        },
      });
      if (before && before.version === verified.version) {
        await rm(staging, { recursive: true, force: true });
        return { changed: false, current: before, previous: previousBefore, selfTest: undefined, framesLost: undefined };
      }
      if (this.options.requireGolden && !verified.manifest.golden) {
        throw new BundleError('self-test', 'bundle has no golden frames and this device requires them', MANIFEST_FILE);
      }

      step = 'switch';
      const target = join(this.root, VERSIONS, verified.version);
      if (existsSync(target)) {
        // Same manifest bytes, so same files; but replace rather than trust a directory a crash may have cut short.
        const trash = join(this.root, STAGING, `old-${randomUUID()}`);
        await rename(target, trash);
        await rename(staging, target);
        await rm(trash, { recursive: true, force: true });
      } else {
        await rename(staging, target);
      }
      placed = verified.version;
      this.point('staged');
      const next = this.describe(verified.version);
      if (!next) throw new BundleError('switch', 'version directory vanished after it was put in place', target);

      step = 'load';
      if (options.prepare) prepared = await options.prepare(next);
      else await this.options.runModel(next.modelPath, [], modelInfo(next.manifest));
      this.point('loaded');

      step = 'self-test';
      const selfTest = prepared?.selfTest ? await prepared.selfTest(next) : await runSelfTest(next.dir, next.manifest, this.options.runModel);

      step = 'switch';
      if (before) {
        await this.setPointer(PREVIOUS, before.version);
        this.point('previous-written');
      }
      await this.setPointer(CURRENT, next.version);
      switched = true;
      this.point('current-written');
      const report = prepared ? await prepared.commit() : undefined;
      prepared = undefined;
      this.point('committed');
      // The runtime serves the new model now: a leftover version directory must not undo that;
      // recover() at the next open() removes it.
      await this.prune().catch(() => undefined);
      const result: InstallResult = { changed: true, current: next, previous: before, selfTest, framesLost: report ? report.framesLost : undefined };
      this.emit('model-changed', { cause: 'install', current: next, previous: before, source, selfTest, framesLost: result.framesLost, reason: options.reason });
      return result;
    } catch (err) {
      const failure = err instanceof BundleError ? err : new BundleError(step, reasonOf(err), undefined, { cause: err });
      await this.undoInstall(staging, placed, switched, before, previousBefore, prepared);
      this.emit('update-failed', {
        operation: 'install',
        source,
        step: failure.step,
        file: failure.file,
        message: failure.message,
        current: this.current()?.version,
      });
      throw failure;
    }
  }

  /** Best effort: every piece runs even if an earlier one fails, since the original error is what matters. */
  private async undoInstall(
    staging: string,
    placed: string | undefined,
    switched: boolean,
    before: InstalledVersion | undefined,
    previousBefore: InstalledVersion | undefined,
    prepared: PreparedModel | void,
  ): Promise<void> {
    const attempt = async (fn: () => Promise<unknown> | unknown): Promise<void> => {
      try {
        await fn();
      } catch {
        // Recovery at the next open() repairs whatever this could not.
      }
    };
    if (prepared) await attempt(() => (prepared as PreparedModel).abort());
    if (switched) await attempt(() => (before ? this.setPointer(CURRENT, before.version) : unlink(join(this.root, CURRENT))));
    if (before) await attempt(() => (previousBefore ? this.setPointer(PREVIOUS, previousBefore.version) : unlink(join(this.root, PREVIOUS))));
    await attempt(() => rm(staging, { recursive: true, force: true }));
    if (placed !== undefined && placed !== before?.version && placed !== previousBefore?.version) {
      await attempt(() => rm(join(this.root, VERSIONS, placed), { recursive: true, force: true }));
    }
  }

  private async doRollback(options: OperationOptions): Promise<InstalledVersion> {
    const from = this.current();
    const to = this.previous();
    let prepared: PreparedModel | void = undefined;
    let step: InstallStep = 'switch';
    try {
      if (!to) throw new BundleError('switch', 'there is no previous model to roll back to', join(this.root, PREVIOUS));
      // The previous version was verified when installed; check again that nothing on disk changed and
      // that its key is still trusted (a revoked key must not come back through a rollback).
      step = 'hash';
      // Group and expiry still apply: a bundle that expired since it was installed is not one to go back to.
      await checkBundle(to.dir, this.trustedKeys(), { accept: (manifest) => checkReleasePolicy(manifest, this.policyContext('rollback', from)) });
      step = 'load';
      if (options.prepare) prepared = await options.prepare(to);
      step = 'self-test';
      // The runtime (provider, library) may have changed since this version was installed.
      const selfTest = prepared?.selfTest ? await prepared.selfTest(to) : undefined;
      step = 'switch';
      await this.setPointer(CURRENT, to.version);
      if (from) await this.setPointer(PREVIOUS, from.version);
      const report = prepared ? await prepared.commit() : undefined;
      prepared = undefined;
      this.emit('rolled-back', { from: from?.version ?? '', to: to.version, reason: options.reason });
      this.emit('model-changed', {
        cause: 'rollback',
        current: to,
        previous: from,
        source: undefined,
        selfTest,
        framesLost: report ? report.framesLost : undefined,
        reason: options.reason,
      });
      return to;
    } catch (err) {
      const failure = err instanceof BundleError ? err : new BundleError(step, reasonOf(err), undefined, { cause: err });
      if (prepared) {
        try {
          await prepared.abort();
        } catch {
          // The failure being reported matters more than this one.
        }
      }
      // A failure after the first pointer write would leave current = previous; put it back.
      if (from && this.current()?.version !== from.version) {
        try {
          await this.setPointer(CURRENT, from.version);
          if (to) await this.setPointer(PREVIOUS, to.version);
        } catch {
          // recover() at the next open() settles the pointers.
        }
      }
      this.emit('update-failed', { operation: 'rollback', source: undefined, step: failure.step, file: failure.file, message: failure.message, current: this.current()?.version });
      throw failure;
    }
  }

  private async doRecover(): Promise<RecoveryReport> {
    const repaired: string[] = [];
    const stagingDir = join(this.root, STAGING);
    const junk = await readdir(stagingDir).catch(() => [] as string[]);
    for (const name of junk) await rm(join(stagingDir, name), { recursive: true, force: true });
    for (const name of await readdir(this.root)) {
      if (/^(current|previous)\.tmp-/.test(name)) {
        await rm(join(this.root, name), { force: true });
        repaired.push(`removed ${name}`);
      }
    }
    const current = this.current();
    const previous = this.previous();
    if (!current && this.pointerExists(CURRENT)) {
      if (previous) {
        await this.setPointer(CURRENT, previous.version);
        repaired.push(`current was broken; now ${previous.version} (previous)`);
      } else {
        await unlink(join(this.root, CURRENT));
        repaired.push('current was broken and there is no previous; no model is installed');
      }
    }
    if (!previous && this.pointerExists(PREVIOUS)) {
      await unlink(join(this.root, PREVIOUS));
      repaired.push('previous was broken; removed');
    }
    const removedVersions = await this.prune();
    return { removedStaging: junk.length, removedVersions, repaired };
  }

  private policyContext(operation: 'install' | 'rollback', installed: InstalledVersion | undefined, allowDowngrade = false): PolicyContext {
    return { operation, installed: installed?.manifest, deviceGroup: this.options.deviceGroup, now: (this.options.now ?? (() => new Date()))(), allowDowngrade };
  }

  private trustedKeys(): readonly TrustedKey[] {
    const keys = this.options.trustedKeys;
    if (keys.length > 0 && typeof keys[0] === 'string') {
      try {
        return loadTrustedKeys(keys as readonly string[]);
      } catch (err) {
        throw new BundleError('signature', `cannot load the trusted keys: ${reasonOf(err)}`, undefined, { cause: err });
      }
    }
    return keys as readonly TrustedKey[];
  }

  private point(p: SwitchPoint): void {
    this.options.onSwitchPoint?.(p);
  }

  private pointerExists(name: string): boolean {
    try {
      lstatSync(join(this.root, name));
      return true;
    } catch {
      return false;
    }
  }

  private readPointer(name: string): InstalledVersion | undefined {
    let target: string;
    try {
      target = readlinkSync(join(this.root, name));
    } catch {
      return undefined;
    }
    const m = TARGET.exec(target);
    return m ? this.describe(m[1]) : undefined;
  }

  private describe(version: string): InstalledVersion | undefined {
    const dir = join(this.root, VERSIONS, version);
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(dir, MANIFEST_FILE));
    } catch {
      return undefined;
    }
    if (sha256(bytes) !== version) return undefined;
    try {
      const manifest = parseBundleManifest(bytes, join(dir, MANIFEST_FILE));
      return { version, dir, modelPath: join(dir, primaryModel(manifest)), manifest };
    } catch {
      return undefined;
    }
  }

  /** Points `name` at versions/<version> with one rename, then fsyncs the directory so it survives power loss. */
  private async setPointer(name: string, version: string): Promise<void> {
    const tmp = join(this.root, `${name}.tmp-${process.pid}-${randomUUID().slice(0, 8)}`);
    await symlink(`${VERSIONS}/${version}`, tmp);
    try {
      await rename(tmp, join(this.root, name));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const dir = await open(this.root, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /** Deletes every version that neither pointer names. */
  private async prune(): Promise<string[]> {
    const keep = new Set<string>();
    for (const name of [CURRENT, PREVIOUS]) {
      try {
        const m = TARGET.exec(await readlink(join(this.root, name)));
        if (m) keep.add(m[1]);
      } catch {
        // No such pointer: nothing to keep for it.
      }
    }
    const removed: string[] = [];
    for (const v of await readdir(join(this.root, VERSIONS)).catch(() => [] as string[])) {
      if (keep.has(v)) continue;
      await rm(join(this.root, VERSIONS, v), { recursive: true, force: true });
      removed.push(v);
    }
    return removed;
  }
}
