/**
 * Where the live view listens, and whether that needs a token: `PORT` (loopback only),
 * `HOST:PORT`, `[v6]:PORT`. Anything but a loopback address is reachable from the network, so
 * the server refuses to start there without a token (src/view/server.ts).
 */
import { isIP } from 'node:net';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export function parseListen(spec: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]:|([^:[\]]+):)?(\d{1,5})$/.exec(spec.trim());
  if (!m) throw new Error(`"${spec}" is not [HOST:]PORT (e.g. 8080, 127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port ${port} in "${spec}" is over 65535`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

/** 127.0.0.0/8, ::1 and "localhost": reachable from this machine only. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}
