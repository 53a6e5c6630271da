/**
 * The offline message store behind FleetLink. Memory and disk stores implement this one interface
 * and pass one contract test (test/fleet/queue/store.contract.test.ts), so they are interchangeable.
 *
 * The API is synchronous on purpose: a store is consulted a few dozen times a second at most, and
 * synchronous file calls make "appended" mean "handed to the kernel" (or "on disk", with fsync)
 * by the time append() returns, with no window where a queued result lives only in a promise.
 */

export type Qos = 0 | 1;

export interface NewMessage {
  topic: string;
  payload: Buffer | string;
  /** Default 1. */
  qos?: Qos;
  /** Default false. */
  retain?: boolean;
}

export interface QueuedMessage {
  /** Assigned by the store, strictly increasing in append order. */
  id: number;
  topic: string;
  payload: Buffer;
  qos: Qos;
  retain: boolean;
}

/** drop-oldest keeps the newest data (what an operator looks at); drop-newest keeps the history. */
export type DropPolicy = 'drop-oldest' | 'drop-newest';

export interface StoreLimits {
  /** Default 100,000. */
  maxMessages?: number;
  /** Sum of topic and payload bytes of pending messages. Default 64 MiB. */
  maxBytes?: number;
  /** Default drop-oldest. */
  dropPolicy?: DropPolicy;
}

export interface StoreStats {
  /** Messages appended and neither acknowledged nor dropped. */
  pending: number;
  /** Topic + payload bytes of the pending messages. */
  bytes: number;
  /** Messages dropped by the bounds since the store was created (persisted by the disk store). */
  dropped: number;
  /** Torn or corrupt records discarded when the store was opened (disk store only). */
  torn: number;
  /**
   * Queued records lost to damage on disk (a flipped byte, a scrambled or missing part of a
   * segment), counted by the ids missing between intact records; disk store only, this process.
   */
  damaged: number;
  /** Appends and index writes the file system refused (ENOSPC, EIO, ...); disk store only, this process. */
  writeErrors: number;
}

/**
 * Something the store had to give up or repair, for the link to announce (event + telemetry).
 * `lost`: messages that will never be delivered because of it (0 for a repair that lost nothing).
 */
export interface StoreIncident {
  kind: 'damaged' | 'torn' | 'index-recovered' | 'write-failed' | 'index-write-failed';
  lost: number;
  message: string;
  file?: string;
  code?: string;
}

export interface MessageStore {
  /** Queues a message; returns its id, or undefined when the bounds and drop policy refused it. */
  append(message: NewMessage): number | undefined;
  /** Up to `limit` pending messages with id > afterId, oldest first. */
  peek(afterId: number, limit: number): QueuedMessage[];
  /**
   * Removes a message for good. Unknown or already removed ids are ignored, because after a
   * reconnect an acknowledgement can arrive for a message that was since dropped.
   */
  ack(id: number): void;
  stats(): StoreStats;
  /** Makes acknowledgements durable now (the disk store otherwise batches them). */
  flush(): void;
  /** Incidents since the last call (oldest first), handed over once: the caller reports them. */
  takeIncidents(): StoreIncident[];
  close(): void;
}

export const DEFAULT_MAX_MESSAGES = 100_000;
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

export interface ResolvedLimits {
  maxMessages: number;
  maxBytes: number;
  dropPolicy: DropPolicy;
}

export function resolveLimits(limits: StoreLimits = {}): ResolvedLimits {
  const maxMessages = limits.maxMessages ?? DEFAULT_MAX_MESSAGES;
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  const dropPolicy = limits.dropPolicy ?? 'drop-oldest';
  if (!Number.isSafeInteger(maxMessages) || maxMessages < 1) throw new RangeError(`maxMessages must be a positive integer, got ${maxMessages}`);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
  if (dropPolicy !== 'drop-oldest' && dropPolicy !== 'drop-newest') throw new RangeError(`unknown dropPolicy ${String(dropPolicy)}`);
  return { maxMessages, maxBytes, dropPolicy };
}

/** What a message counts against maxBytes. */
export function messageSize(topic: string, payload: Buffer): number {
  return Buffer.byteLength(topic) + payload.length;
}

export function toBuffer(payload: Buffer | string): Buffer {
  return typeof payload === 'string' ? Buffer.from(payload) : payload;
}

/**
 * The bound and drop policy both stores share: evicts oldest messages until one of `size` bytes
 * fits, or says it cannot (drop-newest, or larger than the whole store). Returns how many were
 * evicted, or -1 when the new message must be refused.
 */
export function makeRoomFor(
  limits: ResolvedLimits,
  size: number,
  state: { count(): number; bytes(): number; oldest(): number | undefined; evict(id: number): void },
): number {
  if (size > limits.maxBytes) return -1;
  let evicted = 0;
  while (state.count() + 1 > limits.maxMessages || state.bytes() + size > limits.maxBytes) {
    if (limits.dropPolicy === 'drop-newest') return -1;
    const oldest = state.oldest();
    if (oldest === undefined) return -1;
    state.evict(oldest);
    evicted++;
  }
  return evicted;
}
