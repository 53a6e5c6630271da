/**
 * Fault injection for the SIGTERM drill, kept out of production code: load it with
 * NODE_OPTIONS="--import <file URL of this module>" and LVUNET_TEST_WORKER_BLOCK=1. The worker then
 * blocks its thread for good when the supervisor asks it to stop, as a worker stuck in a read or a
 * native call that never returns would: it can neither answer nor exit. The supervisor loads this
 * module too and it does nothing there (no IPC channel).
 */
if (process.env.LVUNET_TEST_WORKER_BLOCK === '1' && process.send) {
  // Seen through process.emit (as the crash hook does): a 'message' listener added this early would
  // start reading the channel before the worker's own listener exists.
  const emit = process.emit;
  process.emit = function (name, m, ...rest) {
    if (name === 'message' && typeof m === 'object' && m !== null && m.type === 'stop') {
      process.stderr.write('block drill: the worker stops answering\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    }
    return emit.call(this, name, m, ...rest);
  };
}
