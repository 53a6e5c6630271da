import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleError } from '../../../src/fleet/bundles/errors.js';
import { DEFAULT_FETCH_LIMITS } from '../../../src/fleet/bundles/fetch.js';
import { generateKeys, loadPrivateKey, loadTrustedKeys } from '../../../src/fleet/bundles/keys.js';
import { signBundle } from '../../../src/fleet/bundles/sign.js';
import { ModelStore } from '../../../src/fleet/bundles/store.js';
import { checkBundle } from '../../../src/fleet/bundles/verify.js';
import { execFile } from 'node:child_process';
import { CLI, KVASIR, REPO_ROOT } from '../../helpers/paths.js';
import { buildModel, goldenImages, ortRunner, serveDir, type FileServer } from './fixtures.js';
import { requireShared } from '../../helpers/shared-data.js';

requireShared(KVASIR);

const root = t.testdir();
const keys = generateKeys(join(root, 'keys'));
const trusted = loadTrustedKeys([keys.publicPath]);
const runner = ortRunner();
const bundle = join(root, 'bundle');
const older = join(root, 'older');
let version = '';
let olderVersion = '';
let server: FileServer;

t.before(async () => {
  const privateKey = loadPrivateKey(keys.privatePath);
  const images = goldenImages(join(root, 'images'));
  version = (await signBundle({ modelDir: buildModel(join(root, 'm1'), 1), privateKey, outDir: bundle, goldenDir: images, goldenCount: 2, runModel: runner.run })).version;
  olderVersion = (await signBundle({ modelDir: buildModel(join(root, 'm2'), 2), privateKey, outDir: older })).version;
  server = await serveDir(bundle);
});
t.teardown(() => server.close());
t.beforeEach(() => {
  server.overrides.clear();
  server.requests.length = 0;
});

/** The CLI as a child process, asynchronously: spawnSync would block the in-process HTTP server. */
function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

async function failure(p: Promise<unknown>): Promise<BundleError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof BundleError)) throw new Error(`expected a BundleError, got ${String(err)}`);
  return err;
}

/** A store whose current model is `older`, to show failures leave it in place. */
async function storeWithOlder(dir: string, limits = DEFAULT_FETCH_LIMITS): Promise<ModelStore> {
  const store = await ModelStore.open({ stateDir: dir, trustedKeys: trusted, runModel: runner.run, limits });
  await store.install(older);
  return store;
}

t.test('installs over HTTP: manifest and signature first, then each file', async (t) => {
  const dir = t.testdir();
  const store = await storeWithOlder(dir);
  const r = await store.install(server.url);
  t.equal(r.current.version, version);
  t.equal(r.previous?.version, olderVersion);
  t.equal(r.selfTest?.meanDice, 1);
  const prefix = new URL(server.url).pathname;
  t.same(server.requests.slice(0, 2), [`${prefix}/manifest.json`, `${prefix}/manifest.sig`]);
  t.equal(server.requests.length, 8, 'two fixed files and six listed ones, each fetched once');
  for (const f of ['lvunet.fp32.onnx', 'golden/frame-01.mask.png']) {
    t.same(readFileSync(join(r.current.dir, f)), readFileSync(join(bundle, f)), f);
  }
});

t.test('a 404 for a listed file is a fetch error naming the URL; current stays', async (t) => {
  const dir = t.testdir();
  const store = await storeWithOlder(dir);
  const prefix = new URL(server.url).pathname;
  server.overrides.set(`${prefix}/golden/frame-00.mask.png`, (_req, res) => {
    res.writeHead(404).end();
    return true;
  });
  const err = await failure(store.install(server.url));
  t.equal(err.step, 'fetch');
  t.equal(err.file, `${server.url}/golden/frame-00.mask.png`);
  t.match(err.message, /HTTP 404 Not Found/);
  t.equal(store.current()?.version, olderVersion);
  t.same(readdirSync(join(dir, 'models', 'staging')), []);
  t.same(readdirSync(join(dir, 'models', 'versions')), [olderVersion]);
});

