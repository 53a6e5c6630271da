/**
 * The MQTT connection's settings: session, keepalive, TLS files, the retained will, and the
 * reconnect backoff applied on top of mqtt.js's fixed reconnectPeriod.
 */
import { readFileSync } from 'node:fs';
import type { IClientOptions, MqttClient } from 'mqtt';

import { reconnectDelayMs } from './backoff.js';

export interface ConnectionSettings {
  readonly clientId: string;
  readonly protocolVersion: 4 | 5;
  readonly keepaliveS: number;
  readonly reconnectMinMs: number;
  readonly connectTimeoutMs: number;
  readonly username?: string;
  readonly password?: string;
  readonly tls?: {
    readonly ca?: string;
    readonly cert?: string;
    readonly key?: string;
    readonly rejectUnauthorized?: boolean;
    readonly servername?: string;
  };
  /**
   * More brokers of the same cluster (same scheme as the main URL): every reconnect tries the next
   * one of [url, ...failover] in turn, so a device whose node dies moves to another.
   */
  readonly failover?: readonly string[];
  readonly url?: string;
  /** Published by the broker if the connection drops without DISCONNECT (retained, QoS 1). */
  readonly will: { readonly topic: string; readonly payload: string };
}

/** mqtt.js options for these settings; the TLS files are read now, so a missing one fails start(). */
export function clientOptions(s: ConnectionSettings): IClientOptions {
  const options: IClientOptions = {
    clientId: s.clientId,
    protocolVersion: s.protocolVersion,
    // Durability lives in our store; a persistent broker session would also deliver commands
    // queued while the device was off, which may be hours stale (a reload-model to an old file).
    clean: true,
    keepalive: s.keepaliveS,
    reconnectPeriod: s.reconnectMinMs,
    connectTimeout: s.connectTimeoutMs,
    // FleetLink subscribes on every connect itself and asks again after a refusal. mqtt.js's own
    // re-subscribe has no callback and forgets a filter whose SUBACK is refused (and, while it
    // remembers one, turns the link's own subscribe into a no-op), so it must stay off.
    resubscribe: false,
    will: { topic: s.will.topic, payload: Buffer.from(s.will.payload), qos: 1, retain: true },
  };
  if (s.failover !== undefined && s.failover.length > 0) {
    if (s.url === undefined) throw new TypeError('failover brokers need the main broker URL too');
    const servers = [s.url, ...s.failover].map((u) => brokerAddress(u));
    const other = servers.findIndex((a) => a.protocol !== servers[0].protocol);
    // The TLS files apply to every node; a plain failover would send the same client in the clear.
    if (other > 0) throw new TypeError(`failover broker ${s.failover[other - 1]} uses ${servers[other].protocol}:// but ${s.url} uses ${servers[0].protocol}://: every node needs the same scheme`);
    options.servers = servers;
  }
  if (s.username !== undefined) options.username = s.username;
  if (s.password !== undefined) options.password = s.password;
  if (s.tls) {
    if (s.tls.ca) options.ca = readFileSync(s.tls.ca);
    if (s.tls.cert) options.cert = readFileSync(s.tls.cert);
    if (s.tls.key) options.key = readFileSync(s.tls.key);
    if (s.tls.servername) options.servername = s.tls.servername;
    options.rejectUnauthorized = s.tls.rejectUnauthorized ?? true;
  }
  return options;
}

/** host, port and protocol of a broker URL, for mqtt.js's `servers` rotation. */
function brokerAddress(url: string): { host: string; port: number; protocol: 'mqtt' | 'mqtts' } {
  const u = new URL(url);
  if (u.protocol !== 'mqtt:' && u.protocol !== 'mqtts:') throw new TypeError(`broker URL ${url}: failover needs mqtt:// or mqtts://`);
  const protocol = u.protocol === 'mqtts:' ? 'mqtts' : 'mqtt';
  return { host: u.hostname, port: u.port === '' ? (protocol === 'mqtts' ? 8883 : 1883) : Number(u.port), protocol };
}

/**
 * Exponential backoff with jitter between connection attempts. Runs before mqtt.js's own 'close'
 * listener arms the reconnect timer, so the new period is the one used for the coming attempt.
 * `attempts` is the link's count of failed attempts since the last success; `onClose` is told of
 * each drop after the period is set.
 */
export function applyBackoff(client: Pick<MqttClient, 'prependListener' | 'options'>, minMs: number, maxMs: number, attempts: () => number, onClose: () => void): void {
  client.prependListener('close', () => {
    client.options.reconnectPeriod = reconnectDelayMs(attempts(), minMs, maxMs);
    onClose();
  });
}
