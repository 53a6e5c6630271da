// openModels: when the model store is opened at start-up and what serves (installed bundles and
// their expiry: test/integration/run-reload-model.test.ts and run-reload-policy.test.ts).
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { openModels, ServingState } from '../../src/supervisor/serving.js';

const base = { trustedKeys: [], configured: { model: '/m/demo.onnx' } };

t.test('no broker and no installed bundles: no store, the configured model serves', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-serving-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logs: string[] = [];
  const r = await openModels({ ...base, stateDir: dir, fleet: false, log: (l) => logs.push(l) });
  t.equal(r.store, undefined);
  t.same(r.serving, { model: '/m/demo.onnx' });
  t.equal(r.expired, undefined);
  t.same(logs, []);
  t.notOk(existsSync(join(dir, 'models')), 'nothing created');
});

t.test('with a broker: the store is opened (empty), the configured model serves', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-serving-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await openModels({ ...base, stateDir: dir, fleet: true, log: () => undefined });
  t.ok(r.store, 'a store to install into');
  t.equal(r.store?.current(), undefined);
  t.same(r.serving, { model: '/m/demo.onnx' });
});

t.test('a store that cannot be opened only disables updates, and says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-serving-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'models'), 'not a folder');
  const logs: string[] = [];
  const r = await openModels({ ...base, stateDir: dir, fleet: true, log: (l) => logs.push(l) });
  t.equal(r.store, undefined);
  t.same(r.serving, { model: '/m/demo.onnx' });
  t.match(logs, [/models: cannot open the model store under .*models: .*; reload-model is unavailable/]);
});

t.test('ServingState describes a bundle by version and path, a plain model by path', async (t) => {
  const s = new ServingState({ model: '/m/a.onnx' });
  t.equal(s.describe(), '/m/a.onnx');
  s.current = { model: '/state/models/v/x.onnx', version: 'abc' };
  t.equal(s.describe(), 'bundle abc (/state/models/v/x.onnx)');
});
