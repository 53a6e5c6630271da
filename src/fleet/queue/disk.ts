/**
 * Disk-backed bounded offline queue.
 *
 * Layout of the directory (0700; every file in it 0600: queued results describe patient images):
 *   seg-<first id, 16 digits>.log   append-only segments of records
 *   index.json                      { version 2, committed, dropped, nextId, crc }: every id <= committed
 *                                   is gone for good (acknowledged or dropped)
 *
 * Record: u32 LE body length | u32 LE CRC-32 of body | body, where body is
 *   u8 version (1) | u8 flags (bits 0-1 qos, bit 2 retain) | u48 LE id | u16 LE topic length | topic | payload
 *
 * Damage. Every record carries its own CRC, and ids are consecutive, so on open each segment is
 * scanned record by record: bytes that do not parse as a record (a flipped bit, a torn write, a
 * scrambled block) are skipped by searching forward for the next intact record, so damage costs
 * only the records it touches. What they were is known from the ids missing between intact
 * records; that count is reported (stats().damaged and an incident) and the segment is rewritten
 * without the damage, so the same loss is never reported twice. A record cut short at the end of the
 * newest segment (a crash mid-append) is cut off and counted in stats().torn; its id is reused.
 * A record that changes on disk after open is dropped from the queue at read time, and reported.
 *
 * The index is checksummed. One that is missing, unreadable, of an older version, fails its
 * checksum, or contradicts the segments (claims more delivered than was ever written) is not
 * trusted: every record on disk is queued again (at-least-once; consumers deduplicate on
 * (device, seq)) and an `index-recovered` incident says so. Intact records are never dropped on
 * the index's word alone.
 *
 * Acknowledgements remove a message from memory at once and reach index.json in batches (see
 * fsync / commitIntervalMs); a crash before that re-delivers those messages, never loses them. A
 * segment is deleted once the index on disk says all its records are gone (never before, so a
 * crash cannot make delivered records look lost), except the one being written.
 *
 * Write errors (ENOSPC, EIO, a read-only remount) never escape append(): the partial record is cut
 * off, the configured drop policy decides (drop-oldest deletes the oldest segment's messages to
 * make room and tries once more; drop-newest refuses the new message), and the loss is counted in
 * `dropped` and `writeErrors` and reported as a `write-failed` incident. A failed index write only
 * means re-delivery after a crash; it is reported once per streak.
 */
import {
  closeSync,
  fchmodSync,
  fsync as fsyncAsync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  chmodSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  unlinkSync,
  writeSync,
  fstatSync,
} from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { ATOMIC_TEMP, fsyncDir, writeFileAtomic, writeFileAtomicAsync } from '../../util/files.js';
import {
  makeRoomFor,
  messageSize,
  resolveLimits,
  toBuffer,
  type MessageStore,
  type NewMessage,
  type QueuedMessage,
  type Qos,
  type ResolvedLimits,
  type StoreIncident,
  type StoreLimits,
  type StoreStats,
} from './store.js';

/**
 * always: fsync every append and every commit, on the calling thread (survives power loss; slowest);
 * interval: fsync at most every fsyncIntervalMs, in the background (libuv thread pool), so a slow
 *   SD card does not stall the JS thread that runs the pipeline. A power cut loses at most about
 *   that window (reported as damaged when the index had already counted those records); a process
 *   crash loses nothing, the kernel has the data;
 * never: leave it to the kernel.
 */
export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface Clock {
  now(): number;
}

/** The file calls appends go through; injectable so tests can make the disk fill up or fail. */
export interface SegmentIo {
  write(fd: number, buf: Buffer, offset: number, length: number, position: number): number;
}

export interface DiskStoreOptions extends StoreLimits {
  dir: string;
  /** Default 'interval'. */
  fsync?: FsyncPolicy;
  /** Default 1000. */
  fsyncIntervalMs?: number;
  /** How often batched acknowledgements are written to index.json; default 1000 ms. */
  commitIntervalMs?: number;
  /** A new segment is started once the current one reaches this size; default 4 MiB. */
  segmentBytes?: number;
  /** Injectable for tests; default Date.now. */
  clock?: Clock;
  /**
   * Flush batched acknowledgements on a timer as well as on later appends/acks; default true.
   * The timer is unref'd so it never keeps a process alive.
   */
  autoFlush?: boolean;
  /** Injectable for fault drills; default node:fs writeSync. */
  io?: SegmentIo;
}

