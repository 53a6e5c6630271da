// issue 18 finding 7, against a live `lvunet-edge run` and a real mosquitto: a publisher on `cmd/`
// could switch the device to any bundle the key ever signed (an old one, a seeded random-weights
// test bundle, another group's) and back. Now reload-model refuses, with an error reply and a
// fault event carrying step "policy" and the refusal code, a lower version, another group's
// bundle and an expired one, while results keep coming from the serving model; rollback goes
// only to the recorded previous bundle.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { generateKeys, loadPrivateKey } from '../../src/fleet/bundles/keys.js';
import { signBundle } from '../../src/fleet/bundles/sign.js';
import { ModelStore } from '../../src/fleet/bundles/store.js';
import { validateEvent, validateReply, validateResult, type ResultMessage } from '../../src/fleet/schemas.js';
import { buildModelDir, seededModelWeights } from '../../src/model/build.js';
import { ortRunner } from '../fleet/bundles/fixtures.js';
import { json, recorder, sleep, type Received } from '../fleet/mqtt-helpers.js';
import { findMosquitto, startBroker } from '../helpers/mosquitto.js';
import { ensureStopped, startRun, stateDir } from '../integration/run-helpers.js';

const DEVICE = 'cart-17';

const skip = findMosquitto() ? false : 'mosquitto is not installed: no broker to send reload-model through';

t.test('reload-model over MQTT: no downgrade, no other group, no expired bundle; rollback only to the recorded previous', { skip }, async (t) => {
  const work = stateDir(t, 'policy-work');
  const keys = generateKeys(join(work, 'keys'));
  const privateKey = loadPrivateKey(keys.privatePath);
  const model = (name: string, seed: number): string => {
    const dir = join(work, name);
    buildModelDir(seededModelWeights(seed), { height: 256, width: 256 }, dir);
    return dir;
  };
  const mA = model('mA', 2);
  const mB = model('mB', 3);
  const mSeeded = model('mSeeded', 9);
  const sign = async (name: string, modelDir: string, release?: { version?: string; group?: string; notAfter?: string }) =>
    (await signBundle({ modelDir, privateKey, outDir: join(work, name), release })).dir;
  const v1 = await sign('v1', mA, { version: '1.0.0', group: 'carts' });
  const v2 = await sign('v2', mB, { version: '2.0.0', group: 'carts' });
  // What the issue found: old or test bundles, properly signed with the fleet key.
  const seededOld = await sign('seeded-old', mSeeded, { version: '1.5.0', group: 'carts' });
  const legacy = await sign('legacy', mSeeded);
  const kiosks = await sign('kiosks', mSeeded, { version: '9.0.0', group: 'kiosks' });
  const expiresAt = new Date(Date.now() + 2_000).toISOString();
  const expiring = await sign('expiring', mSeeded, { version: '9.1.0', group: 'carts', notAfter: expiresAt });
  const fp32Sha = (dir: string): string =>
    (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { files: { file: string; sha256: string }[] }).files.find((f) => f.file === 'lvunet.fp32.onnx')!.sha256;
  const shaA = fp32Sha(mA);
  const shaB = fp32Sha(mB);

  const broker = await startBroker({ t });
  const ops = await recorder(broker.url, [`lvunet/${DEVICE}/#`]);
  t.teardown(() => ops.close());
  const state = stateDir(t, 'run-policy');
  const p = startRun(['--demo', '--mqtt', broker.url, '--device-id', DEVICE, '--fps', '10', '--bundle-key', keys.publicPath], {
    LVUNET_STATE_DIR: state,
    LVUNET_DEVICE_GROUP: 'carts',
  });
  t.teardown(() => ensureStopped(p));
  await p.waitStderr(/worker pid (\d+) ready/, 90_000);

  const results = (ms: Received[]): ResultMessage[] =>
    ms.filter((m) => m.topic === `lvunet/${DEVICE}/result`).map((m) => {
      const v = validateResult(json(m));
      if (!v.ok) throw new Error(`invalid result: ${v.errors.join('; ')}`);
      return v.value;
    });
  const servingAfter = (since: number, sha: string, what: string) =>
    ops.until((ms) => results(ms.filter((m) => m.at > since)).some((r) => r.model.sha256 === sha), what, 60_000);
  const reload = async (payload: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const id = payload.id as string;
    ops.client.publish(`lvunet/${DEVICE}/cmd/reload-model`, JSON.stringify(payload), { qos: 1 });
    const isReply = (m: Received): boolean => m.topic === `lvunet/${DEVICE}/cmd/reload-model/reply` && json(m).id === id;
    await ops.until((ms) => ms.some(isReply), `reply to ${id}`, 120_000);
    const reply = json(ops.messages.find(isReply)!);
    t.ok(validateReply(reply).ok, `${id}: the reply follows its schema`);
    return reply;
  };

  t.equal((await reload({ id: 'up-1', path: v1 })).ok, true, 'version 1.0.0 for this group installs');
  const up2 = await reload({ id: 'up-2', path: v2 });
  t.equal(up2.ok, true, 'version 2.0.0 installs over it');
  t.match(up2.result, { release: { version: '2.0.0', group: 'carts' } }, 'the reply names the release');
  await servingAfter(Date.now(), shaB, 'results of 2.0.0');

  while (Date.now() <= Date.parse(expiresAt)) await sleep(100);
  for (const [id, path, code, message] of [
    ['old-1', v1, 'downgrade', /failed at policy \(manifest\.json\): bundle version 1\.0\.0 is older than the installed 2\.0\.0/],
    ['seeded', seededOld, 'downgrade', /bundle version 1\.5\.0 is older than the installed 2\.0\.0/],
    ['legacy', legacy, 'downgrade', /bundle version 0 \(unversioned\) is older than the installed 2\.0\.0/],
    ['kiosks', kiosks, 'wrong-group', /bound to device group "kiosks", this device is in "carts"/],
    ['expired', expiring, 'expired', new RegExp(`bundle expired at ${expiresAt.replace(/\./g, '\\.')}`)],
  ] as const) {
    const sent = Date.now();
    const reply = await reload({ id, path });
    t.equal(reply.ok, false, `${id} is refused`);
    t.match(String(reply.error), message, `${id}: ${String(reply.error)}`);
    t.match(String(reply.error), /still serving bundle/);
    const ev = ops.messages
      .filter((m) => m.topic === `lvunet/${DEVICE}/event`)
      .map((m) => json(m))
      .find((e) => (e.details as { id?: string } | undefined)?.id === id);
    t.ok(ev && validateEvent(ev).ok, `${id}: a valid fault event`);
    t.match(ev, { type: 'fault', severity: 'error', details: { kind: 'model-update-failed', step: 'policy', code, file: 'manifest.json' } });
    await servingAfter(sent, shaB, `2.0.0 still serving after ${id}`);
  }

  // The authorised way back: the previous bundle this device recorded, re-verified.
  const sentBack = Date.now();
  const back = await reload({ id: 'back', rollback: true });
  t.equal(back.ok, true, String(back.error));
  t.match(back.result, { cause: 'rollback' });
  await servingAfter(sentBack, shaA, 'results of 1.0.0 after the rollback');
  // And nothing older than what is installed now comes in through install.
  const again = await reload({ id: 'seeded-again', path: legacy });
  t.equal(again.ok, false);
  t.match(String(again.error), /failed at policy/);

  ops.client.publish(`lvunet/${DEVICE}/cmd/status`, JSON.stringify({ id: 'st' }), { qos: 1 });
  await ops.until((ms) => ms.some((m) => m.topic.endsWith('/cmd/status/reply')), 'status reply', 30_000);
  const st = json(ops.messages.find((m) => m.topic.endsWith('/cmd/status/reply'))!);
  t.match(st.result, { device: DEVICE, group: 'carts', bundle: { release: { version: '1.0.0', group: 'carts' } } }, 'status says the group and the serving release');

  p.child.kill('SIGTERM');
  t.equal(await p.exited, 0, p.stderr());
  t.match(p.stderr(), /reload-model: model install old-1 failed at policy/, 'the refusal is in the log too');
});

