// issue 18 finding 8: `bundle sign` wrote outside --out when a model folder's manifest used `../`
// names. Every manifest file name that is absolute, has a `..` segment or resolves outside its
// folder is refused, when signing and when verifying or installing.
import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleError } from '../../../src/fleet/bundles/errors.js';
import { encodeSignatureFile, generateKeys, loadPrivateKey, loadTrustedKeys, signManifest } from '../../../src/fleet/bundles/keys.js';
import { signBundle } from '../../../src/fleet/bundles/sign.js';
import { ModelStore } from '../../../src/fleet/bundles/store.js';
import { checkBundle } from '../../../src/fleet/bundles/verify.js';
import { sha256 } from '../../../src/util/files.js';
import { runCli } from '../../helpers/cli.js';
import { buildModel, ortRunner } from './fixtures.js';

const root = t.testdir();
const keys = generateKeys(join(root, 'keys'));
const model = buildModel(join(root, 'model'), 1);
const ONNX = 'lvunet.fp32.onnx';

interface Entry {
  file: string;
  sha256: string;
  bytes: number;
}

/** A copy of the model folder whose manifest lists `name` (with the true hash of `target`) instead of the fp32 file. */
function folderWith(dir: string, name: string, target: string): string {
  mkdirSync(dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(model, 'manifest.json'), 'utf8')) as { files: Entry[] };
  for (const f of manifest.files) if (f.file !== ONNX) copyFileSync(join(model, f.file), join(dir, f.file));
  const bytes = readFileSync(target);
  const entry = manifest.files.find((f) => f.file === ONNX)!;
  Object.assign(entry, { file: name, sha256: sha256(bytes), bytes: bytes.length });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return dir;
}

t.test('sign refuses ../ and absolute names before writing anything, outside --out or inside', async (t) => {
  // The file the ../ name points at exists, with the right hash: only the name is wrong.
  const outside = join(root, 'case1', 'escape.onnx');
  mkdirSync(join(root, 'case1'), { recursive: true });
  copyFileSync(join(model, ONNX), outside);
  const dir = folderWith(join(root, 'case1', 'model'), '../escape.onnx', outside);
  const out = join(root, 'case1', 'out', 'bundle');
  await t.rejects(
    signBundle({ modelDir: dir, privateKey: loadPrivateKey(keys.privatePath), outDir: out }),
    /manifest\.json: files\[\d\]\.file "\.\.\/escape\.onnx" contains "\.\."; refusing to sign/,
  );
  t.notOk(existsSync(join(root, 'case1', 'out', 'escape.onnx')), 'nothing written beside --out');
  t.notOk(existsSync(out), '--out not even created');

  const abs = folderWith(join(root, 'case2'), outside, outside);
  await t.rejects(signBundle({ modelDir: abs, privateKey: loadPrivateKey(keys.privatePath), outDir: join(root, 'case2-out') }), /is an absolute path; refusing to sign/);

  const sub = folderWith(join(root, 'case3'), 'sub/x.onnx', outside);
  await t.rejects(signBundle({ modelDir: sub, privateKey: loadPrivateKey(keys.privatePath), outDir: join(root, 'case3-out') }), /is not a plain file name/);
});

t.test('sign refuses a name that is a symlink resolving outside the model folder', async (t) => {
  const secret = join(root, 'secret.onnx');
  copyFileSync(join(model, ONNX), secret);
  const dir = folderWith(join(root, 'case4'), 'linked.onnx', secret);
  symlinkSync(secret, join(dir, 'linked.onnx'));
  await t.rejects(
    signBundle({ modelDir: dir, privateKey: loadPrivateKey(keys.privatePath), outDir: join(root, 'case4-out') }),
    /linked\.onnx resolves to .*secret\.onnx, outside the model folder/,
  );
  t.notOk(existsSync(join(root, 'case4-out')));
});

t.test('the CLI names the bad entry and exits non-zero', async (t) => {
  const outside = join(root, 'cli', 'escape.onnx');
  mkdirSync(join(root, 'cli'), { recursive: true });
  copyFileSync(join(model, ONNX), outside);
  const dir = folderWith(join(root, 'cli', 'model'), '../escape.onnx', outside);
  const r = runCli(['bundle', 'sign', '--model', dir, '--key', keys.privatePath, '--out', join(root, 'cli', 'out', 'b')]);
  t.equal(r.status, 1, r.stderr);
  t.match(r.stderr, /files\[\d\]\.file "\.\.\/escape\.onnx" contains "\.\."/);
  t.notOk(existsSync(join(root, 'cli', 'out', 'escape.onnx')));
});

t.test('verify and install refuse a properly signed manifest with ../ or absolute names', async (t) => {
  for (const [i, name] of ['../escape.onnx', '/etc/escape.onnx', 'a/../../escape.onnx'].entries()) {
    // A signer's mistake (or a compromised build host): signed with the trusted key, so only the name check stands.
    const bundle = join(root, `signed-${i}`);
    mkdirSync(bundle, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(model, 'manifest.json'), 'utf8')) as { files: Entry[] };
    manifest.files = manifest.files.filter((f) => f.file === ONNX).map((f) => ({ ...f, file: name }));
    const bytes = Buffer.from(JSON.stringify(manifest));
    writeFileSync(join(bundle, 'manifest.json'), bytes);
    writeFileSync(join(bundle, 'manifest.sig'), encodeSignatureFile(signManifest(bytes, loadPrivateKey(keys.privatePath))));
    const err = await checkBundle(bundle, loadTrustedKeys([keys.publicPath])).catch((e: unknown) => e);
    t.ok(err instanceof BundleError, `${name}: refused`);
    t.match((err as Error).message, new RegExp(`files\\[0\\]\\.file .*${name.includes('..') ? 'contains "\\.\\."' : 'absolute path'}`));

    const state = join(root, `state-${i}`);
    const store = await ModelStore.open({ stateDir: state, trustedKeys: [keys.publicPath], runModel: ortRunner().run });
    await t.rejects(store.install(bundle), { name: 'BundleError', step: 'signature' });
    t.notOk(existsSync(join(root, 'escape.onnx')));
    t.notOk(existsSync(join(state, 'escape.onnx')));
    t.notOk(existsSync(join(state, 'models', 'escape.onnx')));
  }
});
