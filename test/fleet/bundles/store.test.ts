import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleError } from '../../../src/fleet/bundles/errors.js';
import { generateKeys, loadPrivateKey, loadTrustedKeys } from '../../../src/fleet/bundles/keys.js';
import { signBundle } from '../../../src/fleet/bundles/sign.js';
import {
  ModelStore,
  type ModelChangedEvent,
  type ModelStoreOptions,
  type RolledBackEvent,
  type SwitchPoint,
  type UpdateFailedEvent,
} from '../../../src/fleet/bundles/store.js';
import { checkBundle } from '../../../src/fleet/bundles/verify.js';
import type { RunModel } from '../../../src/fleet/bundles/golden.js';
import { KVASIR, REPO_ROOT } from '../../helpers/paths.js';
import { buildModel, goldenImages, ortRunner } from './fixtures.js';
import { requireShared } from '../../helpers/shared-data.js';

requireShared(KVASIR);

const root = t.testdir();
const keys = generateKeys(join(root, 'keys'));
const images = goldenImages(join(root, 'images'));
const runner = ortRunner();
const m1 = buildModel(join(root, 'm1'), 1);
const m2 = buildModel(join(root, 'm2'), 2);
const b1 = join(root, 'b1');
const b2 = join(root, 'b2');
const bad = join(root, 'bad-golden');
let v1 = '';
let v2 = '';

t.before(async () => {
  const privateKey = loadPrivateKey(keys.privatePath);
  v1 = (await signBundle({ modelDir: m1, privateKey, outDir: b1, goldenDir: images, goldenCount: 2, runModel: runner.run })).version;
  v2 = (await signBundle({ modelDir: m2, privateKey, outDir: b2, goldenDir: images, goldenCount: 2, runModel: runner.run })).version;
  // Model 2's files with model 1's masks as "expected": properly signed, but the model computes something else.
  const m1Masks: RunModel = (_path, frames, info) => runner.run(join(m1, 'lvunet.fp32.onnx'), frames, info);
  await signBundle({ modelDir: m2, privateKey, outDir: bad, goldenDir: images, goldenCount: 2, runModel: m1Masks });
});

interface Recorded {
  changed: ModelChangedEvent[];
  failed: UpdateFailedEvent[];
  rolledBack: RolledBackEvent[];
}

async function openStore(stateDir: string, extra: Partial<ModelStoreOptions> = {}): Promise<{ store: ModelStore; events: Recorded }> {
  const store = await ModelStore.open({ stateDir, trustedKeys: [keys.publicPath], runModel: runner.run, ...extra });
  const events: Recorded = { changed: [], failed: [], rolledBack: [] };
  store.on('model-changed', (e) => events.changed.push(e));
  store.on('update-failed', (e) => events.failed.push(e));
  store.on('rolled-back', (e) => events.rolledBack.push(e));
  return { store, events };
}

async function failure(p: Promise<unknown>): Promise<BundleError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof BundleError)) throw new Error(`expected a BundleError, got ${String(err)}`);
  return err;
}

function versionsOn(stateDir: string): string[] {
  return readdirSync(join(stateDir, 'models', 'versions')).sort();
}

t.test('a good bundle installs, current switches and previous is kept', async (t) => {
  const dir = t.testdir();
  const { store, events } = await openStore(dir);
  t.equal(store.current(), undefined);
  const r1 = await store.install(b1, { reason: 'req-1' });
  t.ok(r1.changed);
  t.equal(r1.current.version, v1);
  t.equal(r1.selfTest?.meanDice, 1);
  t.equal(readlinkSync(join(dir, 'models', 'current')), `versions/${v1}`);
  t.equal(store.current()?.modelPath, join(dir, 'models', 'versions', v1, 'lvunet.fp32.onnx'));
  t.equal(store.previous(), undefined);

  const r2 = await store.install(b2);
  t.equal(r2.current.version, v2);
  t.equal(r2.previous?.version, v1);
  t.equal(store.previous()?.version, v1);
  t.same(versionsOn(dir), [v1, v2].sort());
  t.same(readdirSync(join(dir, 'models', 'staging')), []);
  t.same(events.changed.map((e) => [e.cause, e.current.version, e.previous?.version, e.reason]), [
    ['install', v1, undefined, 'req-1'],
    ['install', v2, v1, undefined],
  ]);
  t.equal(events.failed.length, 0);
  // The installed copy is a complete, verifiable bundle in its own right.
  t.equal((await checkBundle(store.current()!.dir, [])
    .catch((e: BundleError) => e.step)), 'signature', 'an empty trust list accepts nothing');

  const again = await store.install(b2);
  t.notOk(again.changed, 'the current version again is a no-op');
  t.equal(events.changed.length, 2);

  // A third version pushes the oldest out: only current and previous stay on disk.
  const r3 = await store.install(b1);
  t.equal(r3.current.version, v1);
  t.equal(r3.previous?.version, v2);
  t.same(versionsOn(dir), [v1, v2].sort());
});

