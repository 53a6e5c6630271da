/**
 * Typed request/response to the worker over the IPC channel: each command gets an id, a reply
 * settles it, and a reply that never comes (the worker hung, or died meanwhile) settles it with an
 * error instead of leaving the caller waiting forever.
 */
import type { SupervisorMessage } from './ipc.js';

/** A worker's reply (the `reply` IPC message). */
export interface WorkerReply {
  readonly id: string;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
  readonly details?: Record<string, unknown>;
}

export interface RpcTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface WorkerRpcOptions {
  /** Hands a message to the worker; false when there is no worker to take it. */
  readonly send: (message: SupervisorMessage) => boolean;
  /** Said in the error when there is no worker (e.g. "restarting"). */
  readonly workerState: () => string;
  readonly timers?: RpcTimers;
}

/** Rejections for a worker that exited carry this flag: the caller knows no answer can come. */
export type WorkerExitedError = Error & { readonly workerExited: true };

export function workerExited(err: unknown): boolean {
  return (err as { workerExited?: unknown } | null)?.workerExited === true;
}

const REAL_TIMERS: RpcTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

interface Pending {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: unknown;
  readonly name: string;
}

export class WorkerRpc {
  private readonly pending = new Map<string, Pending>();
  private readonly timers: RpcTimers;
  private nextId = 0;

  constructor(private readonly options: WorkerRpcOptions) {
    this.timers = options.timers ?? REAL_TIMERS;
  }

  /** Commands sent and not yet answered. */
  get outstanding(): number {
    return this.pending.size;
  }

  /** Sends command `name`; resolves with the worker's result, rejects with its error (and `details`). */
  ask(name: string, args: unknown, timeoutMs = 10_000): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = `c${this.nextId++}`;
      const timer = this.timers.setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker did not answer ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, name });
      if (!this.options.send({ type: 'command', id, name, args })) {
        this.pending.delete(id);
        this.timers.clearTimeout(timer);
        reject(new Error(`worker is not running (${this.options.workerState()}): try again shortly`));
      }
    });
  }

  /** Settles the command a reply answers; a reply to nothing pending (timed out already) is ignored. */
  onReply(r: WorkerReply): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    this.timers.clearTimeout(p.timer);
    if (r.ok) p.resolve(r.result);
    else p.reject(Object.assign(new Error(r.error ?? 'worker refused the command'), r.details ? { details: r.details } : {}));
  }

  /** A worker that died (a native crash while loading a model, a kill) will never answer. */
  onExit(code: number | null, signal: NodeJS.Signals | null): void {
    for (const [id, p] of [...this.pending]) {
      this.pending.delete(id);
      this.timers.clearTimeout(p.timer);
      const err: WorkerExitedError = Object.assign(new Error(`the worker exited (${signal ? `signal ${signal}` : `exit code ${code}`}) before answering ${p.name}`), { workerExited: true as const });
      p.reject(err);
    }
  }

  /** At the end of a run: stops the timers; what is still pending stays unsettled (nobody waits any more). */
  close(): void {
    for (const p of this.pending.values()) this.timers.clearTimeout(p.timer);
  }
}
