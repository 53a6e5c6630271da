/**
 * The supervisor's side of the fleet link: which device id it speaks as, the FleetLink built from
 * the config (topics, TLS, disk queue, birth/will versions, telemetry timer), its diagnostics in
 * the log, redacted events, and the end-of-run delivery summary.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { LoadedConfig } from '../config/index.js';
import { FleetLink, type EventType, type PipelineStats, type Severity } from '../fleet/index.js';
import { certificateCommonName } from '../fleet/publisher.js';
import { packageRoot } from '../runtime/native/binding.js';
import { redactText, redactValue } from '../util/redact.js';
import type { WorkerEvent } from './ipc.js';

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * The device id the link uses. An explicit device.id must match the client certificate (checked
 * again by FleetLink.start). Without one, the certificate CN is the id when there is a certificate
 * (the deploy broker knows the device by it anyway); otherwise the host name, said out loud,
 * because a re-imaged or renamed host silently becomes another device.
 */
export function resolveDeviceId(configured: string, origin: string | undefined, certFile: string | undefined, log: (line: string) => void): string {
  const explicit = origin !== undefined && origin !== 'default';
  if (explicit) return configured;
  if (certFile !== undefined) {
    const cn = certificateCommonName(certFile);
    if (cn !== undefined) {
      log(`device.id is not set: using ${JSON.stringify(cn)}, the CN of the client certificate ${certFile}`);
      return cn;
    }
  }
  log(`WARNING: device.id is not set: using the host name ${JSON.stringify(configured)}. Set device.id (config, LVUNET_DEVICE_ID or --device-id) to the id the broker knows this device by; a renamed host would otherwise publish as another device`);
  return configured;
}

export interface FleetConnection {
  readonly link: FleetLink;
  readonly deviceId: string;
  /** The queue's drop count at start: the summary counts only this run's drops. */
  readonly droppedAtStart: number;
}

/**
 * Builds and starts the link the config asks for; undefined when no broker is configured. Throws
 * (with nothing left open) on a config it cannot connect with, e.g. a certificate for another device.
 */
export async function connectFleet(loaded: LoadedConfig, telemetry: () => PipelineStats, log: (line: string) => void): Promise<FleetConnection | undefined> {
  const config = loaded.config;
  const mqtt = config.mqtt;
  if (mqtt.url === null) return undefined;
  const tlsOn = mqtt.url.startsWith('mqtts:') || mqtt.url.startsWith('wss:');
  const certFile = tlsOn ? (mqtt.tls.cert ?? undefined) : undefined;
  let link: FleetLink | undefined;
  try {
    const deviceId = resolveDeviceId(config.device.id, loaded.origins['device.id'], certFile, log);
    const queueDir = mqtt.queue.dir ?? join(config.state_dir, 'mqtt-queue');
    const l = new FleetLink({
      url: mqtt.url,
      device: deviceId,
      prefix: mqtt.prefix,
      username: mqtt.username ?? undefined,
      password: mqtt.password ?? undefined,
      tls: tlsOn ? { ca: mqtt.tls.ca ?? undefined, cert: certFile, key: mqtt.tls.key ?? undefined, rejectUnauthorized: mqtt.tls.reject_unauthorized } : undefined,
      keepaliveS: mqtt.keepalive_s,
      protocolVersion: mqtt.protocol_version === 4 ? 4 : 5,
      failoverUrls: mqtt.failover_urls,
      queue: { dir: queueDir, maxMessages: mqtt.queue.max_messages, dropPolicy: mqtt.queue.drop_policy },
      versions: { 'lvunet-edge': packageVersion(), node: process.version },
      telemetry: { intervalMs: config.telemetry.interval_s * 1000, source: telemetry },
    });
    link = l;
    logLinkDiagnostics(l, log);
    l.start();
    const droppedAtStart = l.stats().queue.dropped;
    log(`mqtt ${mqtt.url} as ${deviceId} (topics ${l.topics.base}/..., offline queue ${queueDir})`);
    return { link: l, deviceId, droppedAtStart };
  } catch (err) {
    await link?.close(0);
    throw err;
  }
}

