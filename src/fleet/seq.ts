import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * A strictly increasing counter that survives restarts and crashes. It reserves numbers in blocks
 * and writes the end of the block (fsync + rename) before handing any of them out, so a crash
 * skips the rest of the block but never repeats a number. Gaps are harmless: consumers only rely
 * on seq increasing per device; lost messages show up in the queue's `dropped` count and events.
 */
export class SeqCounter {
  private next: number;
  private reservedUntil: number;

  constructor(
    private readonly file: string | undefined,
    private readonly block = 100,
  ) {
    if (!Number.isSafeInteger(block) || block < 1) throw new RangeError(`block must be a positive integer, got ${block}`);
    this.next = file ? readReserved(file) : 0;
    this.reservedUntil = this.next;
  }

  /** The next number, starting at 0 for a fresh file. */
  take(): number {
    if (this.next >= this.reservedUntil) {
      this.reservedUntil = this.next + this.block;
      if (this.file) writeReserved(this.file, this.reservedUntil);
    }
    return this.next++;
  }

  /** The number take() will return next. */
  peek(): number {
    return this.next;
  }
}

function readReserved(file: string): number {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as { reserved?: unknown };
    if (typeof v.reserved === 'number' && Number.isSafeInteger(v.reserved) && v.reserved >= 0) return v.reserved;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
  }
  // Written atomically, so a bad file is outside damage. Starting at 0 would repeat numbers
  // consumers already saw; refusing to start is the safer failure.
  throw new Error(`sequence file ${file} is unreadable; remove it only if repeating result seq numbers is acceptable`);
}

function writeReserved(file: string, reserved: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, `${JSON.stringify({ reserved })}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
