/**
 * Records every module a Node process loads, for tests that check what a process pulls in (e.g. that
 * the `run` supervisor never loads tfjs or onnxruntime-node). Load it with
 * NODE_OPTIONS="--import <file URL of this module>" and LVUNET_MODULE_LOG=<dir>: each process (the
 * supervisor and its forked workers inherit NODE_OPTIONS) writes <dir>/<pid>.txt, one URL or path a
 * line: ESM modules as the loader's hooks see them (CommonJS modules imported from ESM included), then
 * at exit every CommonJS module in require's cache (modules required from CommonJS code, native
 * addons), which the ESM hooks of Node 20 never see.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { join } from 'node:path';

const dir = process.env.LVUNET_MODULE_LOG;
if (dir) {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${process.pid}.txt`);
  register('./module-recorder-hooks.mjs', import.meta.url, { data: { file } });
  const cache = createRequire(import.meta.url).cache;
  process.on('exit', () => {
    const paths = Object.keys(cache);
    appendFileSync(file, paths.length ? `${paths.join('\n')}\n` : '');
  });
}
