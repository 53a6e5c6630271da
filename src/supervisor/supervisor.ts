/**
 * Keeps one worker process (which holds the native pipeline) running: a native crash takes down the
 * worker, never the supervisor. Restarts with exponential backoff up to a crash-loop limit; a
 * frame-heartbeat watchdog first asks the worker to reopen its source, then restarts it; SIGTERM
 * stops capture, drains in-flight frames and returns once the worker has exited.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { RestartTracker, DEFAULT_RESTART_POLICY, type RestartPolicy } from './backoff.js';
import { isWorkerMessage, workerMessage, type PreviewMessage, type StartupReport, type SupervisorMessage, type WorkerEvent, type WorkerMessage, type WorkerStatsMessage } from './ipc.js';
import type { SystemdNotifier } from './systemd.js';

export interface SupervisorOptions {
  /** The worker's entry module (compiled JS). */
  readonly workerPath: string;
  readonly workerArgs?: readonly string[];
  readonly workerEnv?: NodeJS.ProcessEnv;
  /** Node flags for the worker; by default none (not the supervisor's own, e.g. a test loader). */
  readonly workerExecArgv?: readonly string[];
  /** Sent to each new worker as its `start` message. */
  readonly config: () => unknown;
  /** No frame for this long: ask the worker to reopen its source; as long again: restart it. */
  readonly heartbeatTimeoutMs: number;
  readonly restart?: Partial<RestartPolicy>;
  /** How long a stopping worker may take to drain before it is killed. */
  readonly drainTimeoutMs?: number;
  /**
   * A stopping worker that sends nothing at all for this long (a running one sends stats every
   * second) is stuck in a call that never returns, e.g. a blocking read of a FIFO: it is killed
   * then instead of at the drain timeout, so SIGTERM is honoured promptly. Default 3000.
   */
  readonly stopSilenceMs?: number;
  readonly systemd?: SystemdNotifier;
}

export interface SupervisorEvents {
  ready: [StartupReport];
  result: [Record<string, unknown>];
  event: [WorkerEvent];
  stats: [WorkerStatsMessage];
  /** A live-view picture (only while previews were asked for). */
  preview: [PreviewMessage];
  reply: [{ id: string; ok: boolean; result?: unknown; error?: string; details?: Record<string, unknown> }];
  /** A worker process ended (crash, kill or normal exit); commands it had not answered never will be. */
  exit: [{ code: number | null; signal: NodeJS.Signals | null }];
  /** The worker finished on its own (source exhausted, frame limit) or after stop(). */
  stopped: [{ frames: number; reason: string }];
  fatal: [Error];
}

/**
 * A worker exits with this code when it cannot start for a reason a restart will not fix (model
 * file missing or corrupt, ONNX Runtime library unusable): the supervisor gives up at once instead of
 * crash-looping.
 */
export const EXIT_CONFIG = 2;

type State = 'idle' | 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped' | 'failed';

export class Supervisor extends EventEmitter<SupervisorEvents> {
  private child: ChildProcess | null = null;
  private state: State = 'idle';
  private startedAt = 0;
  private lastFrameAt = 0;
  private reopenAskedAt = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private systemdPing: NodeJS.Timeout | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private readonly tracker: RestartTracker;
  private notifiedReady = false;
  private exitWaiters: Array<() => void> = [];
  /** When the current worker last sent anything (any IPC message). */
  private lastMessageAt = 0;
  /** Worker restarts so far (for telemetry and tests). */
  restarts = 0;
  /** Frames the current and past workers reported. */
  frames = 0;

  constructor(private readonly options: SupervisorOptions) {
    super();
    this.tracker = new RestartTracker({ ...DEFAULT_RESTART_POLICY, ...options.restart });
  }

  get status(): State {
    return this.state;
  }

