/**
 * systemd integration (Type=notify, WatchdogSec): READY once the first worker is up, WATCHDOG pings
 * only while frames flow (so a wedged pipeline gets the service restarted), STOPPING on shutdown.
 * Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
 */
import { loadNativeBinding } from '../runtime/native/binding.js';

export interface SystemdNotifier {
  readonly active: boolean;
  /** Half the watchdog interval systemd asked for, or null when no watchdog is configured. */
  readonly watchdogIntervalMs: number | null;
  notify(state: string): void;
}

export function systemdNotifier(env: NodeJS.ProcessEnv = process.env, warn: (s: string) => void = () => {}): SystemdNotifier {
  const socket = env.NOTIFY_SOCKET;
  const usec = Number(env.WATCHDOG_USEC);
  const pidOk = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
  const watchdogIntervalMs = Number.isFinite(usec) && usec > 0 && pidOk ? usec / 2000 : null;
  if (!socket) return { active: false, watchdogIntervalMs: null, notify: () => {} };
  let send: ((state: string) => void) | null = null;
  try {
    const binding = loadNativeBinding();
    send = (state) => binding.sdNotify(socket, state);
  } catch (err) {
    warn(`systemd notification unavailable (native addon did not load: ${(err as Error).message.split('\n')[0]})`);
  }
  return {
    active: send !== null,
    watchdogIntervalMs: send ? watchdogIntervalMs : null,
    notify: (state) => {
      try {
        send?.(state);
      } catch (err) {
        warn(`sd_notify(${state.split('\n')[0]}) failed: ${(err as Error).message}`);
      }
    },
  };
}
