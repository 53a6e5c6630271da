import { readFileSync, renameSync } from 'node:fs';
import { writeFileAtomic } from '../util/files.js';

/**
 * Below this clock reading (2025-01-01) the clock is not trusted to be later than any earlier run's,
 * which is what recovering from a lost sequence file relies on (a cart without a battery-backed
 * clock boots in 1970 until NTP answers).
 */
const PLAUSIBLE_CLOCK_MS = Date.UTC(2025, 0, 1);

export interface SeqIncident {
  /** recovered: the file was unreadable and numbering jumped ahead; stalled: no number can be handed out now. */
  kind: 'recovered' | 'stalled';
  message: string;
  file: string;
  /** Results not published because of it. */
  lost: number;
}

/**
 * A strictly increasing counter that survives restarts and crashes. It reserves numbers in blocks
 * and writes the end of the block (the atomic-write helper: fsync + rename + directory fsync)
 * before handing any of them out, so a crash skips the rest of the block but never repeats a
 * number. Gaps are harmless: consumers only rely on seq increasing per device; lost messages show
 * up in the queue's `dropped`/`damaged` counts and events.
 *
 * Nothing here stops inference. A reservation that cannot be written (a full disk) makes take()
 * return undefined, so that one result is not published (the caller counts it), and the next take()
 * tries again. An unreadable file (damaged outside this code: it is only ever replaced atomically)
 * is moved aside to `<file>.corrupt-<time>` and numbering continues from the wall clock in
 * microseconds, which is above any number a device could have issued (1000 results per
 * millisecond since 1970), unless the clock itself is implausible: then results are not
 * published until the operator fixes the clock or the file. Both raise an incident.
 */
export class SeqCounter {
  private next: number;
  private reservedUntil: number;
  private incidents: SeqIncident[] = [];
  /** Set while no number may be handed out (unreadable file and an implausible clock). */
  private blocked: string | undefined;
  /** While reservations fail: results refused after the first (which was reported). */
  private stalledMore: number | undefined;
  /** Results refused while blocked and not yet reported. */
  private blockedCount = 0;
  private blockedReportedAt = -Infinity;

  constructor(
    private readonly file: string | undefined,
    // Each reservation is a file fsync plus a directory fsync on the supervisor's thread: one per
    // 1,000 results (33 s at 30 fps). A crash skips the rest of a block; gaps in seq are harmless.
    private readonly block = 1000,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isSafeInteger(block) || block < 1) throw new RangeError(`block must be a positive integer, got ${block}`);
    this.next = file ? this.readReserved(file) : 0;
    this.reservedUntil = this.next;
  }

  /** The next number, starting at 0 for a fresh file; undefined when none can be handed out now (see incidents). */
  take(): number | undefined {
    if (this.blocked !== undefined) {
      this.blockedCount++;
      return undefined;
    }
    if (this.next >= this.reservedUntil) {
      const until = this.next + this.block;
      if (this.file) {
        try {
          writeFileAtomic(this.file, `${JSON.stringify({ reserved: until })}\n`, { mode: 0o600 });
        } catch (err) {
          if (this.stalledMore === undefined) {
            this.stalledMore = 0;
            this.report('stalled', `cannot reserve result seq numbers in ${this.file}: ${(err as Error).message}; results are not published until it works again`, 1);
          } else {
            this.stalledMore++;
          }
          return undefined;
        }
        if (this.stalledMore !== undefined) {
          if (this.stalledMore > 0) this.report('stalled', `${this.stalledMore} more result(s) were not published while ${this.file} could not be written; it works again`, this.stalledMore);
          this.stalledMore = undefined;
        }
      }
      this.reservedUntil = until;
    }
    return this.next++;
  }

  /** The number take() will return next. */
  peek(): number {
    return this.next;
  }

  /** Incidents since the last call, handed over once. */
  takeIncidents(): SeqIncident[] {
    // At most once a minute: a device at 30 results/s must not turn each into an event.
    if (this.blockedCount > 0 && this.now() - this.blockedReportedAt >= 60_000) {
      this.blockedReportedAt = this.now();
      this.report('stalled', `${this.blockedCount} result(s) not published: ${this.file ?? ''} ${this.blocked ?? ''}`, this.blockedCount);
      this.blockedCount = 0;
    }
    const out = this.incidents;
    this.incidents = [];
    return out;
  }

  private report(kind: SeqIncident['kind'], message: string, lost = 0): void {
    this.incidents.push({ kind, message, file: this.file ?? '', lost });
  }

  private readReserved(file: string): number {
    let problem: string;
    try {
      const v = JSON.parse(readFileSync(file, 'utf8')) as { reserved?: unknown };
      if (typeof v.reserved === 'number' && Number.isSafeInteger(v.reserved) && v.reserved >= 0) return v.reserved;
      problem = 'holds no valid "reserved" number';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      problem = `is unreadable (${(err as Error).message})`;
    }
    const aside = `${file}.corrupt-${this.now()}`;
    try {
      renameSync(file, aside);
    } catch {
      // Kept in place; the next reservation replaces it.
    }
    return this.fromClock(`sequence file ${file} ${problem}`, `moved to ${aside}`);
  }

  /**
   * Numbering that needs no file: the wall clock in microseconds, above any number issued before
   * (a file-backed counter would need 1.7e15 results to get there). A clock before 2025 cannot be
   * trusted for that, so nothing is numbered until it is set.
   */
  private fromClock(why: string, note: string): number {
    const now = this.now();
    if (now < PLAUSIBLE_CLOCK_MS) {
      this.blocked = why;
      this.report(
        'stalled',
        `${why} and the clock (${new Date(now).toISOString()}) is too early to continue numbering safely: ` +
          `results are not published (inference and local sinks go on) until the clock is set and the run restarted`,
      );
      return 0;
    }
    const jumped = now * 1000;
    this.report('recovered', `${why} (${note}); result seq continues at ${jumped} (wall clock in microseconds), above any number issued before`);
    return jumped;
  }

  /** For a queue directory that cannot be used: numbers from the clock, none kept on disk. */
  static withoutFile(reason: string, now: () => number = Date.now): SeqCounter {
    const c = new SeqCounter(undefined, 1000, now);
    c.next = c.fromClock(reason, 'no sequence file can be kept');
    c.reservedUntil = c.next;
    return c;
  }
}
