/**
 * Rounds to a fixed number of decimals. Results go out as JSON over MQTT: full float64 noise
 * (0.30000000000000004) costs bytes and makes equal results from different builds compare unequal.
 */
export function roundTo(x: number, decimals: number): number {
  const k = 10 ** decimals;
  return Math.round(x * k) / k;
}
