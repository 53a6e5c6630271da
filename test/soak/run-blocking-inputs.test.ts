// issue 18 finding 8, on the real `lvunet-edge run` (supervisor + worker): a FIFO as the model hung
// the run without naming anything, and a worker blocked in a read made SIGTERM wait for the whole
// drain timeout with no word of why. Now the model FIFO is refused at once by name, and a blocked
// worker is killed as soon as it goes silent after the stop request, with a message saying so.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { REPO_ROOT } from '../helpers/paths.js';
import { ensureStopped, startRun, stateDir, type RunProcess } from '../integration/run-helpers.js';

const BLOCK_HOOK = pathToFileURL(join(REPO_ROOT, 'test', 'helpers', 'worker-block-hook.mjs')).href;

const hasMkfifo = spawnSync('mkfifo', ['--version']).status === 0;
const skip = hasMkfifo ? false : 'mkfifo is not available';

/** The exit code, or a failure naming what the run printed if it does not exit within `ms`. */
async function exitWithin(p: RunProcess, ms: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('still running'), ms);
  });
  const r = await Promise.race([p.exited, late]);
  clearTimeout(timer);
  return r;
}

t.test('a FIFO as --model is refused at once, naming it (no hang)', { skip }, async (t) => {
  const dir = stateDir(t, 'fifo-model');
  const fifo = join(dir, 'model.onnx');
  spawnSync('mkfifo', [fifo]);
  const p = startRun(['--model', fifo, '--source', 'synthetic', '--max-frames', '3', '--sink', 'none'], { LVUNET_STATE_DIR: dir });
  t.teardown(() => ensureStopped(p));
  // Nobody writes to the FIFO: before the fix this run never ended.
  const code = await exitWithin(p, 60_000);
  t.equal(code, 1, p.stderr());
  t.match(p.stderr(), `${fifo}: model file is a FIFO, not a regular file; refusing to read it`);
});

t.test('SIGTERM while the worker is stuck in a call that never returns: prompt exit with a clear message', async (t) => {
  const dir = stateDir(t, 'blocked-worker');
  const p = startRun(['--demo', '--sink', 'none'], {
    LVUNET_STATE_DIR: dir,
    // Far longer than the test may take: only the silence rule can end this stop in time.
    LVUNET_SUPERVISOR_DRAIN_TIMEOUT_S: '600',
    // Test-only preload: the worker blocks for good when asked to stop (test/helpers/worker-block-hook.mjs).
    NODE_OPTIONS: `--import ${BLOCK_HOOK}`,
    LVUNET_TEST_WORKER_BLOCK: '1',
  });
  t.teardown(() => ensureStopped(p));
  await p.waitStderr(/worker pid \d+ ready/, 90_000);
  p.child.kill('SIGTERM');
  const code = await exitWithin(p, 60_000);
  t.equal(code, 0, p.stderr());
  t.match(p.stderr(), /block drill: the worker stops answering/, 'the worker really was stuck');
  t.match(p.stderr(), /SIGTERM: stopping capture/);
  t.match(p.stderr(), /worker pid \d+ killed \(SIGKILL\): sent nothing for 3000 ms after the stop request \(stuck in a call that does not return/);
});

t.test('a FIFO as a frame source is refused at once, naming it', { skip }, async (t) => {
  const dir = stateDir(t, 'fifo-source');
  const fifo = join(dir, 'frames.raw');
  spawnSync('mkfifo', [fifo]);
  const p = startRun(['--demo', '--source', `file:${fifo}`, '--width', '64', '--height', '64', '--format', 'rgb24', '--sink', 'none'], { LVUNET_STATE_DIR: dir });
  t.teardown(() => ensureStopped(p));
  const code = await exitWithin(p, 60_000);
  t.not(code, 0, 'the run ends instead of waiting for a writer');
  t.not(code, 'still running');
  t.match(p.stderr(), `${fifo} is a FIFO: only regular files are read as frames`);
});
