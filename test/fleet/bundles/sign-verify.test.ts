import t, { type Test } from 'tap';
import { cpSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleError } from '../../../src/fleet/bundles/errors.js';
import type { BundleManifest } from '../../../src/fleet/bundles/format.js';
import { runSelfTest } from '../../../src/fleet/bundles/golden.js';
import { generateKeys, loadPrivateKey, loadTrustedKeys } from '../../../src/fleet/bundles/keys.js';
import { createOrtRunner } from '../../../src/fleet/bundles/ort-runner.js';
import { signBundle } from '../../../src/fleet/bundles/sign.js';
import { checkBundle } from '../../../src/fleet/bundles/verify.js';
import { runCli } from '../../helpers/cli.js';
import { buildModel, goldenImages, ortRunner } from './fixtures.js';
import { requireShared } from '../../helpers/shared-data.js';
import { KVASIR } from '../../helpers/paths.js';
import { same } from '../../helpers/same.js';

requireShared(KVASIR);

const root = t.testdir();
const model = buildModel(join(root, 'model'), 1);
const keys = generateKeys(join(root, 'keys'));
const otherKeys = generateKeys(join(root, 'other-keys'));
const trusted = loadTrustedKeys([keys.publicPath]);
const images = goldenImages(join(root, 'images'));
const runner = ortRunner();
const good = join(root, 'good');

t.before(async () => {
  await signBundle({ modelDir: model, privateKey: loadPrivateKey(keys.privatePath), outDir: good, goldenDir: images, goldenCount: 2, runModel: runner.run });
});

/** A fresh copy of the good bundle to damage. */
function copy(name: string): string {
  const dir = join(root, name);
  cpSync(good, dir, { recursive: true });
  return dir;
}

async function rejects(t: Test, dir: string, step: string, file: RegExp, message: RegExp, keysToTrust = trusted): Promise<void> {
  const err = await checkBundle(dir, keysToTrust).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof BundleError, `rejected with a BundleError (${String(err)})`);
  if (!(err instanceof BundleError)) return;
  t.equal(err.step, step, err.message);
  t.match(err.file ?? '', file);
  t.match(err.message, message);
}

t.test('keygen writes a 0600 ed25519 private key and refuses to overwrite it', async (t) => {
  t.equal(statSync(keys.privatePath).mode & 0o777, 0o600);
  t.equal(statSync(keys.publicPath).mode & 0o077, 0o044);
  t.match(keys.keyId, /^[0-9a-f]{16}$/);
  t.not(keys.keyId, otherKeys.keyId);
  t.throws(() => generateKeys(join(root, 'keys')), /already exists; refusing to overwrite/);
});

t.test('sign → verify round trip, with golden frames from the signed model', async (t) => {
  const v = await checkBundle(good, trusted);
  t.equal(v.keyId, keys.keyId);
  t.match(v.version, /^[0-9a-f]{64}$/);
  const m = JSON.parse(readFileSync(join(good, 'manifest.json'), 'utf8')) as BundleManifest;
  t.equal(m.golden?.threshold, 0.98);
  t.equal(m.golden?.model, 'lvunet.fp32.onnx');
  t.equal(m.golden?.frames.length, 2);
  same(t, v.files.map((f) => f.file), ['lvunet.train.onnx', 'lvunet.fp32.onnx', 'golden/frame-00.png', 'golden/frame-00.mask.png', 'golden/frame-01.png', 'golden/frame-01.mask.png']);
  same(t, runner.calls.at(-1), { modelPath: join(good, 'lvunet.fp32.onnx'), frames: 2 });
  // The test's own runner and the CLI's src runner must agree with the stored masks.
  for (const run of [runner.run, createOrtRunner()]) {
    const r = await runSelfTest(good, m, run);
    t.equal(r?.meanDice, 1);
  }
});

t.test('a bundle without manifest.sig is rejected as unsigned', async (t) => {
  const dir = copy('unsigned');
  rmSync(join(dir, 'manifest.sig'));
  await rejects(t, dir, 'signature', /manifest\.sig$/, /bundle is not signed/);
});

t.test('one changed byte in manifest.json breaks the signature', async (t) => {
  const dir = copy('tampered-manifest');
  const bytes = readFileSync(join(dir, 'manifest.json'));
  // Raise the self-test bar's first digit: still valid JSON, still plausible, but not what was signed.
  const at = bytes.indexOf('"threshold": 0.98') + '"threshold": 0.'.length;
  bytes[at] = '5'.charCodeAt(0);
  writeFileSync(join(dir, 'manifest.json'), bytes);
  await rejects(t, dir, 'signature', /manifest\.sig$/, new RegExp(`signature does not match manifest.json for key ${keys.keyId}`));
});

t.test('a tampered ONNX file fails its sha256 and is named', async (t) => {
  const dir = copy('tampered-onnx');
  const path = join(dir, 'lvunet.fp32.onnx');
  const bytes = readFileSync(path);
  bytes[bytes.length - 100] ^= 1;
  writeFileSync(path, bytes);
  await rejects(t, dir, 'hash', /^lvunet\.fp32\.onnx$/, /sha256 [0-9a-f]{64} does not match manifest\.json/);
});

