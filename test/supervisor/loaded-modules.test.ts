// What `lvunet-edge run` loads: the supervisor (the systemd service's main process) must not load tfjs
// or onnxruntime-node (which loads a second libonnxruntime at import); the worker runs ONNX Runtime
// through the native addon only. Help text loads no command module at all.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

import { runCli } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { ensureStopped, resultLines, startRun, stateDir } from '../integration/run-helpers.js';

const DIST = join(REPO_ROOT, 'dist');
const RECORDER = pathToFileURL(join(REPO_ROOT, 'test', 'helpers', 'module-recorder.mjs')).href;

/** Each recorded process's loaded modules (file paths or URLs, without duplicates), by pid. */
function loadedByPid(dir: string): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const f of readdirSync(dir)) {
    const lines = readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== '');
    out.set(Number(f.replace(/\.txt$/, '')), [...new Set(lines)]);
  }
  return out;
}

const heavy = (modules: string[]): string[] => modules.filter((m) => /[\\/]@tensorflow[\\/]|[\\/]onnxruntime-(node|common)[\\/]/.test(m));

t.test('run: the supervisor loads neither tfjs nor onnxruntime-node, nor does the worker', async (t) => {
  const state = stateDir(t, 'loaded-modules');
  const log = join(state, 'modules');
  const p = startRun(['--demo', '--max-frames', '2'], { LVUNET_STATE_DIR: state, LVUNET_MODULE_LOG: log, NODE_OPTIONS: `--import ${RECORDER}` });
  t.teardown(() => ensureStopped(p));
  t.equal(await p.exited, 0, p.stderr());
  t.equal(resultLines(p.stdout()).length, 2);

  const byPid = loadedByPid(log);
  const supervisor = byPid.get(p.child.pid ?? -1);
  if (!supervisor) throw new Error(`no module log for the supervisor (pid ${p.child.pid}) in ${log}`);
  const workers = [...byPid].filter(([pid]) => pid !== p.child.pid).map(([, m]) => m);
  t.equal(workers.length, 1, 'one worker process was recorded');
  const worker = workers[0] ?? [];

  // The recorder sees both kinds of module, or the absences below would prove nothing.
  t.ok(supervisor.some((m) => m.endsWith(join('src', 'supervisor', 'run-supervised.js'))), 'ESM modules are recorded');
  t.ok(supervisor.some((m) => /[\\/]node_modules[\\/]mqtt[\\/]/.test(m)), 'packages are recorded');
  t.ok(worker.some((m) => m.endsWith('.node')), "the worker's native addon (a CommonJS require) is recorded");

  t.same(heavy(supervisor), [], 'the supervisor loads no tfjs and no onnxruntime-node');
  t.same(heavy(worker), [], 'the worker uses ONNX Runtime through the addon only');
  const view = supervisor.filter((m) => /[\\/]node_modules[\\/](ws|prom-client)[\\/]|[\\/]src[\\/]view[\\/](server|metrics|live-figures)\.js$/.test(m));
  t.same(view, [], 'without --ui the supervisor loads no live-view module, ws or prom-client');
  const ours = (ms: string[]): number => ms.filter((m) => m.startsWith(DIST)).length;
  t.comment(`supervisor: ${supervisor.length} modules (${ours(supervisor)} of this package); worker: ${worker.length} (${ours(worker)}); tap's own hooks included`);
});

t.test('--help loads the usage texts, not the command', async (t) => {
  const state = stateDir(t, 'loaded-modules-help');
  const log = join(state, 'modules');
  for (const command of [['run'], ['train'], ['model', 'quantize']]) {
    const r = runCli([...command, '--help'], 60_000, { LVUNET_MODULE_LOG: join(log, command.join('-')), NODE_OPTIONS: `--import ${RECORDER}` });
    t.equal(r.status, 0, r.stderr);
    t.match(r.stdout, `usage: lvunet-edge ${command.join(' ')}`);
    const [modules = []] = loadedByPid(join(log, command.join('-'))).values();
    // Only this package's modules: under tap, its process-info hook loads into every child too.
    const own = modules.filter((m) => m.startsWith(DIST)).map((m) => relative(DIST, m).split(sep).join('/'));
    t.same(own.sort(), ['src/cli/errors.js', 'src/cli/main.js', 'src/cli/usage.js', 'src/model/release-gates.js', 'src/util/redact.js'], `${command.join(' ')} --help loads the dispatch table and usage texts only`);
    t.same(heavy(modules), [], `${command.join(' ')} --help loads no tfjs or onnxruntime-node`);
  }
});