  get workerPid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.state !== 'idle') throw new Error(`supervisor already ${this.state}`);
    this.spawn();
    const tick = Math.max(50, Math.min(1000, this.options.heartbeatTimeoutMs / 4));
    this.watchdog = setInterval(() => this.checkHeartbeat(), tick);
    const sd = this.options.systemd;
    if (sd?.watchdogIntervalMs) {
      this.systemdPing = setInterval(() => {
        // Only vouch for the service while frames flow; a wedged pipeline should get us restarted.
        if (this.state === 'running' && Date.now() - this.lastFrameAt < this.options.heartbeatTimeoutMs * 2) sd.notify('WATCHDOG=1');
      }, sd.watchdogIntervalMs);
    }
  }

  send(message: SupervisorMessage): boolean {
    if (!this.child?.connected) return false;
    this.child.send(message);
    return true;
  }

  private spawn(): void {
    this.state = 'starting';
    const child = fork(this.options.workerPath, [...(this.options.workerArgs ?? [])], {
      env: this.options.workerEnv ?? process.env,
      execArgv: [...(this.options.workerExecArgv ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    this.startedAt = Date.now();
    this.lastFrameAt = Date.now();
    this.reopenAskedAt = 0;
    child.on('message', (m: unknown) => this.onMessage(child, m));
    child.on('error', (err) => this.emitEvent('fault', 'error', `worker process error: ${err.message}`));
    // 'exit' can come before the last IPC messages are read (a start-up failure's event naming the
    // bad file); the channel's 'disconnect' follows them, so act on whichever comes second.
    let exited: [number | null, NodeJS.Signals | null] | undefined;
    let disconnected = false;
    let settled = false;
    const settle = (): void => {
      if (settled || !exited) return;
      settled = true;
      this.onExit(child, exited[0], exited[1]);
    };
    child.on('disconnect', () => {
      disconnected = true;
      settle();
    });
    child.on('exit', (code, signal) => {
      exited = [code, signal];
      if (disconnected || !child.connected) settle();
      else setTimeout(settle, 1000).unref();
    });
    child.send({ type: 'start', config: this.options.config() } satisfies SupervisorMessage);
  }

  private onMessage(child: ChildProcess, m: unknown): void {
    if (child !== this.child) return;
    this.lastMessageAt = Date.now();
    if (!isWorkerMessage(m)) {
      const errors = workerMessage.errors(m).slice(0, 5);
      this.emitEvent('fault', 'warning', `worker sent a malformed IPC message: ${errors.join('; ')}`, { message: String(JSON.stringify(m)).slice(0, 200), errors });
      return;
    }
    const msg: WorkerMessage = m;
    switch (msg.type) {
      case 'ready':
        // A stop() that arrived during start-up stays in force.
        if (this.state === 'starting') this.state = 'running';
        this.lastFrameAt = Date.now();
        if (!this.notifiedReady) {
          this.notifiedReady = true;
          this.options.systemd?.notify('READY=1');
        }
        this.emit('ready', msg.report);
        break;
      case 'result':
        this.lastFrameAt = Date.now();
        this.reopenAskedAt = 0;
        this.frames++;
        this.emit('result', msg.result);
        break;
      case 'heartbeat':
        this.lastFrameAt = Date.now();
        this.reopenAskedAt = 0;
        break;
      case 'event':
        this.emit('event', msg.event);
        break;
      case 'stats':
        this.emit('stats', msg.stats);
        break;
      case 'preview':
        this.emit('preview', msg);
        break;
      case 'reply':
        this.emit('reply', { id: msg.id, ok: msg.ok, result: msg.result, error: msg.error, details: msg.details });
        break;
      case 'stopped':
        // A worker that finished by itself is about to exit 0: that is the end of the run, not a crash.
        if (this.state !== 'stopping') {
          this.state = 'stopping';
          this.clearTimers();
        }
        this.emit('stopped', { frames: msg.frames, reason: msg.reason });
        break;
    }
  }

  private checkHeartbeat(): void {
    if (this.state !== 'running') return;
    const now = Date.now();
    const timeout = this.options.heartbeatTimeoutMs;
    if (now - this.lastFrameAt < timeout) return;
    if (this.reopenAskedAt === 0) {
      this.reopenAskedAt = now;
      this.emitEvent('fault', 'warning', `no frame for ${Math.round((now - this.lastFrameAt) / 1000)} s: reopening the source`);
      this.send({ type: 'reopen-source' });
    } else if (now - this.reopenAskedAt >= timeout) {
      this.emitEvent('fault', 'error', `no frame for ${Math.round((now - this.lastFrameAt) / 1000)} s after reopening the source: restarting the worker`);
      this.child?.kill('SIGKILL');
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    this.child = null;
    const waiters = this.exitWaiters;
    this.exitWaiters = [];
    waiters.forEach((w) => w());
    this.emit('exit', { code, signal });
    if (this.state === 'stopping' || this.state === 'stopped') {
      this.state = 'stopped';
      return;
    }
    const ranMs = Date.now() - this.startedAt;
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    if (code === EXIT_CONFIG && this.state === 'starting') {
      this.state = 'failed';
      this.clearTimers();
      this.emit('fatal', Object.assign(new Error(`worker could not start (${how}): not restarting, the configuration needs fixing`), { code: 'EWORKERCONFIG' }));
      return;
    }
    const decision = this.tracker.onCrash(ranMs);
    if (!decision.restart) {
      this.state = 'failed';
      this.emitEvent('fault', 'error', `worker died (${how}); giving up: ${decision.reason}`);
      this.clearTimers();
      this.emit('fatal', new Error(`worker crash loop: ${decision.reason}`));
      return;
    }
    this.state = 'restarting';
    this.restarts++;
    this.emitEvent('restart', 'error', `worker died (${how}) after ${(ranMs / 1000).toFixed(1)} s; restarting in ${decision.delayMs} ms (attempt ${decision.attempt})`, {
      code,
      signal,
      delayMs: decision.delayMs,
    });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.state === 'restarting') this.spawn();
    }, decision.delayMs);
  }

  private emitEvent(type: string, severity: WorkerEvent['severity'], message: string, details?: Record<string, unknown>): void {
    this.emit('event', { type, severity, message, ...(details ? { details } : {}) });
  }

  private clearTimers(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.systemdPing) clearInterval(this.systemdPing);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.watchdog = this.systemdPing = this.restartTimer = null;
  }

  /** Graceful stop: the worker stops capture and drains; killed if it takes longer than the drain timeout. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'failed') return;
    if (this.state === 'stopping' && this.child) {
      // Already on its way out (it reported `stopped`, or a stop is in progress): just wait for it.
      await this.awaitExit(this.child, Date.now());
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    this.options.systemd?.notify('STOPPING=1');
    this.clearTimers();
    const child = this.child;
    if (!child) {
      this.state = 'stopped';
      return;
    }
    const stopAt = Date.now();
    if (!this.send({ type: 'stop' })) child.kill('SIGTERM');
    await this.awaitExit(child, stopAt);
    this.state = 'stopped';
  }

  /** Kills the worker now (a second SIGTERM: the operator will not wait for the drain). */
  kill(reason: string): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.emitEvent('fault', 'warning', `worker pid ${child.pid ?? '?'} killed (SIGKILL): ${reason}`);
    child.kill('SIGKILL');
  }

  /** Resolves when `child` has exited; kills it at the drain timeout, or sooner when it has gone silent. */
  private async awaitExit(child: ChildProcess, stopAt: number): Promise<void> {
    const exited = new Promise<void>((resolve) => this.exitWaiters.push(resolve));
    const drainMs = this.options.drainTimeoutMs ?? 10_000;
    const silenceMs = this.options.stopSilenceMs ?? 3000;
    let killed = false;
    const check = setInterval(() => {
      if (killed || child !== this.child) return;
      const now = Date.now();
      let why: string | undefined;
      if (now - stopAt >= drainMs) why = `did not finish draining within ${drainMs} ms of the stop request`;
      else if (now - Math.max(stopAt, this.lastMessageAt) >= silenceMs) {
        why = `sent nothing for ${silenceMs} ms after the stop request (stuck in a call that does not return, e.g. a blocking read)`;
      }
      if (why === undefined) return;
      killed = true;
      this.kill(why);
    }, Math.max(10, Math.min(250, silenceMs / 4)));
    try {
      await exited;
    } finally {
      clearInterval(check);
    }
  }
}
