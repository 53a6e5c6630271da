// ModelUpdater: reload-model on the supervisor side against a scripted store and worker (the real
// store, worker and broker are exercised by test/integration/run-reload-model.test.ts).
import t from 'tap';
import { EventEmitter } from 'node:events';

import { BundleError } from '../../src/fleet/bundles/errors.js';
import type { BundleManifest } from '../../src/fleet/bundles/format.js';
import type { InstalledVersion, InstallResult, ModelStore, OperationOptions, PreparedModel } from '../../src/fleet/bundles/store.js';
import type { StartupReport } from '../../src/supervisor/ipc.js';
import { asBundleError, ModelUpdater } from '../../src/supervisor/model-update.js';
import { ServingState } from '../../src/supervisor/serving.js';

const MANIFEST = { release: { version: '2.0.0' } } as unknown as BundleManifest;
const NEXT: InstalledVersion = { version: 'v2', dir: '/state/models/versions/v2', modelPath: '/state/models/versions/v2/lvunet.fp32.onnx', manifest: MANIFEST };
const REPORT: StartupReport = {
  ortVersion: '1.20.0',
  ortLibrary: 'x',
  providers: { requested: [], active: ['CPU'], fallbacks: [] },
  plan: [],
  model: { path: '/m/old.onnx', sha256: 'old', precision: 'fp32', inputSize: [256, 256] },
  source: 'demo',
};
const COMMITTED = { framesLost: 2, switchMs: 5, model: { path: NEXT.modelPath, sha256: 'new', precision: 'fp32', inputSize: [256, 256], threshold: 0.5 }, providers: REPORT.providers, plan: [] };

/** A store whose install runs the prepare hook the way ModelStore does: prepare, self-test, commit. */
class ScriptedStore extends EventEmitter {
  async install(_source: string, options: OperationOptions): Promise<InstallResult> {
    const prepared = await (options.prepare as (v: InstalledVersion) => Promise<PreparedModel>)(NEXT);
    try {
      const selfTest = await prepared.selfTest?.(NEXT);
      const report = await prepared.commit();
      return { changed: true, current: NEXT, previous: undefined, selfTest, framesLost: report?.framesLost };
    } catch (err) {
      await prepared.abort();
      throw err;
    }
  }
  current(): InstalledVersion | undefined {
    return NEXT;
  }
  previous(): InstalledVersion | undefined {
    return undefined;
  }
}

interface Harness {
  updater: ModelUpdater;
  serving: ServingState;
  asked: Array<{ name: string; args: unknown }>;
  events: Array<{ type: string; severity: string; message: string; details?: Record<string, unknown> }>;
  logs: string[];
  kills: number;
}

function harness(answers: Record<string, (args: unknown) => unknown>, o: { store?: boolean; keys?: string[] } = {}): Harness {
  const serving = new ServingState({ model: '/m/old.onnx' });
  serving.report = REPORT;
  const h: Harness = { serving, asked: [], events: [], logs: [], kills: 0, updater: undefined as unknown as ModelUpdater };
  h.updater = new ModelUpdater({
    store: o.store === false ? undefined : (new ScriptedStore() as unknown as ModelStore),
    stateDir: '/state',
    trustedKeys: o.keys ?? ['/keys/pub.pem'],
    keysHint: 'put keys in /etc/lvunet/keys',
    serving,
    ask: async (name, args) => {
      h.asked.push({ name, args });
      const answer = answers[name];
      if (!answer) throw new Error(`unexpected ${name}`);
      return answer(args);
    },
    killWorker: () => (h.kills++, true),
    log: (l) => h.logs.push(l),
    emitEvent: (type, severity, message, details) => h.events.push({ type, severity, message, details }),
  });
  return h;
}

const OK = { 'prepare-model': () => ({}), 'self-test-model': () => ({ meanDice: 0.97, threshold: 0.9, perFrame: [0.96, 0.98] }), 'commit-model': () => COMMITTED };