t.test('a bundle whose golden self-test fails is rejected and the old model stays current', async (t) => {
  const dir = t.testdir();
  const { store, events } = await openStore(dir);
  await store.install(b2);
  const err = await failure(store.install(bad));
  t.equal(err.step, 'self-test');
  t.equal(err.file, 'lvunet.fp32.onnx');
  t.match(err.message, /mean Dice 0\.0000 over 2 golden frames is below 0\.98 \(worst golden\/frame-00\.png: 0\.0000\)/);
  t.equal(store.current()?.version, v2);
  t.equal(store.previous(), undefined);
  t.same(versionsOn(dir), [v2], 'the rejected version is deleted');
  t.same(readdirSync(join(dir, 'models', 'staging')), []);
  t.match(events.failed, [{ operation: 'install', source: bad, step: 'self-test', file: 'lvunet.fp32.onnx', current: v2 }]);
  t.equal(events.changed.length, 1);
});

t.test('every verification failure leaves current alone and names step and file', async (t) => {
  // t.testdir() empties the directory on each call, so everything of this test lives under one.
  const work = t.testdir();
  const dir = join(work, 'state');
  const { store, events } = await openStore(dir);
  await store.install(b1);

  const tampered = join(work, 'b');
  cpSync(b2, tampered, { recursive: true });
  const onnx = readFileSync(join(tampered, 'lvunet.fp32.onnx'));
  onnx[5000] ^= 0x40;
  writeFileSync(join(tampered, 'lvunet.fp32.onnx'), onnx);
  const e1 = await failure(store.install(tampered));
  t.match(e1, { step: 'hash', file: 'lvunet.fp32.onnx' });

  const untrusted = await ModelStore.open({ stateDir: dir, trustedKeys: [generateKeys(join(work, 'k')).publicPath], runModel: runner.run });
  t.match(await failure(untrusted.install(b2)), { step: 'signature', message: /not trusted/ });

  const missing = join(work, 'nope');
  t.match(await failure(store.install(missing)), { step: 'fetch', file: join(missing, 'manifest.json'), message: /ENOENT/ });

  const cannotLoad: RunModel = async (path, frames, info) => {
    if (path.includes(v2)) throw new Error('onnxruntime: protobuf parsing failed');
    return runner.run(path, frames, info);
  };
  const loadFails = await ModelStore.open({ stateDir: dir, trustedKeys: [keys.publicPath], runModel: cannotLoad });
  t.match(await failure(loadFails.install(b2)), { step: 'load', message: /protobuf parsing failed/ });

  t.equal(store.current()?.version, v1);
  t.same(versionsOn(dir), [v1]);
  t.same(events.failed.map((e) => e.step), ['hash', 'fetch'], 'each store reports its own failures');
});

t.test('rollback swaps current and previous, re-verifying what it returns to', async (t) => {
  const dir = t.testdir();
  const { store, events } = await openStore(dir);
  t.match(await failure(store.rollback()), { step: 'switch', message: /no previous model/ });
  await store.install(b1);
  await store.install(b2);
  const back = await store.rollback({ reason: 'operator' });
  t.equal(back.version, v1);
  t.equal(store.current()?.version, v1);
  t.equal(store.previous()?.version, v2);
  t.same(events.rolledBack, [{ from: v2, to: v1, reason: 'operator' }]);
  t.match(events.changed.at(-1), { cause: 'rollback', current: { version: v1 }, previous: { version: v2 } });
  await store.rollback();
  t.equal(store.current()?.version, v2);

  // A previous version damaged on disk is not rolled back to.
  const prevOnnx = join(store.previous()!.dir, 'lvunet.fp32.onnx');
  writeFileSync(prevOnnx, 'corrupted');
  t.match(await failure(store.rollback()), { step: 'hash', file: 'lvunet.fp32.onnx' });
  t.equal(store.current()?.version, v2);
  t.match(events.failed.at(-1), { operation: 'rollback', step: 'hash', current: v2 });
});

