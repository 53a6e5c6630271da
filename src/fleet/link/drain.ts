/**
 * The queue drain loop: hands queued messages to the MQTT client in append order, at most
 * `maxInflight` awaiting PUBACK, and removes a message from the store only on a success reason
 * code. A refused message (PUBACK >= 0x80) stays queued and holds the queue for a growing pause;
 * a message over the broker's current limit is taken out (rejected) rather than blocking the rest.
 */
import type { IClientPublishOptions } from 'mqtt';

import type { EventMessage } from '../schemas.js';
import type { MessageStore, QueuedMessage } from '../queue/store.js';
import { refusedRetryMs } from './backoff.js';
import { eventMessage, type Stamp } from './messages.js';

/** What the drain needs of an MQTT client. */
export interface PublishClient {
  publish(topic: string, payload: string | Buffer, opts: IClientPublishOptions, callback: (err?: Error) => void): unknown;
}

export interface DrainTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface QueueDrainOptions {
  readonly store: MessageStore;
  readonly maxInflight: number;
  /** Longest pause after a refusal. */
  readonly refusedRetryMaxMs: number;
  /** Topic + payload bytes a message may have now. */
  readonly limit: () => number;
  /** The client while it is connected and the link online; undefined: nothing is sent. */
  readonly client: () => PublishClient | undefined;
  readonly stamp: Stamp;
  /** Sends an event now, outside the store (the store may be what the broker refuses). */
  readonly sendEvent: (event: EventMessage) => void;
  readonly onRejected: (m: { topic: string; id: number; bytes: number }, err: Error) => void;
  readonly onRefused: (m: { topic: string; id: number; bytes: number; reasonCode: number; retryMs: number }, err: Error) => void;
  /** Called after each look at the store (it reports damage it found while reading). */
  readonly afterPeek: () => void;
  readonly timers?: DrainTimers;
}

const REAL_TIMERS: DrainTimers = {
  setTimeout: (fn, ms) => {
    const h = setTimeout(fn, ms);
    // A pause after a refusal must not keep a process alive that is otherwise done.
    h.unref();
    return h;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class QueueDrain {
  /** Queued messages the broker acknowledged with a success reason code. */
  acked = 0;
  /** Queued messages taken out for being over the broker's limit. */
  rejected = 0;
  /** PUBACKs with a failure reason code. */
  refused = 0;
  private readonly inflight = new Set<number>();
  /** Highest queued id handed to the client; the pump continues after it. */
  private cursor = 0;
  private refusedStreak = 0;
  /** While set, the queue waits: the broker refused its head; the timer resumes it. */
  private holdTimer: unknown;
  private drainWaiters: Array<() => void> = [];
  private readonly timers: DrainTimers;

  constructor(private readonly o: QueueDrainOptions) {
    this.timers = o.timers ?? REAL_TIMERS;
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Sends what the window allows; called on every append, PUBACK, connect and the end of a hold. */
  pump(): void {
    const client = this.o.client();
    if (!client || this.holdTimer !== undefined) return;
    const { store, maxInflight } = this.o;
    const limit = this.o.limit();
    while (this.inflight.size < maxInflight) {
      const batch = store.peek(this.cursor, maxInflight);
      this.o.afterPeek();
      if (batch.length === 0) break;
      for (const message of batch) {
        if (this.inflight.size >= maxInflight) break;
        this.cursor = message.id;
        if (this.inflight.has(message.id)) continue;
        const bytes = Buffer.byteLength(message.topic) + message.payload.length;
        if (bytes > limit) {
          // Queued under a larger limit; this broker would drop the connection over it, forever.
          store.ack(message.id);
          this.rejected++;
          this.o.onRejected({ topic: message.topic, id: message.id, bytes }, new RangeError(`queued message of ${bytes} bytes exceeds the broker limit of ${limit} bytes`));
          continue;
        }
        this.send(client, message);
      }
    }
    if (this.isDrained()) for (const w of [...this.drainWaiters]) w();
  }

  isDrained(): boolean {
    return this.inflight.size === 0 && this.o.store.stats().pending === 0;
  }

  /** Resolves once the queue is empty and nothing is in flight, or after timeoutMs (false). */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.isDrained()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.drainWaiters = this.drainWaiters.filter((w) => w !== waiter);
        resolve(ok);
      };
      const waiter = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.drainWaiters.push(waiter);
    });
  }

  /** Ends a hold (closing): nothing is retried any more. */
  stopHold(): void {
    if (this.holdTimer !== undefined) this.timers.clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  /** Forgets what is in flight (closed): unacknowledged messages stay in the store for the next start. */
  forgetInflight(): void {
    this.inflight.clear();
  }

  private send(client: PublishClient, message: QueuedMessage): void {
    this.inflight.add(message.id);
    const opts: IClientPublishOptions = { qos: message.qos, retain: message.retain };
    client.publish(message.topic, message.payload, opts, (err) => {
      if (!this.inflight.delete(message.id)) return;
      const code = (err as (Error & { code?: unknown }) | undefined)?.code;
      if (!err) {
        this.o.store.ack(message.id);
        this.acked++;
        this.refusedStreak = 0;
      } else if (typeof code === 'number') {
        // A PUBACK reason code >= 0x80 (mqtt.js reports nothing else as an error with a number).
        this.onRefusal(message, code, err);
        return;
      } else {
        // The client gave up on it (forced end); send it again after everything before it.
        this.cursor = Math.min(this.cursor, message.id - 1);
      }
      this.pump();
    });
  }

  /** Keeps a refused message queued, holds the queue and tries again later. */
  private onRefusal(message: QueuedMessage, reasonCode: number, err: Error): void {
    this.refused++;
    this.cursor = Math.min(this.cursor, message.id - 1);
    if (this.holdTimer !== undefined) {
      this.o.onRefused({ topic: message.topic, id: message.id, bytes: message.payload.length, reasonCode, retryMs: 0 }, err);
      return;
    }
    const retryMs = refusedRetryMs(this.refusedStreak, this.o.refusedRetryMaxMs);
    this.refusedStreak++;
    this.holdTimer = this.timers.setTimeout(() => {
      this.holdTimer = undefined;
      this.pump();
    }, retryMs);
    const hex = `0x${reasonCode.toString(16).padStart(2, '0')}`;
    this.o.onRefused({ topic: message.topic, id: message.id, bytes: message.payload.length, reasonCode, retryMs }, err);
    // One event per streak, sent directly (the broker may refuse it too; the counter is the record).
    if (this.refusedStreak === 1) {
      this.o.sendEvent(
        eventMessage(this.o.stamp, 'fault', 'error', `broker refused message ${message.id} on ${message.topic} (PUBACK ${hex}: ${err.message}); kept queued, delivery paused and retried`, {
          kind: 'publish-refused',
          reasonCode,
          topic: message.topic,
          refused_total: this.refused,
        }),
      );
    }
  }
}