t.test('an install prepares, self-tests and commits in the worker, then serves the new version', async (t) => {
  const h = harness(OK);
  const details = await h.updater.reload({ id: 'u1', path: '/bundles/b2' });
  t.same(h.asked.map((a) => a.name), ['prepare-model', 'self-test-model', 'commit-model']);
  t.same(h.asked[0].args, { token: 'm0', path: NEXT.modelPath, sha256: undefined, precision: undefined });
  t.same(h.serving.current, { model: NEXT.modelPath, version: 'v2' });
  t.equal(h.serving.report?.model.sha256, 'new', 'the committed model replaces the reported one');
  t.match(details, { id: 'u1', cause: 'install', changed: true, version: 'v2', previous: null, previousModel: '/m/old.onnx', framesLost: 2, selfTest: { meanDice: 0.97, frames: 2 }, model: { sha256: 'new' } });
  t.equal(h.events.length, 1);
  t.match(h.events[0], { type: 'model-changed', severity: 'info', message: /installed by u1: now serving bundle v2 \(sha256 new, fp32\); 2 frame\(s\) lost/ });
});

t.test('a step refused in the worker fails the update at that step, naming the file; the old model serves', async (t) => {
  const h = harness({ ...OK, 'self-test-model': () => Promise.reject(Object.assign(new Error('mean Dice 0.0000'), { details: { step: 'self-test', file: 'lvunet.fp32.onnx' } })) });
  await t.rejects(h.updater.reload({ id: 'u2', path: '/bundles/b2' }), /model install u2 failed at self-test \(lvunet\.fp32\.onnx\): mean Dice 0\.0000; still serving \/m\/old\.onnx/);
  t.same(h.asked.map((a) => a.name), ['prepare-model', 'self-test-model', 'abort-model']);
  t.same(h.serving.current, { model: '/m/old.onnx' });
  t.match(h.events, [{ type: 'fault', severity: 'error', details: { kind: 'model-update-failed', id: 'u2', step: 'self-test', file: 'lvunet.fp32.onnx', serving: { model: '/m/old.onnx', version: null } } }]);
  t.equal(h.kills, 0);
});

t.test('a commit that is not confirmed restarts the worker on the old model', async (t) => {
  const h = harness({ ...OK, 'commit-model': () => Promise.reject(new Error('worker did not answer commit-model within 60000 ms')) });
  await t.rejects(h.updater.reload({ id: 'u3', path: '/bundles/b2' }), /failed at switch: worker did not answer commit-model/);
  t.equal(h.kills, 1);
  t.match(h.logs, [/./, /reload-model u3: the switch was not confirmed .*restarting the worker on the old model/]);
  t.same(h.serving.current, { model: '/m/old.onnx' });
});

t.test('a worker that died during the commit is not killed again', async (t) => {
  const h = harness({ ...OK, 'commit-model': () => Promise.reject(Object.assign(new Error('the worker exited (signal SIGKILL) before answering commit-model'), { workerExited: true })) });
  await t.rejects(h.updater.reload({ id: 'u4', path: '/bundles/b2' }), /failed at switch: the worker exited/);
  t.equal(h.kills, 0);
});

t.test('without a store or without keys the update is unavailable, and says why', async (t) => {
  const noStore = harness(OK, { store: false });
  await t.rejects(noStore.updater.reload({ id: 'u5', path: '/b' }), /failed at unavailable: the model store under \/state\/models could not be opened/);
  const noKeys = harness(OK, { keys: [] });
  await t.rejects(noKeys.updater.reload({ id: 'u6', path: '/b' }), /failed at unavailable: no trusted bundle keys: put keys in \/etc\/lvunet\/keys/);
  t.same([...noStore.asked, ...noKeys.asked], [], 'the worker is not asked');
});

t.test('asBundleError: only known steps become BundleErrors', async (t) => {
  const e = asBundleError(Object.assign(new Error('bad hash'), { details: { step: 'hash', file: 'a.onnx' } }));
  t.ok(e instanceof BundleError);
  t.match(e, { step: 'hash', file: 'a.onnx' });
  const plain = new Error('other');
  t.equal(asBundleError(Object.assign(plain, { details: { step: 'dance' } })), plain);
});