function logLinkDiagnostics(link: FleetLink, log: (line: string) => void): void {
  link.on('fault', (err) => log(`mqtt: ${err.message}`));
  link.on('state', (state) => log(`mqtt: ${state}`));
  link.on('rejected', (m, err) => log(`mqtt: LOST: message on ${m.topic} will not be delivered: ${err.message}`));
  link.on('refused', (m, err) => {
    if (m.retryMs > 0) log(`mqtt: REFUSED by the broker: message ${m.id} on ${m.topic} (${err.message}, reason 0x${m.reasonCode.toString(16)}); kept queued, retrying in ${Math.round(m.retryMs / 1000)} s (${link.stats().refused} refusal(s) so far)`);
  });
  link.on('incident', (i) => log(`mqtt queue: ${(i.lost ?? 0) > 0 ? `LOST ${i.lost} message(s): ` : ''}${i.message}`));
}

const EVENT_TYPES: Record<string, EventType> = { restart: 'restart', fault: 'fault', fallback: 'fallback', config: 'config', drop: 'drop', command: 'command' };

/**
 * Every event leaves through here, redacted: a broker URL or password in a message (an error from
 * a config file, a source path) must not be published to the fleet. Without a link, events are
 * only logged by their callers.
 */
export class FleetEvents {
  constructor(
    private readonly link: FleetLink | undefined,
    /** Also told of every event, redacted (the live view's list). */
    private readonly also?: (e: WorkerEvent) => void,
  ) {}

  emit(type: EventType, severity: Severity, message: string, details?: Record<string, unknown>): void {
    const text = redactText(message);
    this.link?.publishEvent(type, severity, text, details === undefined ? undefined : redactValue(details));
    this.also?.({ type, severity: severity === 'debug' ? 'info' : severity === 'critical' ? 'error' : severity, message: text });
  }

  /** A worker or supervisor event; types the fleet schema does not know go out as 'other'. */
  fromWorker(e: WorkerEvent): void {
    this.emit(EVENT_TYPES[e.type] ?? 'other', e.severity, e.message, e.details);
  }
}

/** The end-of-run lines about delivery: "all delivered" only when every result was acknowledged and nothing was lost. */
export function deliverySummary(results: number, everyN: number, droppedBefore: number, s: ReturnType<FleetLink['stats']>): string[] {
  const published = Math.ceil(results / everyN);
  const left = s.queue.pending;
  const dropped = s.queue.dropped - droppedBefore;
  const lost = s.rejected + s.unpublished + dropped + s.queue.damaged;
  if (left === 0 && s.inflight === 0 && lost === 0) {
    // A refused publish stays queued and is retried: with nothing left and nothing lost, it got through.
    const lines = [`mqtt: all ${published} result(s) delivered${everyN > 1 ? ` (every ${everyN}th of ${results})` : ''}`];
    if (s.refused > 0) lines.push(`mqtt: the broker refused ${s.refused} publish(es) on the way; each stayed queued and was delivered on a later try`);
    return lines;
  }
  const lines = [`mqtt: NOT all results delivered: ${s.acked} message(s) acknowledged by the broker, ${left} still queued for the next start`];
  if (s.refused > 0) lines.push(`mqtt: the broker refused ${s.refused} publish(es) (kept queued; see the REFUSED lines: device id, ACL or quota)`);
  if (lost > 0) {
    lines.push(
      `mqtt: LOST ${lost} message(s): ${s.rejected} over the broker size limit, ${dropped} dropped by the queue (bounds or disk writes), ` +
        `${s.queue.damaged} damaged on disk, ${s.unpublished} without a seq number`,
    );
  }
  return lines;
}
