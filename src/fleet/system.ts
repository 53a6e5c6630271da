import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const THERMAL_ROOT = '/sys/class/thermal';

/**
 * Hottest thermal zone in °C, or null where the kernel exposes none (containers, most x86 VMs).
 * The hottest is reported because throttling starts at whichever zone trips first.
 */
export function readTemperatureC(root: string = THERMAL_ROOT): number | null {
  let zones: string[];
  try {
    zones = readdirSync(root).filter((z) => z.startsWith('thermal_zone'));
  } catch {
    return null;
  }
  let hottest: number | null = null;
  for (const zone of zones) {
    try {
      const milli = Number(readFileSync(path.join(root, zone, 'temp'), 'utf8').trim());
      // Some zones report errors as negative or absurd values; ignore them.
      if (!Number.isFinite(milli) || milli <= -100_000 || milli >= 200_000) continue;
      const c = milli / 1000;
      if (hottest === null || c > hottest) hottest = c;
    } catch {
      // Zones that cannot be read (EPERM, EINVAL on disabled sensors) are skipped.
    }
  }
  return hottest;
}

/** Process CPU use between successive calls, 100 = one core fully busy. */
export class CpuMeter {
  private lastUsage = process.cpuUsage();
  private lastTime = process.hrtime.bigint();

  sample(): number {
    const usage = process.cpuUsage();
    const now = process.hrtime.bigint();
    const cpuMicros = usage.user - this.lastUsage.user + (usage.system - this.lastUsage.system);
    const wallMicros = Number(now - this.lastTime) / 1000;
    this.lastUsage = usage;
    this.lastTime = now;
    return wallMicros > 0 ? Math.max(0, (100 * cpuMicros) / wallMicros) : 0;
  }
}
