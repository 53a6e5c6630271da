#!/usr/bin/env node
// Builds the native addon as a prebuilt binary for shipping:
//
//   node native/scripts/prebuild.mjs [--arch x64|arm64] [--out ROOT]
//
// writes ROOT/prebuilds/<platform>-<arch>/lvunet_edge.node and meta.json (N-API version, the
// toolchain's glibc, the highest GLIBC_/GLIBCXX_ symbol versions the binary needs, compiler, git
// commit, sha256). ROOT defaults to this package. arm64 on an x86-64 machine is cross-compiled with
// native/toolchains/aarch64-linux-gnu.cmake (Debian: apt-get install g++-aarch64-linux-gnu); the
// build folder is .cache/prebuild/<platform>-<arch>, so rebuilds are incremental.
//
// Imported by build.mjs for findPrebuilt(), the plain-JavaScript twin of prebuiltCandidate() in
// src/runtime/native/prebuilds.ts (npm install runs before TypeScript is compiled).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD_FROM_SOURCE_HINT = 'build from source with npm run build:native (needs cmake and a C++17 compiler)';

export function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

export function hostRuntime() {
  const glibc = process.report.getReport().header?.glibcVersionRuntime;
  return { glibc: typeof glibc === 'string' ? glibc : null, napi: Number(process.versions.napi) };
}

/** Highest `<prefix>x.y[.z]` symbol version named in an ELF file (null if none): what its loader demands. */
export function symbolVersionFloor(bytes, prefix) {
  const re = new RegExp(`${prefix}(\\d+(?:\\.\\d+)+)\\0`, 'g');
  let best = null;
  for (const m of bytes.toString('latin1').matchAll(re)) {
    if (best === null || compareVersions(m[1], best) > 0) best = m[1];
  }
  return best;
}

/** Same decision and messages as prebuiltCandidate() in src/runtime/native/prebuilds.ts. */
export function findPrebuilt(root, platform = process.platform, arch = process.arch, host = hostRuntime()) {
  const target = `${platform}-${arch}`;
  const dir = join(root, 'prebuilds', target);
  const path = join(dir, 'lvunet_edge.node');
  if (!existsSync(path)) {
    const base = join(root, 'prebuilds');
    const available = existsSync(base)
      ? readdirSync(base, { withFileTypes: true })
          .filter((e) => e.isDirectory() && existsSync(join(base, e.name, 'lvunet_edge.node')))
          .map((e) => e.name)
          .sort()
      : [];
    return {
      status: 'missing',
      target,
      available,
      message: `no prebuilt binary for ${target} (available: ${available.length > 0 ? available.join(', ') : 'none'}); ${BUILD_FROM_SOURCE_HINT}`,
    };
  }
  const refuse = (reason) => ({ status: 'incompatible', target, path, reason, message: `${reason}; ${BUILD_FROM_SOURCE_HINT}` });
  let meta;
  try {
    meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  } catch (err) {
    return refuse(`the prebuilt binary for ${target} cannot be checked: ${join(dir, 'meta.json')}: ${err.message}`);
  }
  if (meta.platform !== platform || meta.arch !== arch) return refuse(`${join(dir, 'meta.json')} describes ${meta.platform}-${meta.arch}, not ${target}`);
  const needs = meta.glibcRequired ?? meta.glibc ?? null;
  if (needs !== null) {
    if (host.glibc === null) return refuse(`the prebuilt binary for ${target} needs glibc >= ${needs} but this system has no glibc (musl?)`);
    if (compareVersions(host.glibc, needs) < 0) return refuse(`the prebuilt binary for ${target} needs glibc >= ${needs} but this system has glibc ${host.glibc}`);
  }
  if (!(host.napi >= meta.napi)) return refuse(`the prebuilt binary for ${target} needs N-API ${meta.napi} but this Node.js (${process.version}) offers N-API ${host.napi}`);
  const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
  if (sha !== meta.sha256) return refuse(`${path} does not match the sha256 in its meta.json (damaged or replaced)`);
  return { status: 'found', target, path, meta };
}

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout || r.stderr).split('\n')[0].trim() : undefined;
}

/** glibc version of a compiler's target C library, from its own <features.h> (works for cross compilers). */
function toolchainGlibc(cxx) {
  const r = spawnSync(cxx, ['-x', 'c++', '-E', '-dM', '-'], { input: '#include <features.h>\n', encoding: 'utf8' });
  if (r.status !== 0) return null;
  const major = /#define __GLIBC__ (\d+)/.exec(r.stdout);
  const minor = /#define __GLIBC_MINOR__ (\d+)/.exec(r.stdout);
  return major && minor ? `${major[1]}.${minor[1]}` : null;
}

// What the binary is compiled from; other edits (docs, this script) do not make it "-dirty".
const ADDON_SOURCES = ['native/core', 'native/binding', 'native/CMakeLists.txt', 'native/toolchains', 'native/third_party'];

