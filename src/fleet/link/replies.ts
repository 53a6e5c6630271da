/**
 * Command replies: QoS 1 but never queued, so a reply never shares a fate with results. Each is
 * checked against the broker limit (an oversized one becomes an error reply of its own), and one
 * the broker refuses is counted and dropped, never retried.
 */
import { REPLY_SCHEMA, type CommandReply } from '../schemas.js';
import type { PublishClient } from './drain.js';

export interface ReplyCounts {
  /** Acknowledged by the broker. */
  sent: number;
  /** Refused or lost; never retried. */
  failed: number;
  /** Replaced by an error reply for being over the broker limit. */
  oversized: number;
}

export interface ReplySenderOptions {
  readonly topic: (command: string) => string;
  readonly limit: () => number;
  readonly client: () => PublishClient | undefined;
  /** Every answer, ok or not, as it is about to be sent. */
  readonly onAnswered: (command: string, reply: CommandReply) => void;
  readonly onFault: (err: Error) => void;
}

export class ReplySender {
  readonly counts: ReplyCounts = { sent: 0, failed: 0, oversized: 0 };
  ok = 0;
  failed = 0;

  constructor(private readonly o: ReplySenderOptions) {}

  send(name: string, reply: CommandReply): void {
    let text: string;
    try {
      text = JSON.stringify(reply);
    } catch (err) {
      // A handler result that is not JSON (cycles, BigInt) must still produce an answer.
      reply = { schema: REPLY_SCHEMA, id: reply.id, ok: false, error: `result is not serialisable: ${(err as Error).message}` };
      text = JSON.stringify(reply);
    }
    const topic = this.o.topic(name);
    const limit = this.o.limit();
    const bytes = Buffer.byteLength(topic) + Buffer.byteLength(text);
    if (bytes > limit) {
      // Sent as it is, the broker would refuse it and mqtt.js resend it forever, stalling results.
      this.counts.oversized++;
      reply = { schema: REPLY_SCHEMA, id: reply.id, ok: false, error: `reply of ${bytes} bytes exceeds the broker limit of ${limit} bytes; not sent` };
      text = JSON.stringify(reply);
    }
    if (reply.ok) this.ok++;
    else this.failed++;
    this.o.onAnswered(name, reply);
    const client = this.o.client();
    if (!client) return;
    const sent = reply;
    client.publish(topic, text, { qos: 1 }, (err) => {
      if (!err) {
        this.counts.sent++;
        return;
      }
      // Never retried: a reply is an answer to someone waiting now, not a record to keep.
      this.counts.failed++;
      this.o.onFault(new Error(`reply to ${name} ${String(sent.id)} not delivered: ${err.message}`));
    });
  }
}
