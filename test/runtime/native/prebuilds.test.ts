import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  BUILD_FROM_SOURCE_HINT,
  availablePrebuilds,
  hostRuntime,
  prebuiltCandidate,
  readPrebuiltMeta,
  type HostRuntime,
  type PrebuiltMeta,
  type PrebuiltResult,
} from '../../../src/runtime/native/prebuilds.js';
import { compareVersions } from '../../../src/util/versions.js';
import { REPO_ROOT } from '../../helpers/paths.js';

const PREBUILD_SCRIPT = join(REPO_ROOT, 'native', 'scripts', 'prebuild.mjs');
const BUILD_SCRIPT = join(REPO_ROOT, 'native', 'scripts', 'build.mjs');
const HOST: HostRuntime = { glibc: '2.36', napi: 9 };

interface PrebuildModule {
  findPrebuilt(root: string, platform: string, arch: string, host: HostRuntime): PrebuiltResult;
  symbolVersionFloor(bytes: Buffer, prefix: string): string | null;
}
const prebuildModule = async (): Promise<PrebuildModule> => (await import(pathToFileURL(PREBUILD_SCRIPT).href)) as PrebuildModule;

/** Writes prebuilds/<target>/ with `bytes` as the addon and a meta.json that matches it, then applies `edit`. */
function addPrebuilt(root: string, target: string, bytes: Buffer, edit: Partial<PrebuiltMeta> = {}): string {
  const [platform, arch] = target.split('-');
  const dir = join(root, 'prebuilds', target);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'lvunet_edge.node'), bytes);
  const meta: PrebuiltMeta = {
    platform,
    arch,
    napi: 8,
    glibc: '2.36',
    glibcRequired: '2.34',
    glibcxxRequired: '3.4.29',
    compiler: 'c++ (Debian 12.2.0-14) 12.2.0',
    commit: '0123456789abcdef0123456789abcdef01234567',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    builtAt: '2026-11-25T00:00:00.000Z',
    ...edit,
  };
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta, null, 2));
  return dir;
}

