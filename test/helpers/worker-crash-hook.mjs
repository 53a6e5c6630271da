/**
 * Fault injection for the `run` crash drills, kept out of production code: load it with
 * NODE_OPTIONS="--import <file URL of this module>" and LVUNET_TEST_WORKER_CRASH=<file> (forked
 * workers inherit both). When the file holds a command name, the worker process dies by SIGKILL on
 * receiving that command, once (the file is removed), as a native crash inside ONNX Runtime would
 * kill it. Only a process with an IPC channel (the worker) ever receives commands; the supervisor
 * loads this module too and it does nothing there.
 */
import { readFileSync, rmSync } from 'node:fs';

const file = process.env.LVUNET_TEST_WORKER_CRASH;
if (file && process.send) {
  // Seen through process.emit, not a 'message' listener: a listener added now would start reading
  // the channel before the worker's own listener exists, and the worker would never see `start`.
  // The check runs as the message is emitted, before the worker handles it (on the next turn).
  const emit = process.emit;
  process.emit = function (name, m, ...rest) {
    if (name === 'message' && typeof m === 'object' && m !== null && m.type === 'command') crashOn(m.name);
    return emit.call(this, name, m, ...rest);
  };
}

function crashOn(name) {
  let wanted;
  try {
    wanted = readFileSync(file, 'utf8').trim();
  } catch {
    return;
  }
  if (wanted !== name) return;
  rmSync(file, { force: true });
  process.stderr.write(`crash drill: dying on ${name}\n`);
  process.kill(process.pid, 'SIGKILL');
}
