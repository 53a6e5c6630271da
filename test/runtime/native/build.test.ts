import t from 'tap';
import { readFileSync } from 'node:fs';
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
  for (const file of ['error.h', 'preprocess.h', 'preprocess.cc', 'postprocess.h', 'postprocess.cc', 'frame_job.h', 'frame_job.cc', 'ort_runtime.h', 'ort_runtime.cc']) {
    t.notMatch(readFileSync(join(root, 'native', 'core', file), 'utf8'), /#include\s*[<"](napi|node_api)\.h/, file);
  }
});