t.test('a truncated ONNX file fails on its size', async (t) => {
  const dir = copy('short-onnx');
  const path = join(dir, 'lvunet.train.onnx');
  writeFileSync(path, readFileSync(path).subarray(0, 1000));
  await rejects(t, dir, 'hash', /^lvunet\.train\.onnx$/, /1000 bytes, manifest\.json lists \d+/);
});

t.test('a bundle signed by an untrusted key is rejected naming both key ids', async (t) => {
  await rejects(t, good, 'signature', /manifest\.sig$/, new RegExp(`signed by key ${keys.keyId}, which is not trusted \\(trusted: ${otherKeys.keyId}`), loadTrustedKeys([otherKeys.publicPath]));
  // Re-signed by the other key but claiming the trusted key's id: the id is only a hint.
  const dir = copy('forged-key-id');
  const other = await signBundle({ modelDir: model, privateKey: loadPrivateKey(otherKeys.privatePath), outDir: join(root, 'other-signed') });
  const sig = JSON.parse(readFileSync(join(other.dir, 'manifest.sig'), 'utf8')) as { keyId: string };
  sig.keyId = keys.keyId;
  writeFileSync(join(dir, 'manifest.sig'), JSON.stringify(sig));
  cpSync(join(other.dir, 'manifest.json'), join(dir, 'manifest.json'));
  rmSync(join(dir, 'golden'), { recursive: true });
  await rejects(t, dir, 'signature', /manifest\.sig$/, /signature does not match/);
});

t.test('a missing file and an extra file are both refused by name', async (t) => {
  const missing = copy('missing');
  rmSync(join(missing, 'golden', 'frame-01.mask.png'));
  await rejects(t, missing, 'hash', /^golden\/frame-01\.mask\.png$/, /listed in manifest\.json but missing from the bundle/);
  const extra = copy('extra');
  writeFileSync(join(extra, 'golden', 'notes.txt'), 'hello');
  await rejects(t, extra, 'hash', /^golden\/notes\.txt$/, /not covered by manifest\.json: golden\/notes\.txt/);
  const extraModel = copy('extra-model');
  cpSync(join(extraModel, 'lvunet.fp32.onnx'), join(extraModel, 'lvunet.int8.onnx'));
  await rejects(t, extraModel, 'hash', /^lvunet\.int8\.onnx$/, /not covered by manifest\.json/);
});

t.test('signing refuses a model directory whose files do not match its manifest', async (t) => {
  const dir = join(root, 'bad-model');
  cpSync(model, dir, { recursive: true });
  writeFileSync(join(dir, 'lvunet.fp32.onnx'), 'not onnx');
  await t.rejects(
    signBundle({ modelDir: dir, privateKey: loadPrivateKey(keys.privatePath), outDir: join(root, 'never') }),
    /lvunet\.fp32\.onnx: sha256 .* does not match .*manifest\.json.*refusing to sign it/,
  );
  t.notOk(existsSync(join(root, 'never', 'manifest.sig')));
  await t.rejects(
    signBundle({ modelDir: model, privateKey: loadPrivateKey(keys.privatePath), outDir: good }),
    /is not empty/,
  );
});

t.test('CLI: keygen, sign with golden frames, verify (text and --json), wrong key exits 1', async (t) => {
  const dir = t.testdir();
  const k = runCli(['bundle', 'keygen', '--out', join(dir, 'k')]);
  t.equal(k.status, 0, k.stderr);
  t.match(k.stdout, /key id [0-9a-f]{16}/);
  const s = runCli(['bundle', 'sign', '--model', model, '--key', join(dir, 'k', 'private.pem'), '--golden', images, '--golden-count', '2', '--out', join(dir, 'b')]);
  t.equal(s.status, 0, s.stderr);
  t.match(s.stderr, /signed .*manifest\.json with key/);
  const v = runCli(['bundle', 'verify', join(dir, 'b'), '--pubkey', join(dir, 'k', 'public.pem'), '--self-test']);
  t.equal(v.status, 0, v.stderr);
  t.match(v.stdout, /^OK .*6 files verified\nself-test: mean Dice 1\.0000 >= 0\.98 over 2 frames/);
  const j = runCli(['bundle', 'verify', join(dir, 'b'), '--pubkey', join(dir, 'k', 'public.pem'), '--json']);
  t.equal(j.status, 0, j.stderr);
  t.match(JSON.parse(j.stdout), { ok: true, keyId: /^[0-9a-f]{16}$/, files: Array });
  const w = runCli(['bundle', 'verify', join(dir, 'b'), '--pubkey', keys.publicPath, '--json']);
  t.equal(w.status, 1);
  t.match(JSON.parse(w.stdout), { ok: false, step: 'signature', file: /manifest\.sig$/ });
  t.match(w.stderr, /not trusted/);
  const u = runCli(['bundle', 'verify', join(dir, 'b')]);
  t.equal(u.status, 2);
  t.match(u.stderr, /--pubkey/);
});
