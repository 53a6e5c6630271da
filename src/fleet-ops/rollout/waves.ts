/**
 * Rollout waves: `--waves 1,10,50,100%` are cumulative shares of the group. Device i (of n, in the
 * group's sorted order) belongs to the first wave k with i < ceil(share_k * n), so every wave that
 * adds a share adds at least one device while the group has devices left, and the last wave (100%)
 * takes the rest.
 */
export function parseWaves(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim().replace(/%$/, ''));
  const shares = parts.map((p) => {
    const v = Number(p);
    if (p === '' || !Number.isFinite(v) || v <= 0 || v > 100) throw new RangeError(`--waves ${text}: ${JSON.stringify(p)} is not a percentage in (0, 100]`);
    return v / 100;
  });
  for (let i = 1; i < shares.length; i++) {
    if (shares[i] <= shares[i - 1]) throw new RangeError(`--waves ${text}: shares must grow (cumulative percentages, e.g. 1,10,50,100)`);
  }
  if (shares[shares.length - 1] !== 1) throw new RangeError(`--waves ${text}: the last wave must be 100 (the whole group)`);
  return shares;
}

export function planWaves(devices: readonly string[], shares: readonly number[]): { device: string; wave: number }[] {
  const sorted = [...devices].sort();
  const n = sorted.length;
  const ends = shares.map((s) => Math.ceil(s * n));
  return sorted.map((device, i) => ({ device, wave: ends.findIndex((end) => i < end) }));
}

/** `0.1`, `10%` → 0.1. */
export function parseShare(text: string, what: string): number {
  const pct = text.endsWith('%');
  const v = Number(pct ? text.slice(0, -1) : text);
  const share = pct ? v / 100 : v;
  if (!Number.isFinite(share) || share < 0 || share > 1) throw new RangeError(`${what} ${text}: give a share 0..1 or a percentage 0%..100%`);
  return share;
}
