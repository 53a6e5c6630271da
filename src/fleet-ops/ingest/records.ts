/**
 * What the ingest writes: a message from a device's topic, validated against its published schema
 * (src/schemas/fleet.ts) and checked to come from the device its topic names. Whatever fails that
 * becomes a `rejected` record with the reason, so it is stored rather than acknowledged and lost.
 * The transport (MQTT here, a JetStream consumer later) only turns its deliveries into these.
 */
import { createHash } from 'node:crypto';
import {
  validateEvent,
  validateResult,
  validateStatus,
  validateTelemetry,
  type EventMessage,
  type ResultMessage,
  type StatusMessage,
  type TelemetryMessage,
  type Validation,
} from '../../fleet/schemas.js';
import type { StreamKind } from '../../fleet/topics.js';

interface Received {
  /** Ingest clock, ms. */
  readonly receivedAt: number;
  /** The payload as it arrived (stored whole). */
  readonly raw: string;
}

export type IngestRecord =
  | (Received & { readonly kind: 'result'; readonly message: ResultMessage })
  | (Received & { readonly kind: 'event'; readonly message: EventMessage })
  | (Received & { readonly kind: 'status'; readonly message: StatusMessage })
  | (Received & { readonly kind: 'telemetry'; readonly message: TelemetryMessage })
  | (Received & { readonly kind: 'rejected'; readonly topic: string; readonly reason: string });

const VALIDATORS: Record<StreamKind, (v: unknown) => Validation<unknown>> = {
  result: validateResult,
  event: validateEvent,
  status: validateStatus,
  telemetry: validateTelemetry,
};

/** Validates one delivery of `kind` on `topic`, published by (the certificate of) `device`. */
export function toRecord(kind: StreamKind, device: string, topic: string, payload: Buffer | string, receivedAt: number): IngestRecord {
  const raw = typeof payload === 'string' ? payload : payload.toString('utf8');
  const reject = (reason: string): IngestRecord => ({ kind: 'rejected', topic, reason, raw, receivedAt });
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    return reject(`not JSON: ${(err as Error).message}`);
  }
  const checked = VALIDATORS[kind](value);
  if (!checked.ok) return reject(`not a valid ${kind} message: ${checked.errors.join('; ')}`);
  const claimed = (checked.value as { device: string }).device;
  // The broker's ACL ties the topic to the certificate; a payload naming another device is forged or broken.
  if (claimed !== device) return reject(`payload device ${JSON.stringify(claimed)} differs from the topic's device ${JSON.stringify(device)}`);
  return { kind, message: checked.value, raw, receivedAt } as IngestRecord;
}

export function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
