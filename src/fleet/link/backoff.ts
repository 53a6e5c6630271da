/**
 * The link's two waits: between connection attempts (exponential with jitter, so a fleet that lost
 * its broker does not reconnect in lockstep) and after the broker refused a queued message
 * (exponential, capped; the queue holds meanwhile).
 */

/** Delay before the next connection attempt after `attempts` failed ones: min doubling to max, then ±25 % jitter. */
export function reconnectDelayMs(attempts: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempts, 20));
  return Math.round(base * (0.75 + random() * 0.5));
}

/** Pause after the `streak`-th refusal in a row (from 0): 1 s doubling to maxMs. */
export function refusedRetryMs(streak: number, maxMs: number): number {
  return Math.min(maxMs, 1000 * 2 ** Math.min(streak, 20));
}
