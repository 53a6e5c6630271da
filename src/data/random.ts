/**
 * Seeded randomness for splits, augmentation and weight initialisation. Math.random cannot be
 * seeded, and runs must be reproducible from the seed recorded in split files and checkpoints.
 */

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

function checkSeed(seed: number): number {
  if (!Number.isInteger(seed)) throw new RangeError(`random seed must be an integer, got ${seed}`);
  return seed >>> 0;
}

/**
 * mulberry32: a 32-bit state generator, uniform in [0, 1) with 2^-32 resolution. Small and fast, and
 * a few lines to port if another language ever has to reproduce the same stream.
 */
export function mulberry32(seed: number): Rng {
  let a = checkSeed(seed);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform integer in [0, n). */
export function randomInt(rng: Rng, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`randomInt: n must be a positive integer, got ${n}`);
  return Math.floor(rng() * n);
}

/** Fisher–Yates shuffle in place (from the end, j = floor(rng() * (i + 1))); returns the array. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const tmp = items[i];
    items[i] = items[j];
    items[j] = tmp;
  }
  return items;
}

/**
 * Standard normal samples by the Box–Muller transform, seeded by an integer or drawing from an
 * existing Rng. Each pair of uniforms yields two samples; the sine one is kept for the next call.
 */
export function gaussian(source: number | Rng): () => number {
  const rng = typeof source === 'number' ? mulberry32(source) : source;
  let spare = 0;
  let hasSpare = false;
  return () => {
    if (hasSpare) {
      hasSpare = false;
      return spare;
    }
    // 1 - u lies in (0, 1], so the logarithm is finite.
    const u1 = 1 - rng();
    const u2 = rng();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    spare = r * Math.sin(theta);
    hasSpare = true;
    return r * Math.cos(theta);
  };
}

/** Fills `out` with mean + std * N(0, 1) samples (e.g. He/Xavier initialisation); returns `out`. */
export function fillGaussian<T extends Float32Array | Float64Array>(
  out: T,
  normal: () => number,
  mean = 0,
  std = 1,
): T {
  for (let i = 0; i < out.length; i++) out[i] = mean + std * normal();
  return out;
}
