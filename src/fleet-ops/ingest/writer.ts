/**
 * IngestWriter: takes validated records from any transport (the MQTT subscriber here; a JetStream
 * consumer can feed the same writer), commits them in batches (`maxRows` rows or `maxDelayMs`,
 * whichever comes first, one transaction each) and resolves each record's promise only after its
 * batch is committed. The transport acknowledges a delivery on that promise, never before, so:
 *
 * - nothing acknowledged is lost (a crash loses only unacknowledged deliveries, which the broker
 *   sends again), and
 * - memory is bounded by the transport's window of unacknowledged deliveries (MQTT receive
 *   maximum): a slow database holds deliveries at the broker instead of in this process.
 *
 * A failed commit is retried (1 s doubling to 30 s) with the same records, for as long as it takes:
 * the window stays full meanwhile, which is the back-pressure. Redeliveries are harmless: results
 * and events are keyed (device, seq) / (device, payload digest) and inserted ON CONFLICT DO NOTHING.
 */
import type { IngestRecord } from './records.js';

export interface BatchOutcome {
  /** Result rows written. */
  results: number;
  /** Results already stored (redeliveries): no second row. */
  duplicates: number;
  events: number;
  rejected: number;
}

/** Where batches go: FleetDb, or anything that commits a batch atomically. */
export interface RowSink {
  writeBatch(records: readonly IngestRecord[]): Promise<BatchOutcome>;
}

export interface IngestWriterOptions {
  /** Rows per transaction at most; default 500. */
  maxRows?: number;
  /** Longest wait for a batch to fill before it is committed anyway; default 25 ms. */
  maxDelayMs?: number;
  /** A commit failed and will be retried after `retryMs`. */
  onRetry?: (err: Error, retryMs: number, rows: number) => void;
}

export interface WriterStats {
  batches: number;
  results: number;
  duplicates: number;
  events: number;
  rejected: number;
  /** Other records committed (status, telemetry). */
  other: number;
  /** Records waiting for a commit (queued or in the transaction being committed). */
  pending: number;
  failedCommits: number;
}

interface Waiting {
  readonly record: IngestRecord;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

export class IngestWriter {
  private queue: Waiting[] = [];
  private committing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private stopRetrying = false;
  private readonly s: WriterStats = { batches: 0, results: 0, duplicates: 0, events: 0, rejected: 0, other: 0, pending: 0, failedCommits: 0 };
  private readonly maxRows: number;
  private readonly maxDelayMs: number;

  constructor(
    private readonly sink: RowSink,
    private readonly options: IngestWriterOptions = {},
  ) {
    this.maxRows = options.maxRows ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 25;
    if (!(this.maxRows >= 1)) throw new RangeError(`maxRows must be >= 1, got ${this.maxRows}`);
  }

  /** Resolves once the record is committed; rejects only when the writer is closed before that. */
  write(record: IngestRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error('ingest writer is closed'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      this.s.pending++;
      if (this.queue.length >= this.maxRows) this.kick();
      else this.timer ??= setTimeout(() => this.kick(), this.maxDelayMs);
    });
  }

  stats(): WriterStats {
    return { ...this.s };
  }

  /** Commits everything written so far. */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.committing) {
      this.kick();
      await this.committing;
    }
  }

  /**
   * Flushes, waiting at most `timeoutMs` for a database that keeps failing; what is still not
   * committed then is rejected (its deliveries were never acknowledged, so the broker keeps them).
   */
  async close(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    const giveUp = setTimeout(() => {
      this.stopRetrying = true;
    }, timeoutMs);
    try {
      await this.flush();
    } finally {
      clearTimeout(giveUp);
    }
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.committing || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxRows);
    this.committing = this.commit(batch).finally(() => {
      this.committing = undefined;
      if (this.queue.length >= this.maxRows || (this.queue.length > 0 && this.closed)) this.kick();
      else if (this.queue.length > 0) this.timer ??= setTimeout(() => this.kick(), this.maxDelayMs);
    });
  }

  private async commit(batch: Waiting[]): Promise<void> {
    const records = batch.map((w) => w.record);
    let delay = RETRY_MIN_MS;
    for (;;) {
      try {
        const out = await this.sink.writeBatch(records);
        this.s.batches++;
        this.s.results += out.results;
        this.s.duplicates += out.duplicates;
        this.s.events += out.events;
        this.s.rejected += out.rejected;
        this.s.other += records.filter((r) => r.kind === 'status' || r.kind === 'telemetry').length;
        this.s.pending -= batch.length;
        for (const w of batch) w.resolve();
        return;
      } catch (err) {
        this.s.failedCommits++;
        const error = err instanceof Error ? err : new Error(String(err));
        if (this.stopRetrying) {
          this.s.pending -= batch.length;
          for (const w of batch) w.reject(new Error(`not committed: ${error.message}`, { cause: error }));
          return;
        }
        this.options.onRetry?.(error, delay, records.length);
        await new Promise<void>((r) => setTimeout(r, delay));
        delay = Math.min(RETRY_MAX_MS, delay * 2);
      }
    }
  }
}
