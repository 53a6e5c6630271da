// issue 18 finding 7: any bundle the key ever signed could be installed, and the device switched
// back and forth between them. Now the signed `release` section carries a version (no switching to
// a lower one except the recorded previous bundle by rollback), a device group and an expiry.
// Bundles without it (signed before) are version 0, for any device, never expiring.
import t from 'tap';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleError } from '../../../src/fleet/bundles/errors.js';
import { parseBundleManifest } from '../../../src/fleet/bundles/format.js';
import { encodeSignatureFile, generateKeys, loadPrivateKey, loadTrustedKeys, signManifest } from '../../../src/fleet/bundles/keys.js';
import { makeReleaseSection } from '../../../src/fleet/bundles/policy.js';
import { compareVersions } from '../../../src/util/versions.js';
import { signBundle } from '../../../src/fleet/bundles/sign.js';
import { ModelStore, type ModelStoreOptions, type UpdateFailedEvent } from '../../../src/fleet/bundles/store.js';
import { checkBundle } from '../../../src/fleet/bundles/verify.js';
import { runCli } from '../../helpers/cli.js';
import { buildModel, ortRunner } from './fixtures.js';

const root = t.testdir();
const keys = generateKeys(join(root, 'keys'));
const privateKey = loadPrivateKey(keys.privatePath);
const runner = ortRunner();
const m1 = buildModel(join(root, 'm1'), 1);
const m2 = buildModel(join(root, 'm2'), 2);
// The signing clock and the device clock are both injected: no test depends on today's date.
const SIGNED_AT = new Date('2026-01-01T00:00:00Z');
const b: Record<string, string> = {};

t.before(async () => {
  const sign = async (name: string, modelDir: string, release?: { version?: string; group?: string; notAfter?: string }): Promise<void> => {
    b[name] = (await signBundle({ modelDir, privateKey, outDir: join(root, name), release, now: SIGNED_AT })).dir;
  };
  await sign('legacyA', m1);
  await sign('legacyB', m2);
  await sign('v1', m1, { version: '1.0.0' });
  await sign('v1_5', m2, { version: '1.5' });
  await sign('v2', m2, { version: '2.0.0' });
  await sign('v2b', m1, { version: '2.0' });
  await sign('carts', m1, { version: '3.0.0', group: 'carts' });
  await sign('kiosks', m2, { version: '3.0.0', group: 'kiosks' });
  await sign('expiring', m1, { version: '3.1.0', notAfter: '2026-06-30' });
});

async function open(extra: Partial<ModelStoreOptions> = {}): Promise<{ store: ModelStore; failed: UpdateFailedEvent[]; dir: string }> {
  const dir = mkdtempSync(join(root, 'store-'));
  const store = await ModelStore.open({ stateDir: join(dir, 's'), trustedKeys: [keys.publicPath], runModel: runner.run, now: () => new Date('2026-03-01T00:00:00Z'), ...extra });
  const failed: UpdateFailedEvent[] = [];
  store.on('update-failed', (e) => failed.push(e));
  return { store, failed, dir: join(dir, 's') };
}

async function refusal(p: Promise<unknown>): Promise<BundleError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof BundleError)) throw new Error(`expected a BundleError, got ${String(err)}`);
  return err;
}

t.test('versions compare numerically, component by component', async (t) => {
  t.equal(compareVersions('1.10', '1.9'), 1);
  t.equal(compareVersions('1.2', '1.2.0'), 0);
  t.equal(compareVersions('0', '0.0.1'), -1);
  t.equal(compareVersions('2', '10'), -1);
});

t.test('an older version is refused over install, before any model file is fetched; current stays', async (t) => {
  const { store, failed, dir } = await open();
  await store.install(b.v1);
  const r = await store.install(b.v2);
  t.equal(r.current.manifest.release?.version, '2.0.0');
  const err = await refusal(store.install(b.v1, { reason: 'attacker' }));
  t.equal(err.step, 'policy');
  t.equal(err.code, 'downgrade');
  t.equal(err.file, 'manifest.json');
  t.match(err.message, /bundle version 1\.0\.0 is older than the installed 2\.0\.0/);
  t.equal(store.current()?.manifest.release?.version, '2.0.0', 'still serving 2.0.0');
  t.match(failed, [{ operation: 'install', source: b.v1, step: 'policy', current: store.current()?.version }]);
  t.same(readdirSync(join(dir, 'models', 'staging')), [], 'nothing left in staging');
  // Equal versions are "at least the installed one".
  const same = await store.install(b.v2b);
  t.ok(same.changed, 'another bundle with the same version (2.0 == 2.0.0) is accepted');
  // 1.5 lies between the previous (1.0) and current: still a downgrade.
  t.equal((await refusal(store.install(b.v1_5))).code, 'downgrade');
});