const HEADER = 8;
const BODY_FIXED = 1 + 1 + 6 + 2;
const VERSION = 1;
const MAX_BODY = 256 * 1024 * 1024;
const SEGMENT = /^seg-(\d{16})\.log$/;
const INDEX = 'index.json';
const INDEX_VERSION = 2;
const INDEX_BYTES = 160;
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
/** Ids in one segment are at most this far above its first: bounds the resync search. */
const MAX_ID_SPAN = 2 ** 32;

interface Location {
  segment: Segment;
  /** Offset of the record header. */
  offset: number;
  length: number;
  size: number;
}

interface Segment {
  firstId: number;
  /** Highest id written into it. */
  lastId: number;
  file: string;
  fd: number;
  bytes: number;
  live: number;
}

interface IndexState {
  committed: number;
  dropped: number;
  nextId: number;
}

const defaultIo: SegmentIo = { write: (fd, buf, offset, length, position) => writeSync(fd, buf, offset, length, position) };

export class DiskStore implements MessageStore {
  readonly dir: string;
  private readonly limits: ResolvedLimits;
  private readonly fsyncPolicy: FsyncPolicy;
  private readonly fsyncIntervalMs: number;
  private readonly commitIntervalMs: number;
  private readonly segmentBytes: number;
  private readonly clock: Clock;
  private readonly io: SegmentIo;
  private readonly segments: Segment[] = [];
  // Insertion-ordered by id: the first entry is always the oldest pending message.
  private readonly live = new Map<number, Location>();
  private nextId = 1;
  private bytes = 0;
  private dropped = 0;
  private torn = 0;
  private damaged = 0;
  private writeErrors = 0;
  private incidents: StoreIncident[] = [];
  /** Appends failing in a row with one error code: the first is reported, `more` counts the rest. */
  private failStreak: { code: string; more: number } | undefined;
  /** The error code of the index write streak already reported; cleared by a successful write. */
  private indexFailure: string | undefined;
  private committedOnDisk = 0;
  private droppedOnDisk = 0;
  private lastCommitAt = 0;
  private lastSyncAt = 0;
  private unsynced = false;
  /** A background fsync/commit is running; the next one waits for it. */
  private syncing = false;
  /** Bumped by every index write, so a background commit never overwrites a newer one. */
  private indexGeneration = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: DiskStoreOptions) {
    this.dir = options.dir;
    this.limits = resolveLimits(options);
    this.fsyncPolicy = options.fsync ?? 'interval';
    if (!['always', 'interval', 'never'].includes(this.fsyncPolicy)) throw new RangeError(`unknown fsync policy ${this.fsyncPolicy}`);
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? 1000;
    this.commitIntervalMs = options.commitIntervalMs ?? 1000;
    this.segmentBytes = options.segmentBytes ?? 4 * 1024 * 1024;
    this.clock = options.clock ?? { now: () => Date.now() };
    this.io = options.io ?? defaultIo;
    mkdirSync(this.dir, { recursive: true, mode: DIR_MODE });
    // A queue directory created by an older version (or by hand) may be world-readable.
    chmodSync(this.dir, DIR_MODE);
    this.load();
    if (options.autoFlush ?? true) {
      const every = Math.max(50, Math.min(this.commitIntervalMs, this.fsyncIntervalMs));
      this.timer = setInterval(() => this.periodic(), every);
      this.timer.unref();
    }
  }

  append(message: NewMessage): number | undefined {
    this.assertOpen();
    const payload = toBuffer(message.payload);
    const topic = Buffer.from(message.topic);
    if (topic.length > 0xffff) throw new RangeError('topic longer than 65535 bytes');
    const size = messageSize(message.topic, payload);
    if (!this.makeRoom(size)) {
      this.dropped++;
      this.maybeCommit();
      return undefined;
    }
    const qos: Qos = message.qos ?? 1;
    const retain = message.retain ?? false;
    const bodyLength = BODY_FIXED + topic.length + payload.length;
    if (bodyLength > MAX_BODY) throw new RangeError(`message of ${bodyLength} bytes is larger than a record may be`);
    const id = this.nextId;
    const record = Buffer.allocUnsafe(HEADER + bodyLength);
    record.writeUInt32LE(bodyLength, 0);
    let o = HEADER;
    record.writeUInt8(VERSION, o++);
    record.writeUInt8((qos & 3) | (retain ? 4 : 0), o++);
    record.writeUIntLE(id, o, 6);
    o += 6;
    record.writeUInt16LE(topic.length, o);
    o += 2;
    topic.copy(record, o);
    o += topic.length;
    payload.copy(record, o);
    record.writeUInt32LE(crc32(record.subarray(HEADER)), 4);

    let segment = this.tryWrite(id, record);
    if (segment instanceof Error && this.limits.dropPolicy === 'drop-oldest' && this.freeOldestSegment()) segment = this.tryWrite(id, record);
    if (segment instanceof Error) {
      this.writeErrors++;
      this.dropped++;
      this.appendFailed(segment as NodeJS.ErrnoException);
      this.maybeCommit();
      return undefined;
    }
    this.endFailStreak();
    const location: Location = { segment, offset: segment.bytes, length: record.length, size };
    segment.bytes += record.length;
    segment.live++;
    segment.lastId = id;
    this.live.set(id, location);
    this.bytes += size;
    this.nextId++;
    this.unsynced = true;
    this.syncIfDue(segment.fd);
    this.maybeCommit();
    return id;
  }

  peek(afterId: number, limit: number): QueuedMessage[] {
    this.assertOpen();
    const out: QueuedMessage[] = [];
    for (const [id, loc] of this.live) {
      if (out.length >= limit) break;
      if (id <= afterId) continue;
      const message = this.read(id, loc);
      if (message) out.push(message);
    }
    return out;
  }

  ack(id: number): void {
    if (this.closed) return;
    if (this.remove(id)) this.maybeCommit();
  }

  stats(): StoreStats {
    return { pending: this.live.size, bytes: this.bytes, dropped: this.dropped, torn: this.torn, damaged: this.damaged, writeErrors: this.writeErrors };
  }

  takeIncidents(): StoreIncident[] {
    if (this.closed) this.endFailStreak();
    const out = this.incidents;
    this.incidents = [];
    return out;
  }

  flush(): void {
    if (this.closed) return;
    try {
      this.syncActive();
    } catch (err) {
      this.indexWriteFailed(err);
    }
    this.commit();
  }

  close(): void {
    if (this.closed) return;
    this.endFailStreak();
    this.flush();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const s of this.segments) closeSync(s.fd);
    this.segments.length = 0;
    this.live.clear();
  }

  // -------------------------------------------------------------------------------------------

  /** Appends `record` for `id` to the writable segment; on failure cuts the partial record off and returns the error. */
  private tryWrite(id: number, record: Buffer): Segment | Error {
    let segment: Segment | undefined;
    try {
      segment = this.writableSegment(id);
      let written = 0;
      while (written < record.length) written += this.io.write(segment.fd, record, written, record.length - written, segment.bytes + written);
      return segment;
    } catch (err) {
      if (segment) {
        try {
          ftruncateSync(segment.fd, segment.bytes);
        } catch {
          // The half record stays; the next open cuts it off as torn, since nothing follows it.
        }
      }
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /**
   * drop-oldest on a full disk: drops every pending message of the oldest segment that is not
   * being written and deletes it, to free its space. False when there is no such segment.
   */
  private freeOldestSegment(): boolean {
    const oldest = this.segments.length > 1 ? this.segments[0] : undefined;
    if (!oldest) return false;
    let evicted = 0;
    for (const [id, loc] of [...this.live]) {
      if (loc.segment !== oldest) break;
      this.remove(id);
      evicted++;
    }
    this.dropped += evicted;
    // Record the drops first if the disk still takes a few bytes; if it does not, the deleted ids
    // are reported as lost (damaged) after a crash instead of dropped: counted either way.
    this.commit();
    if (this.segments.includes(oldest)) this.deleteSegment(oldest);
    return true;
  }

  private report(incident: StoreIncident): void {
    this.incidents.push(incident);
  }

  /**
   * A full disk refuses every append: the first failure of a streak is reported at once, the rest
   * are counted and reported in one incident when the streak ends (or before the store closes).
   */
  private appendFailed(err: NodeJS.ErrnoException): void {
    const code = err.code ?? 'EIO';
    if (this.failStreak && this.failStreak.code === code) {
      this.failStreak.more++;
      return;
    }
    this.endFailStreak();
    this.failStreak = { code, more: 0 };
    this.report({
      kind: 'write-failed',
      lost: 1,
      code,
      file: this.dir,
      message: `queue write failed in ${this.dir} (${code}: ${err.message}): messages are dropped under ${this.limits.dropPolicy} until writes succeed again (counted in dropped)`,
    });
  }

  private endFailStreak(): void {
    const streak = this.failStreak;
    this.failStreak = undefined;
    if (!streak || streak.more === 0) return;
    this.report({
      kind: 'write-failed',
      lost: streak.more,
      code: streak.code,
      file: this.dir,
      message: `queue writes in ${this.dir} failed (${streak.code}) for ${streak.more} more message(s), dropped; writing works again`,
    });
  }

  private load(): void {
    const { index, problem, missing } = this.readIndex();
    // Temporary files a crash left behind (the index's, or a segment being repaired).
    for (const f of readdirSync(this.dir)) if (ATOMIC_TEMP.test(f)) unlinkSync(path.join(this.dir, f));
    const files = readdirSync(this.dir)
      .map((f) => ({ f, m: SEGMENT.exec(f) }))
      .filter((x): x is { f: string; m: RegExpExecArray } => x.m !== null)
      .sort((a, b) => Number(a.m[1]) - Number(b.m[1]));

    const scans: SegmentScan[] = [];
    const seen = new Set<number>();
    let maxId = 0;
    for (const { f, m } of files) {
      const file = path.join(this.dir, f);
      const fd = openSync(file, 'r+');
      fchmodSync(fd, FILE_MODE);
      const firstId = Number(m[1]);
      const scan = scanSegment(readFileSync(file), firstId, seen);
      for (const r of scan.records) if (r.id > maxId) maxId = r.id;
      scans.push({ ...scan, segment: { firstId, lastId: firstId - 1, file, fd, bytes: 0, live: 0 } });
    }

    let trusted = problem === undefined;
    let why = problem;
    if (trusted && seen.size > 0 && index.committed > maxId) {
      trusted = false;
      why = `index.json says messages up to ${index.committed} are delivered, but the newest record on disk is ${maxId}`;
    }
    const committed = trusted ? index.committed : 0;
    if (!trusted && why !== undefined) {
      this.report({
        kind: 'index-recovered',
        lost: 0,
        file: path.join(this.dir, INDEX),
        message: `${why}: not trusted; every record on disk is queued again (duplicates possible; consumers deduplicate on device and seq)`,
      });
    }
    this.dropped = trusted ? index.dropped : 0;
    // Ids written before a power cut that the index had already counted (trusted index only).
    const indexTop = trusted ? index.nextId - 1 : 0;

    let lostHere = 0;
    // A head of the queue that no segment holds any more: the index says it was pending.
    if (trusted && scans.length > 0 && scans[0].segment.firstId - 1 > committed) {
      lostHere = scans[0].segment.firstId - 1 - committed;
      this.damaged += lostHere;
      this.report({ kind: 'damaged', lost: lostHere, file: scans[0].segment.file, message: `queue segments holding messages ${committed + 1}..${scans[0].segment.firstId - 1} are missing` });
    }

    for (let i = 0; i < scans.length; i++) {
      const scan = scans[i];
      const { segment } = scan;
      const isLast = i === scans.length - 1;
      this.torn += scan.stretches;
      const tornTailOnly = isLast && scan.tornTail && scan.damagedBytes === scan.tailBytes;
      // Records after the last intact one in the newest segment have no later id to bound them:
      // the index's count, or the records the damaged tail's length fields still outline.
      const tailRecords = isLast && !scan.tornTail ? countRecords(scan.data.subarray(scan.validEnd)) : 0;
      const upper = isLast ? Math.max(scan.maxId + tailRecords, indexTop) : scans[i + 1].segment.firstId - 1;
      const floor = Math.max(committed, segment.firstId - 1);
      if (scan.damagedBytes > 0 || (isLast && indexTop > scan.maxId)) {
        const present = new Set(scan.records.map((r) => r.id));
        let lost = 0;
        for (let id = floor + 1; id <= upper; id++) if (!present.has(id)) lost++;
        // A record cut short at the very end is an append the crash interrupted: never accepted, not lost.
        if (lost > 0 || !tornTailOnly) {
          this.damaged += lost;
          this.report({
            kind: tornTailOnly ? 'torn' : 'damaged',
            lost,
            file: segment.file,
            message: `${segment.file}: ${scan.damagedBytes} unreadable byte(s) in ${scan.stretches} stretch(es); ${lost} queued message(s) lost, ${scan.records.filter((r) => r.id > committed).length} intact kept`,
          });
        }
      }
      // Keep what is pending; repair the file so the damage is neither met nor reported again.
      const keep = scan.records.filter((r) => r.id > committed).sort((a, b) => a.id - b.id);
      if (scan.damagedBytes > 0) {
        if (scan.damagedBytes === scan.tailBytes && scan.records.every((r, k) => k === 0 || r.offset > scan.records[k - 1].offset)) {
          // Damage only after the last intact record: cut it off so appends start on a record boundary.
          ftruncateSync(segment.fd, scan.validEnd);
          segment.bytes = scan.validEnd;
          for (const r of keep) this.addLive(segment, r.id, r.offset, r.length, r.size);
        } else {
          this.rewriteSegment(segment, scan.data, keep);
        }
      } else {
        segment.bytes = scan.data.length;
        for (const r of keep) this.addLive(segment, r.id, r.offset, r.length, r.size);
      }
      segment.lastId = Math.max(segment.firstId - 1, scan.maxId);
      this.segments.push(segment);
    }
    this.nextId = Math.max(maxId, committed, indexTop) + 1;
    // Live map must be ordered by id for peek().
    const sorted = [...this.live.entries()].sort((a, b) => a[0] - b[0]);
    this.live.clear();
    for (const [id, loc] of sorted) this.live.set(id, loc);
    this.committedOnDisk = trusted ? index.committed : -1;
    this.droppedOnDisk = trusted ? index.dropped : -1;
    this.lastCommitAt = this.clock.now();
    this.lastSyncAt = this.lastCommitAt;
    // Settle what was found (a recovered index, a lost head) in a fresh index at once, then let go
    // of segments whose records are all gone.
    // A new store gets its index at once: on a full disk it can then be overwritten in place.
    if (missing) this.committedOnDisk = -1;
    if (!trusted || missing || lostHere > 0 || this.incidents.length > 0) this.commit();
    this.reap();
  }

  private addLive(segment: Segment, id: number, offset: number, length: number, size: number): void {
    this.live.set(id, { segment, offset, length, size });
    segment.live++;
    this.bytes += size;
  }

  /** Replaces a damaged segment by one holding only `keep`, atomically; on failure keeps reading the old file. */
  private rewriteSegment(segment: Segment, data: Buffer, keep: readonly ScannedRecord[]): void {
    const parts = keep.map((r) => data.subarray(r.offset, r.offset + r.length));
    try {
      writeFileAtomic(segment.file, Buffer.concat(parts), { mode: FILE_MODE, durable: this.fsyncPolicy !== 'never' });
      closeSync(segment.fd);
      segment.fd = openSync(segment.file, 'r+');
      let offset = 0;
      for (const r of keep) {
        this.addLive(segment, r.id, offset, r.length, r.size);
        offset += r.length;
      }
      segment.bytes = offset;
    } catch (err) {
      // No room for a repaired copy: serve the intact records from the damaged file; the damage is
      // found (and reported) again on the next open.
      for (const r of keep) this.addLive(segment, r.id, r.offset, r.length, r.size);
      segment.bytes = data.length;
      this.report({ kind: 'write-failed', lost: 0, code: (err as NodeJS.ErrnoException).code ?? 'EIO', file: segment.file, message: `could not repair ${segment.file}: ${(err as Error).message}` });
    }
  }

  private readIndex(): { index: IndexState; problem?: string; missing?: boolean } {
    const file = path.join(this.dir, INDEX);
    const fresh: IndexState = { committed: 0, dropped: 0, nextId: 1 };
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { index: fresh, missing: true };
      return { index: fresh, problem: `${file} is unreadable (${(err as Error).message})` };
    }
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return { index: fresh, problem: `${file} is not JSON` };
    }
    const committed = v.committed;
    const dropped = v.dropped;
    const nextId = v.nextId;
    if (v.version !== INDEX_VERSION) return { index: fresh, problem: `${file} has version ${String(v.version)}, not ${INDEX_VERSION}` };
    const ints = [committed, dropped, nextId].every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
    if (!ints || v.crc !== indexCrc(committed as number, dropped as number, nextId as number)) {
      return { index: fresh, problem: `${file} fails its checksum` };
    }
    if ((nextId as number) <= (committed as number)) return { index: fresh, problem: `${file} says ${String(committed)} delivered of ${String(nextId)} written` };
    return { index: { committed: committed as number, dropped: dropped as number, nextId: nextId as number } };
  }

  /** Every id below the oldest pending one is acknowledged or dropped. */
  private committedId(): number {
    const first = this.live.keys().next();
    return first.done ? this.nextId - 1 : first.value - 1;
  }

  private maybeCommit(): void {
    if (this.fsyncPolicy === 'always') this.commit();
    else if (this.clock.now() - this.lastCommitAt >= this.commitIntervalMs) this.periodic();
  }

  /** Due syncing and committing: synchronous for 'always' and 'never' (no fsync), else in the background. */
  private periodic(): void {
    if (this.closed) return;
    if (this.fsyncPolicy !== 'interval') {
      this.commit();
      return;
    }
    if (this.syncing) return;
    const now = this.clock.now();
    const syncDue = this.unsynced && now - this.lastSyncAt >= this.fsyncIntervalMs;
    const commitDue =
      now - this.lastCommitAt >= this.commitIntervalMs &&
      (this.committedId() !== this.committedOnDisk || this.dropped !== this.droppedOnDisk);
    if (!syncDue && !commitDue) return;
    this.syncing = true;
    const segmentFd = syncDue || commitDue ? this.segments.at(-1)?.fd : undefined;
    if (syncDue || commitDue) {
      this.unsynced = false;
      this.lastSyncAt = now;
    }
    const finishIndex = (): void => {
      if (!commitDue || this.closed) {
        this.syncing = false;
        return;
      }
      const committed = this.committedId();
      const dropped = this.dropped;
      const generation = ++this.indexGeneration;
      this.lastCommitAt = now;
      void writeFileAtomicAsync(path.join(this.dir, INDEX), indexText(committed, dropped, this.nextId), {
        mode: FILE_MODE,
        // A synchronous commit (flush/close) wrote a newer index meanwhile.
        stillWanted: () => generation === this.indexGeneration && !this.closed,
      }).then(
        (renamed) => {
          if (renamed) this.committed(committed, dropped);
          this.syncing = false;
        },
        (err: unknown) => {
          if (generation === this.indexGeneration && !this.closed && this.overwriteIndex(indexText(committed, dropped, this.nextId), err)) this.committed(committed, dropped);
          this.syncing = false;
        },
      );
    };
    // The segment is synced before the index that counts its records, so the index never claims
    // more than the disk holds. An fsync error on a segment fd closed meanwhile (deleted segment)
    // means nothing is left to sync there.
    if (segmentFd === undefined) finishIndex();
    else fsyncAsync(segmentFd, () => finishIndex());
  }

  private commit(): void {
    const committed = this.committedId();
    if (committed === this.committedOnDisk && this.dropped === this.droppedOnDisk) return;
    this.indexGeneration++;
    const text = indexText(committed, this.dropped, this.nextId);
    try {
      this.syncActive();
      writeFileAtomic(path.join(this.dir, INDEX), text, { mode: FILE_MODE, durable: this.fsyncPolicy !== 'never' });
    } catch (err) {
      if (!this.overwriteIndex(text, err)) return;
    }
    this.committed(committed, this.dropped);
    this.lastCommitAt = this.clock.now();
  }

  /**
   * A full disk has no room for a new index beside the old one, and without a new index no
   * delivered segment may be deleted: space would never come back. The index has a fixed size, so
   * it can be overwritten in place without new blocks; a power cut mid-overwrite leaves a checksum
   * mismatch, which re-delivers (never loses) the queue. True when that worked.
   */
  private overwriteIndex(text: Buffer, cause: unknown): boolean {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      try {
        const fd = openSync(path.join(this.dir, INDEX), 'r+');
        try {
          if (fstatSync(fd).size === text.length) {
            let written = 0;
            while (written < text.length) written += writeSync(fd, text, written, text.length - written, written);
            if (this.fsyncPolicy !== 'never') fsyncSync(fd);
            return true;
          }
        } finally {
          closeSync(fd);
        }
      } catch {
        // Reported below with the original error.
      }
    }
    this.indexWriteFailed(cause);
    return false;
  }

  private committed(committed: number, dropped: number): void {
    this.committedOnDisk = committed;
    this.droppedOnDisk = dropped;
    this.indexFailure = undefined;
    this.reap();
  }

  private indexWriteFailed(err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    this.writeErrors++;
    if (this.indexFailure === code) return;
    this.indexFailure = code;
    this.report({
      kind: 'index-write-failed',
      lost: 0,
      code,
      file: path.join(this.dir, INDEX),
      message: `${(err as Error).message}: acknowledgements are kept in memory; a crash now re-delivers them`,
    });
  }

  /**
   * Deletes segments whose every record the index on disk counts as gone. The one being written is
   * emptied instead (truncated to 0): with one segment larger than the free space, a full disk would
   * otherwise never get its space back, however much was delivered.
   */
  private reap(): void {
    if (this.closed) return;
    const active = this.segments.at(-1);
    for (const s of [...this.segments]) {
      if (s.live !== 0 || s.lastId > this.committedOnDisk) continue;
      if (s !== active) this.deleteSegment(s);
      else if (s.bytes > 0) {
        try {
          ftruncateSync(s.fd, 0);
          s.bytes = 0;
        } catch {
          // Kept as it is; tried again after the next commit.
        }
      }
    }
  }

  private syncActive(): void {
    const active = this.segments.at(-1);
    if (this.unsynced && active && this.fsyncPolicy !== 'never') {
      fsyncSync(active.fd);
      this.unsynced = false;
      this.lastSyncAt = this.clock.now();
    }
  }

  private syncIfDue(fd: number): void {
    if (this.fsyncPolicy === 'always') {
      try {
        fsyncSync(fd);
      } catch (err) {
        this.indexWriteFailed(err);
        return;
      }
      this.unsynced = false;
      this.lastSyncAt = this.clock.now();
    } else if (this.fsyncPolicy === 'interval' && this.clock.now() - this.lastSyncAt >= this.fsyncIntervalMs) {
      this.periodic();
    }
  }

  private writableSegment(id: number): Segment {
    const last = this.segments.at(-1);
    if (last && last.bytes < this.segmentBytes) return last;
    if (last && this.fsyncPolicy !== 'never' && this.unsynced) {
      // The finished segment must be durable before records start landing in the next one.
      fsyncSync(last.fd);
      this.unsynced = false;
    }
    const file = path.join(this.dir, `seg-${String(id).padStart(16, '0')}.log`);
    const fd = openSync(file, 'a+', FILE_MODE);
    const segment: Segment = { firstId: id, lastId: id - 1, file, fd, bytes: fstatSync(fd).size, live: 0 };
    this.segments.push(segment);
    if (this.fsyncPolicy !== 'never') fsyncDir(this.dir);
    this.reap();
    return segment;
  }

  private remove(id: number): boolean {
    const loc = this.live.get(id);
    if (!loc) return false;
    this.live.delete(id);
    this.bytes -= loc.size;
    loc.segment.live--;
    return true;
  }

  private deleteSegment(segment: Segment): void {
    const i = this.segments.indexOf(segment);
    if (i >= 0) this.segments.splice(i, 1);
    try {
      closeSync(segment.fd);
      unlinkSync(segment.file);
    } catch {
      // Left on disk (a read-only remount, say): its records are all gone per the index, so the
      // next open deletes it. Never worth failing an acknowledgement or an append over.
    }
  }

  private makeRoom(size: number): boolean {
    const evicted = makeRoomFor(this.limits, size, {
      count: () => this.live.size,
      bytes: () => this.bytes,
      oldest: () => this.live.keys().next().value,
      evict: (id) => this.remove(id),
    });
    if (evicted < 0) return false;
    this.dropped += evicted;
    return true;
  }

  /** The record of a pending message; one that changed on disk since it was written is dropped from the queue and reported. */
  private read(id: number, loc: Location): QueuedMessage | undefined {
    const buf = Buffer.allocUnsafe(loc.length);
    let got = 0;
    let problem: string | undefined;
    try {
      while (got < loc.length) {
        const n = readSync(loc.segment.fd, buf, got, loc.length - got, loc.offset + got);
        if (n === 0) break;
        got += n;
      }
    } catch (err) {
      problem = (err as Error).message;
    }
    const parsed = got === loc.length ? parseRecord(buf, 0) : undefined;
    if (parsed && parsed.id === id) return { id, topic: parsed.topic, payload: parsed.payload, qos: parsed.qos, retain: parsed.retain };
    this.remove(id);
    this.damaged++;
    this.report({
      kind: 'damaged',
      lost: 1,
      file: loc.segment.file,
      message: `queued message ${id} in ${loc.segment.file} ${problem ? `cannot be read: ${problem}` : got < loc.length ? 'was cut short on disk' : 'changed on disk (checksum mismatch)'}`,
    });
    return undefined;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('message store is closed');
  }
}