t.test('an installed bundle past its expiry keeps serving at the next start, with a warning', async (t) => {
  const work = stateDir(t, 'expiry-work');
  const keys = generateKeys(join(work, 'keys'));
  const modelDir = join(work, 'm');
  buildModelDir(seededModelWeights(5), { height: 128, width: 128 }, modelDir);
  // Long enough to install here, short enough to wait for.
  const notAfter = new Date(Date.now() + 8_000).toISOString();
  const bundle = await signBundle({ modelDir, privateKey: loadPrivateKey(keys.privatePath), outDir: join(work, 'b'), release: { version: '1.0.0', notAfter } });
  const state = stateDir(t, 'expiry-state');
  const store = await ModelStore.open({ stateDir: state, trustedKeys: [keys.publicPath], runModel: ortRunner().run });
  const installed = await store.install(bundle.dir);
  while (Date.now() <= Date.parse(notAfter)) await sleep(100);
  const p = startRun(['--demo', '--max-frames', '2', '--bundle-key', keys.publicPath], { LVUNET_STATE_DIR: state });
  t.teardown(() => ensureStopped(p));
  t.equal(await p.exited, 0, p.stderr());
  t.match(p.stderr(), `models: installed bundle ${installed.current.version} expired at ${notAfter}; it keeps serving`);
  const sha = (JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8')) as { files: { file: string; sha256: string }[] }).files.find((f) => f.file === 'lvunet.fp32.onnx')!.sha256;
  t.same(
    p.stdout().trim().split('\n').map((l) => (JSON.parse(l) as { model: { sha256: string } }).model.sha256),
    [sha, sha],
    'results still come from the expired bundle',
  );
});
