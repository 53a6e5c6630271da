import ort from 'onnxruntime-node';

export interface LatencyStats {
  readonly median_ms: number;
  readonly p90_ms: number;
  readonly min_ms: number;
  readonly runs: number;
  /** Median of each round, in order: rounds of different models that ran back to back pair up. */
  readonly round_medians_ms: readonly number[];
}

function median(samples: readonly number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function stats(samples: number[], perRound: number): LatencyStats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  const rounds: number[] = [];
  for (let i = 0; i < samples.length; i += perRound) rounds.push(median(samples.slice(i, i + perRound)));
  return { median_ms: at(0.5), p90_ms: at(0.9), min_ms: s[0], runs: s.length, round_medians_ms: rounds };
}

/**
 * Latency of `a` relative to `b` from the same compareLatency run: the median over rounds of
 * a's round median / b's round median. Each round of `a` ran right beside the same round of `b`, so
 * a slow spell of the machine (other tenants, frequency changes) divides out instead of landing on
 * whichever model happened to be running.
 */
export function pairedRatio(a: LatencyStats, b: LatencyStats): number {
  const n = Math.min(a.round_medians_ms.length, b.round_medians_ms.length);
  if (n === 0) throw new Error('pairedRatio: no rounds');
  return median(Array.from({ length: n }, (_, i) => a.round_medians_ms[i] / b.round_medians_ms[i]));
}

/**
 * Latency of several models on the same input, measured side by side: rounds alternate between the
 * models so that machine noise (other processes, frequency changes) hits all of them alike.
 */
export async function compareLatency(
  models: ReadonlyArray<{ name: string; bytes: Uint8Array }>,
  input: { name: string; data: Float32Array; dims: readonly number[] },
  options: { threads: number; rounds: number; perRound: number; warmup: number },
): Promise<Record<string, LatencyStats>> {
  const sessions = await Promise.all(
    models.map((m) =>
      ort.InferenceSession.create(m.bytes, {
        intraOpNumThreads: options.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      }),
    ),
  );
  const feeds = { [input.name]: new ort.Tensor('float32', input.data, [...input.dims]) };
  const samples = models.map(() => [] as number[]);
  for (const s of sessions) for (let i = 0; i < options.warmup; i++) await s.run(feeds);
  for (let r = 0; r < options.rounds; r++) {
    for (let m = 0; m < sessions.length; m++) {
      for (let i = 0; i < options.perRound; i++) {
        const t0 = performance.now();
        await sessions[m].run(feeds);
        samples[m].push(performance.now() - t0);
      }
    }
  }
  await Promise.all(sessions.map((s) => s.release()));
  return Object.fromEntries(models.map((m, i) => [m.name, stats(samples[i], options.perRound)]));
}
