import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { packageRoot } from '../../../src/runtime/native/binding.js';

const root = packageRoot();

function cmakeSources(): string[] {
  const text = readFileSync(join(root, 'native', 'CMakeLists.txt'), 'utf8');
  const m = /set\(LVUNET_EDGE_SOURCES\s+([^)]*)\)/.exec(text);
  if (!m) throw new Error('LVUNET_EDGE_SOURCES not found in native/CMakeLists.txt');
  return m[1]
    .split(/\s+/)
    .filter((s) => s.length > 0)
    .map((s) => `native/${s}`);
}

interface Gyp {
  targets: { target_name: string; sources: string[]; defines: string[]; cflags_cc: string[] }[];
}

function gyp(): Gyp {
  // binding.gyp is kept strictly JSON (no comments, double quotes) so it can be read here.
  return JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8')) as Gyp;
}

t.test('CMakeLists.txt and binding.gyp build the same sources', async (t) => {
  const target = gyp().targets.find((x) => x.target_name === 'lvunet_edge');
  t.ok(target, 'binding.gyp has the lvunet_edge target');
  t.same([...(target?.sources ?? [])].sort(), cmakeSources().sort());
});

t.test('both builds use N-API 8 and forbid FMA contraction', async (t) => {
  const cmake = readFileSync(join(root, 'native', 'CMakeLists.txt'), 'utf8');
  t.match(cmake, /-DNAPI_VERSION=8/);
  t.match(cmake, /-ffp-contract=off/);
  t.match(cmake, /project\(lvunet_edge\b/);
  const target = gyp().targets[0];
  t.ok(target.defines.includes('NAPI_VERSION=8'));
  t.ok(target.cflags_cc.includes('-ffp-contract=off'));
});

t.test('native/core does not depend on N-API', async (t) => {
  for (const file of ['error.h', 'jpeg_decode.h', 'jpeg_decode.cc', 'preprocess.h', 'preprocess.cc', 'postprocess.h', 'postprocess.cc', 'frame_job.h', 'frame_job.cc', 'ort_runtime.h', 'ort_runtime.cc']) {
    t.notMatch(readFileSync(join(root, 'native', 'core', file), 'utf8'), /#include\s*[<"](napi|node_api)\.h/, file);
  }
});

t.test('libjpeg-turbo is required the same way by every build path, never silently left out', async (t) => {
  const cmake = readFileSync(join(root, 'native', 'CMakeLists.txt'), 'utf8');
  t.match(cmake, /find_library\(TURBOJPEG_LIBRARY/);
  t.match(cmake, /message\(FATAL_ERROR[\s\S]*apt-get install libturbojpeg0-dev/);
  t.match(cmake, /target_link_libraries\([^)]*\$\{TURBOJPEG_LIBRARY\}/);
  t.ok(gyp().targets[0].sources.includes('native/core/jpeg_decode.cc'));
  t.match(readFileSync(join(root, 'binding.gyp'), 'utf8'), /"-lturbojpeg"/);
  t.match(readFileSync(join(root, 'native', 'scripts', 'build.mjs'), 'utf8'), /apt-get install libturbojpeg0-dev/);
  t.match(readFileSync(join(root, 'deploy', 'arm64', 'prepare-node.sh'), 'utf8'), /libturbojpeg0 libturbojpeg0-dev/, 'the arm64 root gets the arm64 packages');
  t.match(readFileSync(join(root, 'native', 'toolchains', 'aarch64-linux-gnu.cmake'), 'utf8'), /ENV\{LVUNET_ARM64_ROOT\}/);
  t.match(readFileSync(join(root, 'scripts', 'test-arm64.mjs'), 'utf8'), /LVUNET_ARM64_ROOT: arm64Root/);
});

const cmakeSkip = spawnSync('cmake', ['--version']).status === 0 ? false : 'cmake not installed';
t.test('without libjpeg-turbo, CMake stops and says how to install it', { skip: cmakeSkip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-cmake-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Hide every place a system libjpeg-turbo could be found.
  const ignore = ['/usr/include', '/usr/local/include', '/usr/lib', '/lib', '/usr/local/lib', `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`, `/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`];
  const r = spawnSync('cmake', ['-S', join(root, 'native'), '-B', dir, `-DCMAKE_IGNORE_PATH=${ignore.join(';')}`], { encoding: 'utf8' });
  t.not(r.status, 0, 'configure fails');
  t.match(r.stderr, /TurboJPEG library was not found/);
  t.match(r.stderr, /apt-get install libturbojpeg0-dev/);
});
