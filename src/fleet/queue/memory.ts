import {
  makeRoomFor,
  messageSize,
  resolveLimits,
  toBuffer,
  type MessageStore,
  type NewMessage,
  type QueuedMessage,
  type ResolvedLimits,
  type StoreLimits,
  type StoreIncident,
  type StoreStats,
} from './store.js';

/** A bounded in-memory store: for tests, the bench, and devices that accept losing the queue on restart. */
export class MemoryStore implements MessageStore {
  private readonly limits: ResolvedLimits;
  // Map keeps insertion order, and ids are appended in increasing order.
  private readonly messages = new Map<number, QueuedMessage>();
  private nextId = 1;
  private bytes = 0;
  private dropped = 0;
  private closed = false;

  constructor(limits: StoreLimits = {}) {
    this.limits = resolveLimits(limits);
  }

  append(message: NewMessage): number | undefined {
    this.assertOpen();
    const payload = toBuffer(message.payload);
    const size = messageSize(message.topic, payload);
    if (!this.makeRoom(size)) {
      this.dropped++;
      return undefined;
    }
    const id = this.nextId++;
    this.messages.set(id, { id, topic: message.topic, payload, qos: message.qos ?? 1, retain: message.retain ?? false });
    this.bytes += size;
    return id;
  }

  peek(afterId: number, limit: number): QueuedMessage[] {
    this.assertOpen();
    const out: QueuedMessage[] = [];
    for (const m of this.messages.values()) {
      if (out.length >= limit) break;
      if (m.id > afterId) out.push(m);
    }
    return out;
  }

  ack(id: number): void {
    const m = this.messages.get(id);
    if (!m) return;
    this.messages.delete(id);
    this.bytes -= messageSize(m.topic, m.payload);
  }

  stats(): StoreStats {
    return { pending: this.messages.size, bytes: this.bytes, dropped: this.dropped, torn: 0, damaged: 0, writeErrors: 0 };
  }

  flush(): void {}

  takeIncidents(): StoreIncident[] {
    return [];
  }

  close(): void {
    this.closed = true;
  }

  private makeRoom(size: number): boolean {
    const evicted = makeRoomFor(this.limits, size, {
      count: () => this.messages.size,
      bytes: () => this.bytes,
      oldest: () => this.messages.keys().next().value,
      evict: (id) => this.ack(id),
    });
    if (evicted < 0) return false;
    this.dropped += evicted;
    return true;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('message store is closed');
  }
}
