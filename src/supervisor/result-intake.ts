/**
 * What happens to each result the worker sends: checked against the result schema, counted
 * against --max-frames, written to every local sink in order, and every Nth published to the
 * fleet (publish.every_n thins the MQTT stream only; local sinks keep every result).
 */
import { assertResultV1, type ResultSink, type ResultV1 } from '../runtime/sinks/index.js';

const EMPTY_MASK = { width: 0, height: 0, data: new Uint8Array(0) };

export interface ResultIntakeOptions {
  readonly sinks: readonly ResultSink[];
  readonly maxFrames?: number;
  readonly everyN: number;
  /** Publishes to the fleet (a result the link cannot publish is counted there). */
  readonly publish: (result: ResultV1) => void;
  /** The first good result of the run (the config it started from works end to end). */
  readonly onFirst: () => void;
  readonly onLatency: (totalMs: number) => void;
  /** Every good result taken (the live figures). */
  readonly onResult?: (result: ResultV1) => void;
  /** The worker sent something that is not a result. */
  readonly onBad: (message: string) => void;
  /** --max-frames reached. */
  readonly onLimit: () => void;
  /** A sink failed to write: the run cannot keep its promise to that sink. */
  readonly onWriteError: (err: Error) => void;
}

export class ResultIntake {
  /** Results taken (written and, every Nth, published). */
  results = 0;
  /** Results from frames in flight when --max-frames was reached: not taken. */
  pastLimit = 0;
  /** publish.every_n; a config change applies from the next result. */
  everyN: number;
  private writes: Promise<void> = Promise.resolve();
  /** Set by the first failed sink write: later results are not written (the run reports the failure once). */
  private writeFailed = false;

  constructor(private readonly o: ResultIntakeOptions) {
    this.everyN = o.everyN;
  }

  /** Results still wanted (a restarted worker does the rest of --max-frames). */
  remaining(): number | undefined {
    return this.o.maxFrames === undefined ? undefined : Math.max(0, this.o.maxFrames - this.results);
  }

  take(raw: Record<string, unknown>): void {
    const { maxFrames } = this.o;
    if (maxFrames !== undefined && this.results >= maxFrames) {
      // Frames already in flight when the limit was reached still finish in the worker.
      this.pastLimit++;
      return;
    }
    try {
      assertResultV1(raw);
    } catch (err) {
      this.o.onBad(`worker sent a bad result: ${(err as Error).message}`);
      return;
    }
    const result: ResultV1 = raw;
    this.results++;
    if (this.results === 1) this.o.onFirst();
    this.o.onLatency(result.latencyMs.total);
    this.o.onResult?.(result);
    if ((this.results - 1) % this.everyN === 0) this.o.publish(result);
    // After a failed write the chain stays rejected: report that once, not again for every result.
    if (!this.writeFailed) {
      this.writes = this.writes.then(async () => {
        for (const sink of this.o.sinks) await sink.write({ result, mask: EMPTY_MASK });
      });
      this.writes.catch((err: unknown) => {
        if (this.writeFailed) return;
        this.writeFailed = true;
        this.o.onWriteError(err instanceof Error ? err : new Error(String(err)));
      });
    }
    if (maxFrames !== undefined && this.results >= maxFrames) this.o.onLimit();
  }

  /** Waits for the writes queued so far; resolves with the first write error, if any. */
  async settled(): Promise<Error | undefined> {
    try {
      await this.writes;
      return undefined;
    } catch (err) {
      return err as Error;
    }
  }
}