t.test('rollback goes to the recorded previous bundle, even an older one; a local operator may downgrade explicitly', async (t) => {
  const { store } = await open();
  await store.install(b.v1);
  await store.install(b.v2);
  const back = await store.rollback({ reason: 'operator' });
  t.equal(back.manifest.release?.version, '1.0.0', 'rollback to the previous (older) bundle is allowed');
  t.equal(store.previous()?.manifest.release?.version, '2.0.0');
  // Below what is now installed (1.0.0) is still refused over install.
  t.equal((await refusal(store.install(b.legacyA))).code, 'downgrade');
  const forced = await store.install(b.legacyA, { allowDowngrade: true });
  t.ok(forced.changed, 'allowDowngrade (bundle install --allow-downgrade) installs an older bundle');
});

t.test('backward compatibility: unversioned bundles are version 0, any group, no expiry', async (t) => {
  const { store } = await open({ deviceGroup: 'carts' });
  await store.install(b.legacyA);
  t.ok((await store.install(b.legacyB)).changed, 'unversioned over unversioned: allowed as before (both version 0)');
  t.ok((await store.install(b.v1)).changed, 'versioned over unversioned: an upgrade');
  const err = await refusal(store.install(b.legacyA));
  t.equal(err.code, 'downgrade', 'once versioned, an unversioned bundle is a downgrade');
  t.match(err.message, /bundle version 0 \(unversioned\) is older than the installed 1\.0\.0/);
});

t.test('device group: a bundle bound to a group installs only on devices of that group', async (t) => {
  const { store } = await open({ deviceGroup: 'carts' });
  t.ok((await store.install(b.carts)).changed);
  const wrong = await refusal(store.install(b.kiosks));
  t.equal(wrong.step, 'policy');
  t.equal(wrong.code, 'wrong-group');
  t.match(wrong.message, /bound to device group "kiosks", this device is in "carts"/);

  const none = await open();
  const err = await refusal(none.store.install(b.carts));
  t.equal(err.code, 'wrong-group');
  t.match(err.message, /bound to device group "carts" and this device has no group \(config device\.group\)/);
  t.equal(none.store.current(), undefined);
});

t.test('expiry: refused after notAfter, for install and for rollback, with the clocks named', async (t) => {
  let now = new Date('2026-06-30T23:00:00Z');
  const { store } = await open({ now: () => now });
  await store.install(b.v2);
  t.ok((await store.install(b.expiring)).changed, 'installable through the last day (2026-06-30, UTC)');
  now = new Date('2026-07-01T00:00:00.001Z');
  const m = parseBundleManifest(readFileSync(join(b.expiring, 'manifest.json')));
  t.equal(m.release?.notAfter, '2026-06-30T23:59:59.999Z');
  t.equal(store.current()?.manifest.release?.version, '3.1.0', 'an installed bundle keeps serving after its expiry');
  const { store: s2 } = await open({ now: () => now });
  const err = await refusal(s2.install(b.expiring));
  t.equal(err.code, 'expired');
  t.match(err.message, /bundle expired at 2026-06-30T23:59:59\.999Z \(device clock 2026-07-01T00:00:00\.001Z\)/);

  now = new Date('2026-06-30T12:00:00Z');
  const { store: s3 } = await open({ now: () => now });
  await s3.install(b.expiring);
  await s3.install(b.v2, { allowDowngrade: true });
  now = new Date('2026-07-02T00:00:00Z');
  const back = await refusal(s3.rollback());
  t.equal(back.step, 'policy');
  t.equal(back.code, 'expired', 'an expired previous bundle is not rolled back to');
  t.equal(s3.current()?.manifest.release?.version, '2.0.0');
});

t.test('release fields are signed: editing one breaks the signature', async (t) => {
  for (const [from, to] of [
    ['"version": "1.0.0"', '"version": "9.0.0"'],
    ['"version": "3.0.0",\n    "group": "kiosks"', '"version": "3.0.0",\n    "group": "carts!"'],
  ]) {
    const src = from.includes('kiosks') ? b.kiosks : b.v1;
    const dir = join(root, `edited-${from.length}`);
    cpSync(src, dir, { recursive: true });
    const text = readFileSync(join(dir, 'manifest.json'), 'utf8');
    t.ok(text.includes(from), `the manifest carries ${from}`);
    writeFileSync(join(dir, 'manifest.json'), text.replace(from, to));
    const err = await refusal(checkBundle(dir, loadTrustedKeys([keys.publicPath])));
    t.equal(err.step, 'signature');
    t.match(err.message, /signature does not match manifest\.json/);
  }
  // Removing the section (to pass as a legacy bundle) is an edit too.
  const dir = join(root, 'stripped');
  cpSync(b.kiosks, dir, { recursive: true });
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  delete m.release;
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
  t.equal((await refusal(checkBundle(dir, loadTrustedKeys([keys.publicPath])))).step, 'signature');
});