function tempRoot(t: Test): string {
  const root = mkdtempSync(join(tmpdir(), 'lvunet-prebuilds-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

/** A package root with linux-x64 and linux-arm64 prebuilts (fake bytes). */
function fleetRoot(t: Test): string {
  const root = tempRoot(t);
  addPrebuilt(root, 'linux-x64', Buffer.from('x64 addon'));
  addPrebuilt(root, 'linux-arm64', Buffer.from('arm64 addon'));
  return root;
}

t.test('compareVersions orders dotted versions numerically', async (t) => {
  t.equal(compareVersions('2.9', '2.36'), -1);
  t.equal(compareVersions('2.36', '2.36.0'), 0);
  t.equal(compareVersions('3.4.30', '3.4.29'), 1);
});

t.test('a matching prebuilt is chosen', async (t) => {
  const root = fleetRoot(t);
  const r = prebuiltCandidate(root, 'linux', 'arm64', HOST);
  t.equal(r.status, 'found');
  if (r.status !== 'found') return;
  t.equal(r.path, join(root, 'prebuilds', 'linux-arm64', 'lvunet_edge.node'));
  t.equal(r.meta.glibcRequired, '2.34');
  t.same(availablePrebuilds(root), ['linux-arm64', 'linux-x64']);
});

t.test('no prebuilt for this target: the message lists the available ones and how to build', async (t) => {
  const r = prebuiltCandidate(fleetRoot(t), 'linux', 'riscv64', HOST);
  t.equal(r.status, 'missing');
  t.equal(
    r.status === 'missing' ? r.message : '',
    'no prebuilt binary for linux-riscv64 (available: linux-arm64, linux-x64); build from source with npm run build:native (needs cmake and a C++17 compiler)',
  );
  const none = prebuiltCandidate(tempRoot(t), 'linux', 'x64', HOST);
  t.match(none.status === 'missing' ? none.message : '', /^no prebuilt binary for linux-x64 \(available: none\); build from source/);
});

t.test('a prebuilt needing a newer glibc than the host has is refused, naming both versions', async (t) => {
  const root = fleetRoot(t);
  const r = prebuiltCandidate(root, 'linux', 'x64', { glibc: '2.31', napi: 9 });
  t.equal(r.status, 'incompatible');
  if (r.status !== 'incompatible') return;
  t.equal(r.reason, 'the prebuilt binary for linux-x64 needs glibc >= 2.34 but this system has glibc 2.31');
  t.equal(r.message, `${r.reason}; ${BUILD_FROM_SOURCE_HINT}`);
  // Equal is enough: glibc keeps old symbol versions, so a 2.34 floor runs on 2.34.
  t.equal(prebuiltCandidate(root, 'linux', 'x64', { glibc: '2.34', napi: 9 }).status, 'found');
});

t.test('without glibcRequired the toolchain glibc is the floor', async (t) => {
  const root = tempRoot(t);
  addPrebuilt(root, 'linux-x64', Buffer.from('a'), { glibcRequired: null, glibc: '2.36' });
  const r = prebuiltCandidate(root, 'linux', 'x64', { glibc: '2.35', napi: 9 });
  t.match(r.status === 'incompatible' ? r.reason : '', /needs glibc >= 2\.36 but this system has glibc 2\.35/);
});

t.test('other refusals: musl, old N-API, checksum, meta for another target, no meta', async (t) => {
  const root = tempRoot(t);
  addPrebuilt(root, 'linux-x64', Buffer.from('a'));
  const musl = prebuiltCandidate(root, 'linux', 'x64', { glibc: null, napi: 9 });
  t.match(musl.status === 'incompatible' ? musl.reason : '', /needs glibc >= 2\.34 but this system has no glibc/);
  const napi = prebuiltCandidate(root, 'linux', 'x64', { glibc: '2.36', napi: 7 });
  t.match(napi.status === 'incompatible' ? napi.reason : '', /needs N-API 8 but this Node\.js .* offers N-API 7/);

  writeFileSync(join(root, 'prebuilds', 'linux-x64', 'lvunet_edge.node'), 'truncated');
  const sha = prebuiltCandidate(root, 'linux', 'x64', HOST);
  t.match(sha.status === 'incompatible' ? sha.reason : '', /does not match the sha256 in its meta\.json/);

  addPrebuilt(root, 'linux-arm64', Buffer.from('b'), { arch: 'x64' });
  const other = prebuiltCandidate(root, 'linux', 'arm64', HOST);
  t.match(other.status === 'incompatible' ? other.reason : '', /describes linux-x64, not linux-arm64/);

  rmSync(join(root, 'prebuilds', 'linux-arm64', 'meta.json'));
  const noMeta = prebuiltCandidate(root, 'linux', 'arm64', HOST);
  t.match(noMeta.status === 'incompatible' ? noMeta.reason : '', /cannot be checked: .*meta\.json/);
});

t.test('readPrebuiltMeta names the bad field', async (t) => {
  const root = tempRoot(t);
  const dir = addPrebuilt(root, 'linux-x64', Buffer.from('a'), { glibc: 'two' as string });
  t.throws(() => readPrebuiltMeta(dir), /meta\.json: glibc is missing or invalid/);
});

t.test('prebuild.mjs findPrebuilt (used by npm install) decides exactly as prebuiltCandidate', async (t) => {
  const { findPrebuilt } = await prebuildModule();
  const root = fleetRoot(t);
  addPrebuilt(root, 'linux-ppc64', Buffer.from('c'), { glibcRequired: '2.99' });
  addPrebuilt(root, 'linux-s390x', Buffer.from('d'), { napi: 10 });
  addPrebuilt(root, 'linux-mips64el', Buffer.from('e'), { sha256: '0'.repeat(64) });
  for (const arch of ['x64', 'arm64', 'riscv64', 'ppc64', 's390x', 'mips64el']) {
    for (const host of [HOST, { glibc: '2.31', napi: 9 }, { glibc: null, napi: 9 }]) {
      const ts = prebuiltCandidate(root, 'linux', arch, host);
      const js = findPrebuilt(root, 'linux', arch, host);
      const { meta: _tsMeta, ...tsRest } = ts.status === 'found' ? ts : { ...ts, meta: undefined };
      const { meta: _jsMeta, ...jsRest } = js.status === 'found' ? js : { ...js, meta: undefined };
      t.same(jsRest, tsRest, `${arch}, glibc ${host.glibc}`);
    }
  }
});

t.test('npm install (build.mjs --install) uses a matching prebuilt instead of compiling', async (t) => {
  const root = tempRoot(t);
  mkdirSync(join(root, 'native', 'scripts'), { recursive: true });
  copyFileSync(BUILD_SCRIPT, join(root, 'native', 'scripts', 'build.mjs'));
  copyFileSync(PREBUILD_SCRIPT, join(root, 'native', 'scripts', 'prebuild.mjs'));
  const target = `${process.platform}-${process.arch}`;
  const host = hostRuntime();
  addPrebuilt(root, target, Buffer.from('addon'), { glibcRequired: host.glibc === null ? null : '2.17', glibc: host.glibc === null ? null : '2.17' });
  // A cmake that cannot exist: reaching the compile step shows up as "cmake was not found".
  const env = { ...process.env, CMAKE: join(root, 'no-cmake'), LVUNET_EDGE_SKIP_NATIVE: '', LVUNET_EDGE_BUILD_FROM_SOURCE: '' };
  const run = (extra: Record<string, string> = {}): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [join(root, 'native', 'scripts', 'build.mjs'), '--install'], { cwd: root, encoding: 'utf8', env: { ...env, ...extra } });

  const used = run();
  t.equal(used.status, 0, String(used.stderr));
  t.match(String(used.stdout), `using the prebuilt addon ${join(root, 'prebuilds', target, 'lvunet_edge.node')}`);
  t.notOk(existsSync(join(root, 'build')), 'nothing compiled');

  const forced = run({ LVUNET_EDGE_BUILD_FROM_SOURCE: '1' });
  t.equal(forced.status, 1);
  t.match(String(forced.stderr), /`cmake` was not found/, 'LVUNET_EDGE_BUILD_FROM_SOURCE=1 compiles');

  addPrebuilt(root, target, Buffer.from('addon'), { glibcRequired: '99.0' });
  const tooNew = run();
  t.equal(tooNew.status, 1);
  t.match(String(tooNew.stdout), new RegExp(`the prebuilt binary for ${target} needs glibc >= 99\\.0 .*; compiling the addon`));
  t.match(String(tooNew.stderr), /`cmake` was not found/);

  rmSync(join(root, 'prebuilds'), { recursive: true });
  const none = run();
  t.match(String(none.stdout), `no prebuilt binary for ${target} (available: none); compiling the addon`);
});

// A cold prebuild.mjs run takes about 70 s here, so the test reuses the addon npm install compiled.
const BUILT = join(REPO_ROOT, 'build', 'Release', 'lvunet_edge.node');
t.test('the real addon, laid out as a prebuilt, is chosen and loads', { skip: existsSync(BUILT) ? false : 'build/Release/lvunet_edge.node is not built (npm run build:native)' }, async (t) => {
  const built = BUILT;
  const { symbolVersionFloor } = await prebuildModule();
  const bytes = readFileSync(built);
  const glibcRequired = symbolVersionFloor(bytes, 'GLIBC_');
  t.match(glibcRequired ?? '', /^2\.\d+$/, 'the ELF names its GLIBC_ symbol versions');
  t.match(symbolVersionFloor(bytes, 'GLIBCXX_') ?? '', /^3\.4\.\d+$/);
  const root = tempRoot(t);
  addPrebuilt(root, `${process.platform}-${process.arch}`, bytes, { glibcRequired });
  const r = prebuiltCandidate(root);
  t.equal(r.status, 'found', r.status === 'found' ? '' : r.message);
  if (r.status !== 'found') return;
  const binding = createRequire(import.meta.url)(r.path) as { frameByteLength(format: string, w: number, h: number): number };
  t.equal(binding.frameByteLength('YUYV', 4, 2), 16);
});