t.test('a missing manifest.sig over HTTP means unsigned', async (t) => {
  const prefix = new URL(server.url).pathname;
  server.overrides.set(`${prefix}/manifest.sig`, (_req, res) => {
    res.writeHead(404).end();
    return true;
  });
  const err = await failure(checkBundle(server.url, trusted));
  t.match(err, { step: 'signature', file: `${server.url}/manifest.sig`, message: /bundle is not signed \(HTTP 404/ });
  t.same(server.requests.length, 2, 'no model file is downloaded for an unsigned manifest');
});

t.test('a server that closes mid-body is a fetch error naming the URL', async (t) => {
  const dir = t.testdir();
  const store = await storeWithOlder(dir);
  const prefix = new URL(server.url).pathname;
  server.overrides.set(`${prefix}/lvunet.fp32.onnx`, (_req, res, body) => {
    res.writeHead(200, { 'content-length': body!.length });
    res.write(body!.subarray(0, 100_000), () => res.socket?.destroy());
    return true;
  });
  const err = await failure(store.install(server.url));
  t.equal(err.step, 'fetch');
  t.equal(err.file, `${server.url}/lvunet.fp32.onnx`);
  t.match(err.message, /read failed after \d+ bytes|closed before the body ended/);
  t.equal(store.current()?.version, olderVersion);
});

t.test('a stalled server times out', async (t) => {
  const prefix = new URL(server.url).pathname;
  server.overrides.set(`${prefix}/lvunet.train.onnx`, (_req, res, body) => {
    res.writeHead(200, { 'content-length': body!.length });
    res.write(body!.subarray(0, 1000));
    return true;
  });
  const limits = { ...DEFAULT_FETCH_LIMITS, idleTimeoutMs: 300 };
  const started = Date.now();
  const err = await failure(checkBundle(server.url, trusted, { limits, stagingDir: join(t.testdir(), 's') }));
  t.match(err, { step: 'fetch', file: `${server.url}/lvunet.train.onnx`, message: /nothing received for 300 ms/ });
  t.ok(Date.now() - started < 10_000);
});

t.test('size limits: a Content-Length over the limit is refused before reading', async (t) => {
  const prefix = new URL(server.url).pathname;
  server.overrides.set(`${prefix}/manifest.json`, (_req, res) => {
    res.writeHead(200, { 'content-length': 50 * 1024 * 1024 });
    res.write('{');
    return true;
  });
  const err = await failure(checkBundle(server.url, trusted));
  t.match(err, { step: 'fetch', file: `${server.url}/manifest.json`, message: /Content-Length 52428800 is over the limit of 1048576 bytes/ });

  server.overrides.clear();
  const small = { ...DEFAULT_FETCH_LIMITS, maxFileBytes: 1_000_000 };
  const big = await failure(checkBundle(server.url, trusted, { limits: small }));
  t.match(big, { step: 'fetch', file: 'lvunet.train.onnx', message: /over the limit of 1000000/ });
});

t.test('bytes that differ from the manifest fail the hash step, even with a plausible length', async (t) => {
  const prefix = new URL(server.url).pathname;
  server.overrides.set(`${prefix}/lvunet.fp32.onnx`, (_req, res, body) => {
    const evil = Buffer.from(body!);
    evil[evil.length - 10] ^= 0xff;
    res.writeHead(200, { 'content-length': evil.length }).end(evil);
    return true;
  });
  t.match(await failure(checkBundle(server.url, trusted)), { step: 'hash', file: 'lvunet.fp32.onnx', message: /sha256 .* does not match/ });

  // No Content-Length and more bytes than listed: stopped as soon as it runs past the signed size.
  server.overrides.set(`${prefix}/lvunet.fp32.onnx`, (_req, res, body) => {
    res.writeHead(200);
    res.write(body!);
    res.end(Buffer.alloc(4096));
    return true;
  });
  t.match(await failure(checkBundle(server.url, trusted)), { step: 'hash', file: 'lvunet.fp32.onnx', message: /larger than the \d+ bytes manifest.json lists/ });
});

t.test('redirects are followed; errors after one name both URLs', async (t) => {
  const prefix = new URL(server.url).pathname;
  server.overrides.set('/moved/manifest.json', (_req, res) => {
    res.writeHead(302, { location: `${prefix}/manifest.json` }).end();
    return true;
  });
  server.overrides.set('/moved/manifest.sig', (_req, res) => {
    res.writeHead(301, { location: `${prefix}/manifest.sig` }).end();
    return true;
  });
  const base = server.url.replace(prefix, '/moved');
  server.overrides.set('/moved/lvunet.train.onnx', (_req, res) => {
    res.writeHead(307, { location: '/gone' }).end();
    return true;
  });
  const err = await failure(checkBundle(base, trusted));
  t.match(err, { step: 'fetch', file: `${base}/lvunet.train.onnx (redirected to ${new URL('/gone', server.url).href})`, message: /HTTP 404/ });
});

t.test('a refused connection names the URL', async (t) => {
  const closed = await serveDir(bundle);
  const url = closed.url;
  await closed.close();
  t.match(await failure(checkBundle(url, trusted)), { step: 'fetch', file: `${url}/manifest.json`, message: /ECONNREFUSED/ });
});

t.test('CLI verify and install from a URL', async (t) => {
  const dir = t.testdir();
  const v = await runCli(['bundle', 'verify', server.url, '--pubkey', keys.publicPath, '--self-test', '--json']);
  t.equal(v.status, 0, v.stderr);
  t.match(JSON.parse(v.stdout), { ok: true, version, selfTest: { meanDice: 1 } });
  const i = await runCli(['bundle', 'install', server.url, '--state-dir', dir, '--pubkey', keys.publicPath]);
  t.equal(i.status, 0, i.stderr);
  t.match(i.stdout, new RegExp(`installed ${version} \\(previous none\\)`));
  const again = await runCli(['bundle', 'install', older, '--state-dir', dir, '--pubkey', keys.publicPath, '--json']);
  t.equal(again.status, 0, again.stderr);
  t.match(JSON.parse(again.stdout), { ok: true, changed: true, current: { version: olderVersion }, previous: { version } });
  const rb = await runCli(['bundle', 'rollback', '--state-dir', dir, '--pubkey', keys.publicPath]);
  t.equal(rb.status, 0, rb.stderr);
  t.match(rb.stdout, `rolled back from ${olderVersion} to ${version}`);
  const st = await runCli(['bundle', 'status', '--state-dir', dir, '--json']);
  t.match(JSON.parse(st.stdout), { current: { version }, previous: { version: olderVersion } });
  const bad = await runCli(['bundle', 'install', `${server.url}-nope`, '--state-dir', dir, '--pubkey', keys.publicPath, '--json']);
  t.equal(bad.status, 1);
  t.match(JSON.parse(bad.stdout), { ok: false, step: 'fetch', file: `${server.url}-nope/manifest.json` });
  t.match(bad.stderr, /HTTP 404/);
});