t.test('a release section a device cannot honour is refused, even properly signed', async (t) => {
  const base = JSON.parse(readFileSync(join(b.v1, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  for (const [release, why] of [
    [{ version: '1.0.0', minRuntime: '2.0' }, /release has unknown field\(s\) minRuntime/],
    [{ version: 'v1' }, /release\.version "v1" is not 1 to 4 dot-separated integers/],
    [{ group: 'carts' }, /release\.version undefined/],
    [{ version: '1', notAfter: '2027-01-01 10:00' }, /release\.notAfter .* is not an ISO 8601 time with a zone/],
    [{ version: '1', group: 'a/b' }, /release\.group "a\/b"/],
  ] as const) {
    const bytes = Buffer.from(JSON.stringify({ ...base, release }));
    const dir = join(root, `odd-${JSON.stringify(release).length}-${Object.keys(release).join('')}`);
    cpSync(b.v1, dir, { recursive: true });
    writeFileSync(join(dir, 'manifest.json'), bytes);
    writeFileSync(join(dir, 'manifest.sig'), encodeSignatureFile(signManifest(bytes, privateKey)));
    const err = await refusal(checkBundle(dir, loadTrustedKeys([keys.publicPath])));
    t.equal(err.step, 'signature');
    t.match(err.message, why);
  }
});

t.test('signing checks the release fields first', async (t) => {
  const now = new Date('2026-01-01T00:00:00Z');
  t.throws(() => makeReleaseSection({ group: 'carts' }, now), /needs --version too/);
  t.throws(() => makeReleaseSection({ version: '1.x' }, now), /not 1 to 4 dot-separated integers/);
  t.throws(() => makeReleaseSection({ version: '1', notAfter: '2025-12-31' }, now), /already past/);
  t.throws(() => makeReleaseSection({ version: '1', notAfter: '2026-02-30' }, now), /not an ISO 8601 date/);
  t.throws(() => makeReleaseSection({ version: '1', notAfter: '2026-05-01T10:00:00' }, now), /not an ISO 8601 date/, 'a time without a zone is ambiguous');
  t.same(makeReleaseSection({ version: '1.2', notAfter: '2026-05-01T10:00:00+02:00' }, now), { version: '1.2', notAfter: '2026-05-01T08:00:00.000Z' });
  t.equal(makeReleaseSection({}, now), undefined);
});

t.test('CLI: sign --version --group --expires, verify shows them, install honours --device-group and --allow-downgrade', async (t) => {
  const dir = mkdtempSync(join(root, 'cli-'));
  const s = runCli(['bundle', 'sign', '--model', m1, '--key', keys.privatePath, '--out', join(dir, 'b3'), '--version', '3.0', '--group', 'carts', '--expires', '2099-01-01']);
  t.equal(s.status, 0, s.stderr);
  t.match(s.stderr, /release 3\.0, group carts, expires 2099-01-01T23:59:59\.999Z/);
  const old = runCli(['bundle', 'sign', '--model', m2, '--key', keys.privatePath, '--out', join(dir, 'b1'), '--version', '1.0']);
  t.equal(old.status, 0, old.stderr);
  const badFlag = runCli(['bundle', 'sign', '--model', m1, '--key', keys.privatePath, '--out', join(dir, 'never'), '--version', 'one']);
  t.equal(badFlag.status, 2, 'a bad --version is a usage error');
  t.match(badFlag.stderr, /version "one" is not 1 to 4 dot-separated integers/);
  const v = runCli(['bundle', 'verify', join(dir, 'b3'), '--pubkey', keys.publicPath]);
  t.equal(v.status, 0, v.stderr);
  t.match(v.stdout, /release 3\.0, group carts, expires 2099-01-01T23:59:59\.999Z/);

  const state = join(dir, 'state');
  const noGroup = runCli(['bundle', 'install', join(dir, 'b3'), '--state-dir', state, '--pubkey', keys.publicPath, '--json']);
  t.equal(noGroup.status, 1);
  t.match(JSON.parse(noGroup.stdout), { ok: false, step: 'policy', code: 'wrong-group' });
  const ok = runCli(['bundle', 'install', join(dir, 'b3'), '--state-dir', state, '--pubkey', keys.publicPath, '--device-group', 'carts']);
  t.equal(ok.status, 0, ok.stderr);
  const down = runCli(['bundle', 'install', join(dir, 'b1'), '--state-dir', state, '--pubkey', keys.publicPath, '--device-group', 'carts', '--json']);
  t.equal(down.status, 1);
  t.match(JSON.parse(down.stdout), { ok: false, step: 'policy', code: 'downgrade', error: /version 1\.0 is older than the installed 3\.0/ });
  const forced = runCli(['bundle', 'install', join(dir, 'b1'), '--state-dir', state, '--pubkey', keys.publicPath, '--device-group', 'carts', '--allow-downgrade']);
  t.equal(forced.status, 0, forced.stderr);
  const st = runCli(['bundle', 'status', '--state-dir', state]);
  t.match(st.stdout, /current {2}[0-9a-f]{64} .*release 1\.0, any group, no expiry\)\nprevious [0-9a-f]{64} \(release 3\.0, group carts/);
});
