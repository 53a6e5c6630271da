/**
 * How the operator side (ingest, `fleet send`, rollouts) connects to the fleet broker: MQTT 5, with
 * the operator's or ingest's client certificate on the deploy broker (whose CN becomes username and
 * client id, deploy/mosquitto/mosquitto.conf), or a user name and password on a lab broker.
 */
import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import type { TlsFiles } from '../fleet/publisher.js';

export interface BrokerAccess {
  /** mqtt://host:port or mqtts://host:port. */
  url: string;
  /** Also the persistent session key; the deploy broker replaces it with the certificate CN. */
  clientId: string;
  username?: string;
  password?: string;
  tls?: TlsFiles;
}

export function operatorClientOptions(a: BrokerAccess, extra: IClientOptions = {}): IClientOptions {
  const o: IClientOptions = {
    clientId: a.clientId,
    protocolVersion: 5,
    keepalive: 30,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    ...extra,
  };
  if (a.username !== undefined) o.username = a.username;
  if (a.password !== undefined) o.password = a.password;
  const tls = a.tls;
  if (tls) {
    const read = (what: string, file: string | undefined): Buffer | undefined => {
      if (file === undefined) return undefined;
      try {
        return readFileSync(file);
      } catch (err) {
        throw new Error(`cannot read the ${what} ${file}: ${(err as Error).message}`, { cause: err });
      }
    };
    o.ca = read('CA certificate', tls.ca);
    o.cert = read('client certificate', tls.cert);
    o.key = read('client key', tls.key);
    if (tls.servername) o.servername = tls.servername;
    o.rejectUnauthorized = tls.rejectUnauthorized ?? true;
  }
  return o;
}

/** SUBACK reason codes >= 0x80 are refusals (0x87: not authorised). */
export function refusedFilters(filters: readonly string[], granted: readonly { qos: number }[]): string[] {
  return filters.filter((_, i) => (granted[i]?.qos ?? 0x80) >= 0x80);
}