t.test('the prepare hook loads the new model while the old one serves, and reports frames lost', async (t) => {
  const dir = t.testdir();
  const { store, events } = await openStore(dir);
  await store.install(b1);
  const log: string[] = [];
  const r = await store.install(b2, {
    prepare: async (next) => {
      log.push(`prepare ${next.version === v2} current=${store.current()?.version === v1}`);
      return {
        commit: () => {
          log.push(`commit current=${store.current()?.version === v2}`);
          return { framesLost: 3 };
        },
        abort: () => {
          log.push('abort');
        },
      };
    },
  });
  t.same(log, ['prepare true current=true', 'commit current=true']);
  t.equal(r.framesLost, 3);
  t.equal(events.changed.at(-1)?.framesLost, 3);

  // Prepared, but the self-test then fails: the prepared session is dropped, nothing switches.
  log.length = 0;
  const err = await failure(store.install(bad, { prepare: async () => ({ commit: () => void log.push('commit'), abort: () => void log.push('abort') }) }));
  t.equal(err.step, 'self-test');
  t.same(log, ['abort']);
  t.equal(store.current()?.version, v2);

  const failedPrepare = await failure(store.install(b1, { prepare: async () => Promise.reject(new Error('out of GPU memory')) }));
  t.match(failedPrepare, { step: 'load', message: /out of GPU memory/ });
  t.equal(store.current()?.version, v2);

  // commit() failing after the pointer moved puts the pointer back.
  const failedCommit = await failure(store.install(b1, { prepare: async () => ({ commit: () => Promise.reject(new Error('swap failed')), abort: () => undefined }) }));
  t.match(failedCommit, { step: 'switch', message: /swap failed/ });
  t.equal(store.current()?.version, v2);
});

t.test('a prepared model can run the self-test itself (the worker\'s session), on install and on rollback', async (t) => {
  const dir = t.testdir();
  const { store, events } = await openStore(dir);
  await store.install(b1);
  const calls = runner.calls.length;
  const log: string[] = [];
  const prepared = (tag: string, pass: boolean) => async () => ({
    selfTest: async (v: { version: string; dir: string }) => {
      log.push(`${tag} self-test ${v.version === v1 ? 'v1' : v.version === v2 ? 'v2' : '?'}`);
      if (!pass) throw new Error('golden masks differ on this device');
      return { meanDice: 0.99, threshold: 0.98, perFrame: [] };
    },
    commit: () => {
      log.push(`${tag} commit`);
      return { framesLost: 1 };
    },
    abort: () => void log.push(`${tag} abort`),
  });
  const r = await store.install(b2, { prepare: prepared('install', true) });
  t.equal(r.selfTest?.meanDice, 0.99, 'the prepared model\'s result is the install\'s');
  t.equal(runner.calls.length, calls, 'runModel was not used');

  const err = await failure(store.rollback({ prepare: prepared('rollback', false) }));
  t.equal(err.step, 'self-test');
  t.match(err.message, /golden masks differ on this device/);
  t.equal(store.current()?.version, v2, 'a failed rollback self-test leaves current alone');

  const back = await store.rollback({ prepare: prepared('rollback', true) });
  t.equal(back.version, v1);
  t.equal(events.changed.at(-1)?.selfTest?.meanDice, 0.99, 'the rollback reports its self-test');
  t.equal(events.changed.at(-1)?.framesLost, 1);
  t.same(log, ['install self-test v2', 'install commit', 'rollback self-test v1', 'rollback abort', 'rollback self-test v1', 'rollback commit']);
});

