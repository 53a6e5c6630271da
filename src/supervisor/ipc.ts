/**
 * The typed messages between the supervisor and its worker process (Node IPC, JSON serialisation:
 * Node 20's 'advanced' mode crashed inside child_process when a worker was SIGKILLed mid-stream).
 * Both sides validate the `type` tag; an unknown message is a fault, not something to guess at.
 */

import type { PlannedProvider } from './session.js';

export interface StartupReport {
  readonly ortVersion: string;
  readonly ortLibrary: string;
  readonly providers: { readonly requested: readonly string[]; readonly active: readonly string[]; readonly fallbacks: readonly { provider: string; reason: string }[] };
  /** The providers and options the session was created with (the config's plan, placeholders filled). */
  readonly plan: readonly PlannedProvider[];
  readonly model: { readonly path: string; readonly sha256: string; readonly precision: string; readonly inputSize: readonly [number, number] };
  readonly source: string;
}

export interface WorkerEvent {
  readonly type: string;
  readonly severity: 'info' | 'warning' | 'error';
  readonly message: string;
  readonly details?: Record<string, unknown>;
}

export type WorkerMessage =
  | { readonly type: 'ready'; readonly report: StartupReport }
  | { readonly type: 'result'; readonly result: Record<string, unknown> }
  | { readonly type: 'heartbeat'; readonly frames: number }
  | { readonly type: 'event'; readonly event: WorkerEvent }
  | { readonly type: 'stats'; readonly stats: Record<string, unknown> }
  | { readonly type: 'reply'; readonly id: string; readonly ok: boolean; readonly result?: unknown; readonly error?: string; readonly details?: Record<string, unknown> }
  | { readonly type: 'stopped'; readonly frames: number; readonly reason: string };

export type SupervisorMessage =
  | { readonly type: 'start'; readonly config: unknown }
  | { readonly type: 'update'; readonly patch: Record<string, unknown> }
  | { readonly type: 'command'; readonly id: string; readonly name: string; readonly args: unknown }
  | { readonly type: 'reopen-source' }
  | { readonly type: 'stop' };

const WORKER_TYPES = new Set(['ready', 'result', 'heartbeat', 'event', 'stats', 'reply', 'stopped']);
const SUPERVISOR_TYPES = new Set(['start', 'update', 'command', 'reopen-source', 'stop']);

function tagged(m: unknown): m is { type: string } {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return tagged(m) && WORKER_TYPES.has(m.type);
}

export function isSupervisorMessage(m: unknown): m is SupervisorMessage {
  return tagged(m) && SUPERVISOR_TYPES.has(m.type);
}
