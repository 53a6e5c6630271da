/**
 * The worker process of `lvunet-edge run` (forked by the Supervisor): it holds ONNX Runtime, the
 * native capture and the pipeline, so a native crash here never takes the supervisor, its MQTT
 * connection or its offline queue down with it. It speaks the JSON IPC protocol of ipc.ts; this
 * entry only connects the process (channel, exit, signals) to a Worker (worker/worker.ts).
 *
 * Exit codes: 0 after `stop` or when the source ends; EXIT_CONFIG (2) when it cannot start for a
 * reason a restart will not fix; 1 on any other failure.
 */
import { redactText } from '../util/redact.js';
import type { WorkerMessage } from './ipc.js';
import { Worker } from './worker/worker.js';

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) {
      resolve();
      return;
    }
    // The callback fires once the message is handed to the channel: exiting before that loses it.
    process.send(message, undefined, {}, () => resolve());
  });
}

const worker = new Worker({
  send,
  exit: (code) => process.exit(code),
  log: (line) => {
    process.stderr.write(`${redactText(line)}\n`);
  },
  pid: process.pid,
});

// Handled on the next turn: Node 20 crashes (child_process.js:732) if a handler for a message that
// was queued before the listener existed disconnects the channel synchronously.
process.on('message', (m: unknown) => setImmediate(() => void worker.handle(m)));
// The supervisor going away (killed with SIGKILL) must not leave an orphan holding the camera.
process.on('disconnect', () => {
  worker.onDisconnect();
  setTimeout(() => process.exit(0), 5000).unref();
});
// systemd sends SIGTERM to the whole control group; the supervisor's `stop` drives our shutdown.
process.on('SIGTERM', () => {});
process.on('SIGINT', () => {});
