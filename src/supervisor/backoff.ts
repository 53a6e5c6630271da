/**
 * Restart pacing for the worker: exponential backoff between restarts, and a crash-loop limit so a
 * worker that cannot stay up makes the supervisor give up loudly (and systemd's own policy takes
 * over) instead of spinning forever.
 */
export interface RestartPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  /** Give up after this many restarts within `crashLoopWindowMs`. */
  readonly crashLoopMax: number;
  readonly crashLoopWindowMs: number;
  /** A worker that ran this long without dying resets the backoff. */
  readonly healthyAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialMs: 200,
  maxMs: 30_000,
  crashLoopMax: 5,
  crashLoopWindowMs: 60_000,
  healthyAfterMs: 30_000,
};

export type RestartDecision = { restart: true; delayMs: number; attempt: number } | { restart: false; reason: string };

export class RestartTracker {
  private restarts: number[] = [];
  private attempt = 0;

  constructor(
    private readonly policy: RestartPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** Call when a worker exits unexpectedly; `ranMs` is how long it had been up. */
  onCrash(ranMs: number): RestartDecision {
    const t = this.now();
    if (ranMs >= this.policy.healthyAfterMs) this.attempt = 0;
    this.restarts = this.restarts.filter((r) => t - r < this.policy.crashLoopWindowMs);
    if (this.restarts.length >= this.policy.crashLoopMax) {
      return {
        restart: false,
        reason: `crash loop: ${this.restarts.length} restarts within ${Math.round(this.policy.crashLoopWindowMs / 1000)} s`,
      };
    }
    this.restarts.push(t);
    const delayMs = Math.min(this.policy.maxMs, this.policy.initialMs * 2 ** this.attempt);
    this.attempt++;
    return { restart: true, delayMs, attempt: this.attempt };
  }
}