interface ScannedRecord {
  id: number;
  offset: number;
  length: number;
  size: number;
}

interface SegmentScan {
  segment: Segment;
  data: Buffer;
  records: ScannedRecord[];
  maxId: number;
  /** Bytes that are not part of an intact record. */
  damagedBytes: number;
  /** Of those, the ones after the last intact record. */
  tailBytes: number;
  /** End of the last intact record in file order. */
  validEnd: number;
  /** The tail is the start of a record whose end is missing (a crash mid-append). */
  tornTail: boolean;
  /** Separate unreadable stretches. */
  stretches: number;
}

/**
 * Finds every intact record in a segment: a damaged stretch is skipped by trying each later offset
 * until a record parses with a matching CRC, an id in this segment's range and not seen before.
 */
function scanSegment(data: Buffer, firstId: number, seen: Set<number>): Omit<SegmentScan, 'segment'> {
  const records: ScannedRecord[] = [];
  let maxId = 0;
  let damagedBytes = 0;
  let offset = 0;
  let validEnd = 0;
  let stretches = 0;
  const accept = (at: number): ParsedRecord | undefined => {
    const r = parseRecord(data, at, firstId);
    return r && !seen.has(r.id) ? r : undefined;
  };
  while (offset < data.length) {
    let r = accept(offset);
    if (!r) {
      let next = offset + 1;
      while (next < data.length && !(r = accept(next))) next++;
      damagedBytes += next - offset;
      stretches++;
      offset = next;
      if (!r) break;
    }
    seen.add(r.id);
    records.push({ id: r.id, offset, length: r.length, size: r.size });
    if (r.id > maxId) maxId = r.id;
    offset += r.length;
    validEnd = offset;
  }
  const tailBytes = data.length - validEnd;
  let tornTail = false;
  if (tailBytes > 0) {
    const tail = data.subarray(validEnd);
    // A record whose header promises more bytes than the file has: the write was cut short.
    tornTail = tail.length < HEADER || tail.readUInt32LE(0) + HEADER > tail.length;
  }
  return { data, records, maxId, damagedBytes, tailBytes, validEnd, tornTail, stretches };
}

