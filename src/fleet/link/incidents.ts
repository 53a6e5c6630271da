/**
 * The queue's and the seq file's incidents (damage found on disk, failed writes, an unreadable seq
 * file): reported at once, and kept as events to publish directly once online (not through the
 * store: the store may be what is failing). Bounded, so a long outage on a failing disk cannot
 * grow the backlog without end.
 */
import type { StoreIncident } from '../queue/store.js';
import type { EventMessage } from '../schemas.js';
import type { SeqIncident } from '../seq.js';
import { eventMessage, type Stamp } from './messages.js';

export type LinkIncident = StoreIncident | (SeqIncident & { lost?: number });

const MAX_PENDING = 100;

export class IncidentBacklog {
  private pending: EventMessage[] = [];

  constructor(private readonly stamp: Stamp) {}

  get size(): number {
    return this.pending.length;
  }

  /** Turns each incident into the event that reports it; losses are 'drop' errors. */
  add(incidents: readonly LinkIncident[]): void {
    for (const incident of incidents) {
      const lost = incident.lost ?? 0;
      const details: Record<string, unknown> = { kind: incident.kind, lost, file: incident.file };
      if ('code' in incident && incident.code !== undefined) details.code = incident.code;
      this.pending.push(eventMessage(this.stamp, lost > 0 ? 'drop' : 'fault', lost > 0 || incident.kind === 'stalled' ? 'error' : 'warning', incident.message, details));
    }
    if (this.pending.length > MAX_PENDING) this.pending.splice(0, this.pending.length - MAX_PENDING);
  }

  /** Hands every waiting event to `send` and forgets them. */
  flush(send: (event: EventMessage) => void): void {
    for (const event of this.pending.splice(0)) send(event);
  }
}