t.test('an exception at any switch point leaves current valid', async (t) => {
  const points: SwitchPoint[] = ['staged', 'loaded', 'previous-written', 'current-written', 'committed'];
  const base = t.testdir();
  for (const point of points) {
    const dir = join(base, point);
    let armed = false;
    const { store } = await openStore(dir, {
      onSwitchPoint: (p) => {
        if (armed && p === point) throw new Error(`injected failure at ${p}`);
      },
    });
    await store.install(b1);
    armed = true;
    const err = await failure(store.install(b2));
    t.match(err, { step: point === 'loaded' ? 'load' : 'switch', message: new RegExp(`injected failure at ${point}`) }, point);
    t.equal(store.current()?.version, v1, `${point}: old model still current`);
    t.equal(store.previous(), undefined, `${point}: previous restored`);
    t.same(versionsOn(dir), [v1], `${point}: half-installed version removed`);
    const reopened = await ModelStore.open({ stateDir: dir, trustedKeys: [keys.publicPath], runModel: runner.run });
    t.equal(reopened.current()?.version, v1);
  }
});

t.test('a crash (SIGKILL) at any switch point leaves current naming a complete version', async (t) => {
  const child = join(REPO_ROOT, 'dist', 'test', 'fleet', 'bundles', 'crash-child.js');
  if (!existsSync(child)) {
    t.fail(`${child} is missing: run 'npm run build' first`);
    return;
  }
  const cases: [SwitchPoint, string][] = [
    ['staged', v1],
    ['loaded', v1],
    ['previous-written', v1],
    ['current-written', v2],
  ];
  const base = t.testdir();
  for (const [point, expected] of cases) {
    const dir = join(base, point);
    const { store } = await openStore(dir);
    await store.install(b1);
    const r = spawnSync(process.execPath, [child, dir, keys.publicPath, b2, point], { encoding: 'utf8', timeout: 120_000 });
    t.equal(r.signal, 'SIGKILL', `${point}: child died mid-install (${r.stderr})`);
    // Before any recovery: what a runtime starting right now would load.
    const raw = await ModelStore.open({ stateDir: dir, trustedKeys: [keys.publicPath], runModel: runner.run }, { recover: false });
    t.equal(raw.current()?.version, expected, `${point}: current is ${expected === v1 ? 'the old' : 'the new'} version`);
    await checkBundle(raw.current()!.dir, loadTrustedKeys([keys.publicPath]));
    const recovered = await ModelStore.open({ stateDir: dir, trustedKeys: [keys.publicPath], runModel: runner.run });
    t.equal(recovered.current()?.version, expected);
    t.same(readdirSync(join(dir, 'models', 'staging')), [], `${point}: staging cleared`);
    t.notOk(readdirSync(join(dir, 'models')).some((n) => n.includes('.tmp-')), `${point}: no pointer temporaries`);
    const keep = [recovered.current()?.version, recovered.previous()?.version].filter((v): v is string => v !== undefined);
    t.same(versionsOn(dir), [...new Set(keep)].sort(), `${point}: only pointed-to versions remain`);
    // And the store still works after the crash.
    const next = await recovered.install(expected === v1 ? b2 : b1);
    t.ok(next.changed);
  }
});

t.test('recover repairs a dangling current from previous', async (t) => {
  const dir = t.testdir();
  const { store } = await openStore(dir);
  await store.install(b1);
  await store.install(b2);
  rmSync(join(dir, 'models', 'versions', v2), { recursive: true });
  t.ok(lstatSync(join(dir, 'models', 'current')).isSymbolicLink());
  t.equal(store.current(), undefined, 'a pointer to a missing version is no model');
  const report = await store.recover();
  t.match(report.repaired, [/current was broken; now [0-9a-f]{64} \(previous\)/]);
  t.equal(store.current()?.version, v1);
});

t.test('one writer per state dir: a live lock refuses, a dead owner\'s lock is taken over', async (t) => {
  const dir = t.testdir();
  const { store, events } = await openStore(dir);
  await store.install(b1);
  const lock = join(dir, 'models', 'lock');
  // Our own pid stands in for another live process (the lock is per state dir, not per object).
  writeFileSync(lock, `${process.pid}\n`);
  const busy = await failure(store.install(b2));
  t.match(busy, { step: 'switch', file: lock, message: new RegExp(`pid ${process.pid} is changing models`) });
  t.match(events.failed.at(-1), { operation: 'install', step: 'switch' });
  t.match((await store.recover()).repaired, [/^skipped: pid \d+ is changing models/]);
  t.equal(store.current()?.version, v1);
  // Larger than any pid_max: an owner that no longer exists.
  writeFileSync(lock, '2147483646\n');
  t.equal((await store.install(b2)).current.version, v2);
  t.notOk(existsSync(lock), 'released after the install');
});
