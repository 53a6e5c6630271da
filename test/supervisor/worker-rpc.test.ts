// WorkerRpc: request/response to the worker with injected timers (no real waiting).
import t from 'tap';

import type { SupervisorMessage } from '../../src/supervisor/ipc.js';
import { WorkerRpc, workerExited, type RpcTimers } from '../../src/supervisor/worker-rpc.js';

/** Timers that fire only when the test says so. */
function manualTimers(): RpcTimers & { fire(): void; armed(): number } {
  let next = 0;
  const armed = new Map<number, () => void>();
  return {
    setTimeout: (fn) => {
      armed.set(++next, fn);
      return next;
    },
    clearTimeout: (h) => {
      armed.delete(h as number);
    },
    fire: () => {
      for (const [h, fn] of [...armed]) {
        armed.delete(h);
        fn();
      }
    },
    armed: () => armed.size,
  };
}

function rpcWith(accept = true): { rpc: WorkerRpc; sent: SupervisorMessage[]; timers: ReturnType<typeof manualTimers> } {
  const sent: SupervisorMessage[] = [];
  const timers = manualTimers();
  const rpc = new WorkerRpc({ send: (m) => (sent.push(m), accept), workerState: () => 'restarting', timers });
  return { rpc, sent, timers };
}

t.test('a reply settles the command with that id, with its result', async (t) => {
  const { rpc, sent, timers } = rpcWith();
  const a = rpc.ask('status', {});
  const b = rpc.ask('snapshot', { maxBytes: 10 });
  t.same(sent, [
    { type: 'command', id: 'c0', name: 'status', args: {} },
    { type: 'command', id: 'c1', name: 'snapshot', args: { maxBytes: 10 } },
  ]);
  rpc.onReply({ id: 'c1', ok: true, result: 'png' });
  rpc.onReply({ id: 'c0', ok: true, result: { pid: 7 } });
  t.same(await a, { pid: 7 });
  t.equal(await b, 'png');
  t.equal(rpc.outstanding, 0);
  t.equal(timers.armed(), 0, 'the answered commands leave no timer behind');
});

t.test('a refusal rejects with the worker error and keeps its details', async (t) => {
  const { rpc } = rpcWith();
  const p = rpc.ask('prepare-model', { token: 'm0' });
  rpc.onReply({ id: 'c0', ok: false, error: 'model sha256 is x', details: { step: 'hash', file: 'm.onnx' } });
  const err = await p.then(() => undefined, (e: unknown) => e as Error & { details?: unknown });
  t.equal(err?.message, 'model sha256 is x');
  t.same(err?.details, { step: 'hash', file: 'm.onnx' });
  t.notOk(workerExited(err));
});

t.test('no reply in time: a timeout error naming the command; a late reply is ignored', async (t) => {
  const { rpc, timers } = rpcWith();
  const p = rpc.ask('commit-model', {}, 60_000);
  timers.fire();
  await t.rejects(p, /worker did not answer commit-model within 60000 ms/);
  rpc.onReply({ id: 'c0', ok: true, result: 1 });
  t.equal(rpc.outstanding, 0);
});

t.test('a worker exit rejects everything pending, flagged as workerExited', async (t) => {
  const { rpc, timers } = rpcWith();
  const a = rpc.ask('self-test-model', {});
  const b = rpc.ask('status', {});
  rpc.onExit(null, 'SIGKILL');
  const ea = await a.then(() => undefined, (e: unknown) => e as Error);
  t.equal(ea?.message, 'the worker exited (signal SIGKILL) before answering self-test-model');
  t.ok(workerExited(ea));
  await t.rejects(b, /exited \(signal SIGKILL\) before answering status/);
  t.equal(timers.armed(), 0);
  const c = rpc.ask('status', {});
  rpc.onExit(3, null);
  await t.rejects(c, /the worker exited \(exit code 3\) before answering status/);
});

t.test('no worker to send to: rejected at once with its state', async (t) => {
  const { rpc, timers } = rpcWith(false);
  await t.rejects(rpc.ask('status', {}), /worker is not running \(restarting\): try again shortly/);
  t.equal(rpc.outstanding, 0);
  t.equal(timers.armed(), 0);
});

t.test('close() stops the timers of what is still pending', async (t) => {
  const { rpc, timers } = rpcWith();
  void rpc.ask('status', {}).catch(() => undefined);
  t.equal(timers.armed(), 1);
  rpc.close();
  t.equal(timers.armed(), 0);
});
