/**
 * The hand-off between two pipeline stages: a small bounded queue. In 'latest' mode a full queue
 * replaces its oldest item (reported through onReplace, so the drop is counted): a live camera must
 * always work on the newest frame. In 'backpressure' mode a full queue makes the producer wait, which
 * is right for replay as fast as possible, where a dropped frame would only distort the measurement.
 */
export type QueueMode = 'latest' | 'backpressure';

export class StageQueue<T> {
  private readonly items: T[] = [];
  private readonly takers: ((item: T | null) => void)[] = [];
  private readonly waitingForRoom: (() => void)[] = [];
  private closed = false;

  constructor(
    readonly capacity: number,
    readonly mode: QueueMode,
    private readonly onReplace: (dropped: T) => void = () => {},
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be an integer >= 1, got ${capacity}`);
  }

  get length(): number {
    return this.items.length;
  }

  /**
   * Hands `item` to a waiting consumer or queues it. Resolves false if the queue was closed first (the
   * item is then discarded, not dropped: nobody will ever take it).
   */
  async put(item: T): Promise<boolean> {
    if (this.mode === 'backpressure') {
      while (!this.closed && this.takers.length === 0 && this.items.length >= this.capacity) {
        await new Promise<void>((resolve) => this.waitingForRoom.push(resolve));
      }
    }
    if (this.closed) return false;
    const taker = this.takers.shift();
    if (taker) {
      taker(item);
      return true;
    }
    if (this.items.length >= this.capacity) this.onReplace(this.items.shift() as T);
    this.items.push(item);
    return true;
  }

  /**
   * In 'backpressure' mode, resolves once a put() would not wait; in 'latest' mode at once. A producer
   * calls it before making its next item, so that it does not make one and then hold it while blocked:
   * that frame would be older by a whole stage when it finally went in.
   */
  async waitForRoom(): Promise<void> {
    if (this.mode !== 'backpressure') return;
    while (!this.closed && this.takers.length === 0 && this.items.length >= this.capacity) {
      await new Promise<void>((resolve) => this.waitingForRoom.push(resolve));
    }
  }

  /** The oldest item, waiting for one if empty; null once closed and drained. */
  take(): Promise<T | null> {
    if (this.items.length > 0) {
      const item = this.items.shift() as T;
      this.waitingForRoom.shift()?.();
      return Promise.resolve(item);
    }
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => this.takers.push(resolve));
  }

  /** No more puts; consumers drain what is queued, then get null. Blocked producers are released. */
  close(): void {
    this.closed = true;
    for (const taker of this.takers.splice(0)) taker(null);
    for (const wake of this.waitingForRoom.splice(0)) wake();
  }

  /** Empties the queue, returning what it held (for counting on abort). */
  drain(): T[] {
    const out = this.items.splice(0);
    for (const wake of this.waitingForRoom.splice(0)) wake();
    return out;
  }
}
