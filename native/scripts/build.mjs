#!/usr/bin/env node
// Builds the native addon (build/Release/lvunet_edge.node) from source with cmake-js.
//
//   node native/scripts/build.mjs            build (incremental), as `npm run build:native`
//   node native/scripts/build.mjs --install  the same, run by `npm install`, except that a matching
//                                            prebuilds/<platform>-<arch>/ (native/scripts/prebuild.mjs)
//                                            is used instead of compiling; set
//                                            LVUNET_EDGE_BUILD_FROM_SOURCE=1 to compile anyway, or
//                                            LVUNET_EDGE_SKIP_NATIVE=1 to skip it
//   node native/scripts/build.mjs --debug    Debug configuration (build/Debug)
//
// Nothing is downloaded: Node's headers come from node-api-headers (package.json "binary"
// napi_versions), ONNX Runtime's from native/third_party, and ONNX Runtime itself is dlopen'ed at run
// time. What is needed is cmake >= 3.15, a C++17 compiler and libjpeg-turbo's TurboJPEG library
// (Debian: libturbojpeg0-dev; the addon links libturbojpeg.so.0, package libturbojpeg0, at run time).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { findPrebuilt } from './prebuild.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const install = args.includes('--install');
const debug = args.includes('--debug');

function fail(lines) {
  console.error(['', 'lvunet-edge: cannot build the native addon.', ...lines.map((l) => '  ' + l), ''].join('\n'));
  if (install) console.error('  To install without it (no native runtime), set LVUNET_EDGE_SKIP_NATIVE=1.\n');
  process.exit(1);
}

function works(command, commandArgs = ['--version']) {
  const r = spawnSync(command, commandArgs, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout || r.stderr).split('\n')[0] : undefined;
}

if (install && process.env.LVUNET_EDGE_SKIP_NATIVE === '1') {
  console.log('lvunet-edge: LVUNET_EDGE_SKIP_NATIVE=1, not building the native addon');
  process.exit(0);
}

// Only `npm install` prefers a prebuilt: `npm run build:native` is an explicit request to compile.
if (install && process.env.LVUNET_EDGE_BUILD_FROM_SOURCE !== '1') {
  const prebuilt = findPrebuilt(root);
  if (prebuilt.status === 'found') {
    const m = prebuilt.meta;
    console.log(
      `lvunet-edge: using the prebuilt addon ${prebuilt.path} (N-API ${m.napi}, glibc >= ${m.glibcRequired ?? m.glibc}, ` +
        `commit ${m.commit ?? 'unknown'}); set LVUNET_EDGE_BUILD_FROM_SOURCE=1 to compile instead`,
    );
    process.exit(0);
  }
  console.log(`lvunet-edge: ${prebuilt.reason ?? prebuilt.message.split(';')[0]}; compiling the addon`);
}

const cmake = works(process.env.CMAKE ?? 'cmake');
if (!cmake) {
  fail([
    '`cmake` was not found on PATH (set CMAKE=/path/to/cmake to use another).',
    'Install cmake >= 3.15:  Debian/Ubuntu: sudo apt-get install cmake   macOS: brew install cmake',
  ]);
}
const compilers = process.env.CXX ? [process.env.CXX] : process.platform === 'win32' ? [] : ['c++', 'g++', 'clang++'];
const compiler = compilers.map((c) => works(c)).find(Boolean);
if (process.platform !== 'win32' && !compiler) {
  fail([
    `no C++ compiler found (tried ${compilers.join(', ')}; set CXX to choose one).`,
    'Install a C++17 compiler:  Debian/Ubuntu: sudo apt-get install g++   macOS: xcode-select --install',
  ]);
}

// MJPEG frames are decoded by libjpeg-turbo's TurboJPEG library (native/core/jpeg_decode.cc); there is
// no fallback decoder, so say what to install before cmake fails on it (native/CMakeLists.txt checks
// the same, for builds that do not come through here).
const turbojpegDirs = ['/usr/include', '/usr/local/include', '/opt/homebrew/include', '/opt/libjpeg-turbo/include'];
const turbojpeg =
  process.env.TURBOJPEG_INCLUDE_DIR ??
  turbojpegDirs.find((d) => existsSync(join(d, 'turbojpeg.h'))) ??
  (works('pkg-config', ['--cflags', 'libturbojpeg']) !== undefined ? 'pkg-config' : undefined);
if (!turbojpeg) {
  fail([
    "libjpeg-turbo's TurboJPEG library (turbojpeg.h, libturbojpeg) was not found: the native runtime decodes MJPEG frames with it.",
    'Install it:  Debian/Ubuntu: sudo apt-get install libturbojpeg0-dev   Fedora: sudo dnf install turbojpeg-devel',
    '             Alpine: apk add libjpeg-turbo-dev   macOS: brew install jpeg-turbo',
    `(looked in ${turbojpegDirs.join(', ')} and pkg-config libturbojpeg; set TURBOJPEG_INCLUDE_DIR for another place).`,
  ]);
}

const require = createRequire(import.meta.url);
let cmakeJs;
try {
  cmakeJs = join(dirname(require.resolve('cmake-js')), '..', 'bin', 'cmake-js');
} catch {
  fail(['the cmake-js package is missing: run `npm install` first.']);
}
if (!existsSync(cmakeJs)) fail([`cmake-js is incomplete: ${cmakeJs} is missing; reinstall it.`]);

console.log(`lvunet-edge: building the native addon with ${cmake}${compiler ? ` and ${compiler}` : ''}`);
const r = spawnSync(
  process.execPath,
  [cmakeJs, 'compile', '-d', 'native', '-O', 'build', ...(debug ? ['--debug'] : []), '--log-level', 'warn'],
  { cwd: root, stdio: 'inherit' },
);
if (r.status !== 0) {
  fail([
    `cmake-js exited with ${r.status ?? r.signal}; the compiler output is above.`,
    'A C++17 compiler is required (g++ >= 8, clang >= 7, MSVC 2019+).',
  ]);
}
const out = join(root, 'build', debug ? 'Debug' : 'Release', 'lvunet_edge.node');
if (!existsSync(out)) fail([`the build finished but ${out} is missing.`]);
console.log(`lvunet-edge: built ${out}`);