function gitCommit() {
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: packageRoot, encoding: 'utf8' });
  if (head.status !== 0) return null;
  const dirty = spawnSync('git', ['status', '--porcelain', '--', ...ADDON_SOURCES], { cwd: packageRoot, encoding: 'utf8' });
  return head.stdout.trim() + (dirty.status === 0 && dirty.stdout.trim() !== '' ? '-dirty' : '');
}

function napiVersion() {
  const m = /-DNAPI_VERSION=(\d+)/.exec(readFileSync(join(packageRoot, 'native', 'CMakeLists.txt'), 'utf8'));
  if (!m) fail('NAPI_VERSION not found in native/CMakeLists.txt');
  return Number(m[1]);
}

function main(argv) {
  let arch = process.arch;
  let out = packageRoot;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--arch') arch = argv[++i];
    else if (argv[i] === '--out') out = resolve(argv[++i] ?? '');
    else if (argv[i] === '--help' || argv[i] === '-h') {
      console.log('usage: node native/scripts/prebuild.mjs [--arch x64|arm64] [--out ROOT]');
      return;
    } else fail(`unknown argument ${argv[i]}`);
  }
  if (process.platform !== 'linux') fail('prebuilds are made on Linux only (the addon uses V4L2, sd_notify and dlopen)');
  if (arch !== 'x64' && arch !== 'arm64') fail(`--arch must be x64 or arm64, not ${arch}`);

  const cross = arch !== process.arch;
  if (cross && arch !== 'arm64') fail(`cross-compiling for ${arch} from ${process.arch} is not set up (only x64 -> arm64 is)`);
  // The compiler CMake will pick: the toolchain file's when crossing, else $CXX or c++.
  const cxx = cross ? 'aarch64-linux-gnu-g++' : (process.env.CXX ?? 'c++');
  const compiler = firstLine(cxx, ['--version']);
  if (!compiler) fail(`${cxx} not found${cross ? ' (Debian/Ubuntu: apt-get install g++-aarch64-linux-gnu)' : ' (set CXX, or apt-get install g++)'}`);
  if (!firstLine(process.env.CMAKE ?? 'cmake', ['--version'])) fail('cmake not found (apt-get install cmake)');

  const target = `linux-${arch}`;
  const buildDir = join(packageRoot, '.cache', 'prebuild', target);
  const cmakeJs = join(dirname(createRequire(import.meta.url).resolve('cmake-js')), '..', 'bin', 'cmake-js');
  console.log(`prebuild: ${target} with ${compiler}${cross ? ' (cross)' : ''} in ${buildDir}`);
  const r = spawnSync(
    process.execPath,
    [
      cmakeJs, 'compile', '-d', 'native', '-O', buildDir, '--log-level', 'warn',
      ...(cross ? [`--CDCMAKE_TOOLCHAIN_FILE=${join(packageRoot, 'native', 'toolchains', 'aarch64-linux-gnu.cmake')}`] : []),
    ],
    { cwd: packageRoot, stdio: 'inherit' },
  );
  if (r.status !== 0) fail(`cmake-js exited with ${r.status ?? r.signal}; the compiler output is above`);
  const built = join(buildDir, 'Release', 'lvunet_edge.node');
  if (!existsSync(built)) fail(`the build finished but ${built} is missing`);

  const bytes = readFileSync(built);
  const elfMachine = bytes.readUInt16LE(18);
  const expected = arch === 'arm64' ? 183 : 62; // EM_AARCH64, EM_X86_64
  if (bytes.readUInt32BE(0) !== 0x7f454c46 || elfMachine !== expected) fail(`${built} is not an ELF file for ${arch} (e_machine ${elfMachine})`);

  const meta = {
    platform: 'linux',
    arch,
    napi: napiVersion(),
    glibc: toolchainGlibc(cxx),
    glibcRequired: symbolVersionFloor(bytes, 'GLIBC_'),
    glibcxxRequired: symbolVersionFloor(bytes, 'GLIBCXX_'),
    compiler,
    // Image builds have no .git (.dockerignore): they pass the commit in LVUNET_EDGE_COMMIT.
    commit: process.env.LVUNET_EDGE_COMMIT || gitCommit(),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    builtAt: new Date().toISOString(),
  };
  const dest = join(out, 'prebuilds', target);
  mkdirSync(dest, { recursive: true });
  // Addon first, meta last, each via rename: a reader never sees a meta.json whose sha256 belongs to another file.
  copyFileSync(built, join(dest, 'lvunet_edge.node.tmp'));
  renameSync(join(dest, 'lvunet_edge.node.tmp'), join(dest, 'lvunet_edge.node'));
  writeFileSync(join(dest, 'meta.json.tmp'), JSON.stringify(meta, null, 2) + '\n');
  renameSync(join(dest, 'meta.json.tmp'), join(dest, 'meta.json'));
  console.log(`prebuild: wrote ${join(dest, 'lvunet_edge.node')} (${bytes.length} bytes, glibc >= ${meta.glibcRequired}, sha256 ${meta.sha256.slice(0, 16)}...)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