/** How many records a damaged stretch at the end of a segment held, going by its length fields (at least 1). */
function countRecords(tail: Buffer): number {
  if (tail.length === 0) return 0;
  let n = 0;
  let o = 0;
  while (o + HEADER <= tail.length) {
    const length = tail.readUInt32LE(o);
    if (length < BODY_FIXED || o + HEADER + length > tail.length) break;
    n++;
    o += HEADER + length;
  }
  return Math.max(1, n + (o < tail.length && n > 0 ? 1 : 0));
}

interface ParsedRecord {
  id: number;
  length: number;
  size: number;
  topic: string;
  payload: Buffer;
  qos: Qos;
  retain: boolean;
}

/** The record at `offset`, or undefined when anything about it is off (cheap checks before the CRC). */
function parseRecord(data: Buffer, offset: number, firstId?: number): ParsedRecord | undefined {
  if (offset + HEADER + BODY_FIXED > data.length) return undefined;
  const bodyLength = data.readUInt32LE(offset);
  if (bodyLength < BODY_FIXED || bodyLength > MAX_BODY) return undefined;
  const start = offset + HEADER;
  const end = start + bodyLength;
  if (end > data.length) return undefined;
  if (data.readUInt8(start) !== VERSION) return undefined;
  const flags = data.readUInt8(start + 1);
  const qos = flags & 3;
  if (qos > 1 || flags > 7) return undefined;
  const id = data.readUIntLE(start + 2, 6);
  if (firstId !== undefined && (id < firstId || id >= firstId + MAX_ID_SPAN)) return undefined;
  const topicLength = data.readUInt16LE(start + 8);
  const topicStart = start + BODY_FIXED;
  if (topicStart + topicLength > end) return undefined;
  if (crc32(data.subarray(start, end)) !== data.readUInt32LE(offset + 4)) return undefined;
  const topic = data.toString('utf8', topicStart, topicStart + topicLength);
  const payload = Buffer.from(data.subarray(topicStart + topicLength, end));
  return { id, length: HEADER + bodyLength, size: topicLength + payload.length, topic, payload, qos: qos as Qos, retain: (flags & 4) !== 0 };
}

function indexCrc(committed: number, dropped: number, nextId: number): number {
  return crc32(`${INDEX_VERSION}:${committed}:${dropped}:${nextId}`);
}

/** Always INDEX_BYTES long (JSON padded with spaces), so it can be overwritten in place on a full disk. */
function indexText(committed: number, dropped: number, nextId: number): Buffer {
  const json = JSON.stringify({ version: INDEX_VERSION, committed, dropped, nextId, crc: indexCrc(committed, dropped, nextId) });
  return Buffer.from(`${json.padEnd(INDEX_BYTES - 1)}\n`);
}
