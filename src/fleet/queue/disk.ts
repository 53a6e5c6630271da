/**
 * Disk-backed bounded offline queue.
 *
 * Layout of the directory:
 *   seg-<first id, 16 digits>.log   append-only segments of records
 *   index.json                      { committed, dropped }: every id <= committed is gone for good
 *
 * Record: u32 LE body length | u32 LE CRC-32 of body | body, where body is
 *   u8 version (1) | u8 flags (bits 0-1 qos, bit 2 retain) | u48 LE id | u16 LE topic length | topic | payload
 *
 * On open every segment is scanned. A record whose header or body is cut short, or whose CRC does
 * not match (a crash or power cut mid-write), ends the readable part of its segment: the file is
 * truncated there, so later appends start on a clean boundary, and the discarded tail counts as
 * one torn record in stats().torn.
 *
 * Acknowledgements remove a message from memory at once and reach index.json in batches (see
 * fsync / commitIntervalMs); a crash before that re-delivers those messages, never loses them.
 * A segment whose every record is acknowledged or dropped is deleted, except the one being written.
 * Disk use is therefore the pending bytes plus at most one segment per partly acknowledged segment.
 */
import {
  close as closeAsync,
  closeSync,
  fsync as fsyncAsync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rename as renameAsync,
  renameSync,
  unlink as unlinkAsync,
  unlinkSync,
  writeSync,
  fstatSync,
} from 'node:fs';
import path from 'node:path';
import { crc32 } from './crc32.js';
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
  type StoreLimits,
  type StoreStats,
} from './store.js';

/**
 * always: fsync every append and every commit, on the calling thread (survives power loss; slowest);
 * interval: fsync at most every fsyncIntervalMs, in the background (libuv thread pool), so a slow
 *   SD card does not stall the JS thread that runs the pipeline. A power cut loses at most about
 *   that window; a process crash loses nothing, the kernel has the data;
 * never: leave it to the kernel.
 */
export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface Clock {
  now(): number;
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
}

const HEADER = 8;
const BODY_FIXED = 1 + 1 + 6 + 2;
const VERSION = 1;
const MAX_BODY = 256 * 1024 * 1024;
const SEGMENT = /^seg-(\d{16})\.log$/;
const INDEX = 'index.json';

interface Location {
  segment: Segment;
  /** Offset of the record header. */
  offset: number;
  length: number;
  size: number;
}

interface Segment {
  firstId: number;
  file: string;
  fd: number;
  bytes: number;
  live: number;
}

export class DiskStore implements MessageStore {
  readonly dir: string;
  private readonly limits: ResolvedLimits;
  private readonly fsyncPolicy: FsyncPolicy;
  private readonly fsyncIntervalMs: number;
  private readonly commitIntervalMs: number;
  private readonly segmentBytes: number;
  private readonly clock: Clock;
  private readonly segments: Segment[] = [];
  // Insertion-ordered by id: the first entry is always the oldest pending message.
  private readonly live = new Map<number, Location>();
  private nextId = 1;
  private bytes = 0;
  private dropped = 0;
  private torn = 0;
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
    mkdirSync(this.dir, { recursive: true });
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
    const id = this.nextId;
    const bodyLength = BODY_FIXED + topic.length + payload.length;
    if (bodyLength > MAX_BODY) throw new RangeError(`message of ${bodyLength} bytes is larger than a record may be`);
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
    record.writeUInt32LE(crc32(record, HEADER), 4);

    const segment = this.writableSegment(id);
    writeAll(segment.fd, record, segment.bytes);
    const location: Location = { segment, offset: segment.bytes, length: record.length, size };
    segment.bytes += record.length;
    segment.live++;
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
      if (id > afterId) out.push(this.read(id, loc));
    }
    return out;
  }

  ack(id: number): void {
    if (this.closed) return;
    if (this.remove(id)) this.maybeCommit();
  }

  stats(): StoreStats {
    return { pending: this.live.size, bytes: this.bytes, dropped: this.dropped, torn: this.torn };
  }

  flush(): void {
    if (this.closed) return;
    const active = this.segments.at(-1);
    if (this.unsynced && active && this.fsyncPolicy !== 'never') {
      fsyncSync(active.fd);
      this.unsynced = false;
      this.lastSyncAt = this.clock.now();
    }
    this.commit();
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const s of this.segments) closeSync(s.fd);
    this.segments.length = 0;
    this.live.clear();
  }

  // -------------------------------------------------------------------------------------------

  private load(): void {
    const index = this.readIndex();
    this.committedOnDisk = index.committed;
    this.droppedOnDisk = index.dropped;
    this.dropped = index.dropped;
    const files = readdirSync(this.dir)
      .map((f) => ({ f, m: SEGMENT.exec(f) }))
      .filter((x): x is { f: string; m: RegExpExecArray } => x.m !== null)
      .sort((a, b) => Number(a.m[1]) - Number(b.m[1]));
    // Index files a crash left half-written; the last renamed index.json is the valid one.
    for (const f of readdirSync(this.dir)) if (/^index\.json(\.\d+)?\.tmp$/.test(f)) unlinkSync(path.join(this.dir, f));
    let maxId = index.committed;
    for (const { f, m } of files) {
      const file = path.join(this.dir, f);
      const fd = openSync(file, 'r+');
      const segment: Segment = { firstId: Number(m[1]), file, fd, bytes: 0, live: 0 };
      const data = readFileSync(file);
      let offset = 0;
      while (offset < data.length) {
        const parsed = parseRecord(data, offset);
        if (!parsed) {
          // Everything from here on is unreadable; drop it so appends start on a record boundary.
          this.torn++;
          ftruncateSync(fd, offset);
          fsyncSync(fd);
          break;
        }
        const { id, length, size } = parsed;
        if (id > maxId) maxId = id;
        if (id > index.committed && !this.live.has(id)) {
          this.live.set(id, { segment, offset, length, size });
          segment.live++;
          this.bytes += size;
        }
        offset += length;
      }
      segment.bytes = offset;
      this.segments.push(segment);
    }
    this.nextId = maxId + 1;
    // Segments left over from acknowledged work (deleted lazily or before a crash) go now.
    for (const s of [...this.segments.slice(0, -1)]) if (s.live === 0) this.deleteSegment(s);
    // Live map must be ordered by id for peek(); segments were read in order, but sort to be sure.
    const sorted = [...this.live.entries()].sort((a, b) => a[0] - b[0]);
    this.live.clear();
    for (const [id, loc] of sorted) this.live.set(id, loc);
    this.lastCommitAt = this.clock.now();
    this.lastSyncAt = this.lastCommitAt;
  }

  private readIndex(): { committed: number; dropped: number } {
    let text: string;
    try {
      text = readFileSync(path.join(this.dir, INDEX), 'utf8');
    } catch {
      return { committed: 0, dropped: 0 };
    }
    try {
      const v = JSON.parse(text) as { committed?: unknown; dropped?: unknown };
      const committed = Number.isSafeInteger(v.committed) && (v.committed as number) >= 0 ? (v.committed as number) : 0;
      const dropped = Number.isSafeInteger(v.dropped) && (v.dropped as number) >= 0 ? (v.dropped as number) : 0;
      return { committed, dropped };
    } catch {
      // The index is replaced atomically, so this is outside damage; re-delivering everything on
      // disk is the at-least-once answer.
      return { committed: 0, dropped: 0 };
    }
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
    const segmentFd = syncDue ? this.segments.at(-1)?.fd : undefined;
    if (syncDue) {
      this.unsynced = false;
      this.lastSyncAt = now;
    }
    let index: { tmp: string; fd: number; committed: number; dropped: number; generation: number } | undefined;
    if (commitDue) {
      const committed = this.committedId();
      const generation = ++this.indexGeneration;
      const tmp = path.join(this.dir, `${INDEX}.${generation}.tmp`);
      const fd = openSync(tmp, 'w');
      writeAll(fd, indexText(committed, this.dropped), 0);
      index = { tmp, fd, committed, dropped: this.dropped, generation };
      this.lastCommitAt = now;
    }
    const finishIndex = (): void => {
      if (!index) {
        this.syncing = false;
        return;
      }
      const { tmp, fd, committed, dropped, generation } = index;
      fsyncAsync(fd, () => {
        closeAsync(fd, () => {
          if (generation !== this.indexGeneration) {
            // A synchronous commit (flush/close) wrote a newer index meanwhile.
            unlinkAsync(tmp, () => (this.syncing = false));
            return;
          }
          renameAsync(tmp, path.join(this.dir, INDEX), (err) => {
            if (!err) {
              this.committedOnDisk = committed;
              this.droppedOnDisk = dropped;
            }
            this.syncing = false;
          });
        });
      });
    };
    // Errors are ignored: the segment fd may have been closed by a segment deletion meanwhile
    // (nothing left to sync there), and an unsynced index only means re-delivery after a crash.
    if (segmentFd === undefined) finishIndex();
    else fsyncAsync(segmentFd, () => finishIndex());
  }

  private commit(): void {
    const committed = this.committedId();
    if (committed === this.committedOnDisk && this.dropped === this.droppedOnDisk) return;
    const file = path.join(this.dir, INDEX);
    const tmp = `${file}.tmp`;
    this.indexGeneration++;
    const fd = openSync(tmp, 'w');
    try {
      writeAll(fd, indexText(committed, this.dropped), 0);
      if (this.fsyncPolicy !== 'never') fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    this.committedOnDisk = committed;
    this.droppedOnDisk = this.dropped;
    this.lastCommitAt = this.clock.now();
  }

  private syncIfDue(fd: number): void {
    if (this.fsyncPolicy === 'always') {
      fsyncSync(fd);
      this.unsynced = false;
      this.lastSyncAt = this.clock.now();
    } else if (this.fsyncPolicy === 'interval' && this.clock.now() - this.lastSyncAt >= this.fsyncIntervalMs) {
      this.periodic();
    }
  }

  private writableSegment(id: number): Segment {
    const last = this.segments.at(-1);
    if (last && last.bytes < this.segmentBytes) return last;
    if (last) {
      // The finished segment must be durable before records start landing in the next one.
      if (this.fsyncPolicy !== 'never' && this.unsynced) {
        fsyncSync(last.fd);
        this.unsynced = false;
      }
      if (last.live === 0) this.deleteSegment(last);
    }
    const file = path.join(this.dir, `seg-${String(id).padStart(16, '0')}.log`);
    const fd = openSync(file, 'a+');
    const segment: Segment = { firstId: id, file, fd, bytes: fstatSync(fd).size, live: 0 };
    this.segments.push(segment);
    return segment;
  }

  private remove(id: number): boolean {
    const loc = this.live.get(id);
    if (!loc) return false;
    this.live.delete(id);
    this.bytes -= loc.size;
    loc.segment.live--;
    if (loc.segment.live === 0 && loc.segment !== this.segments.at(-1)) this.deleteSegment(loc.segment);
    return true;
  }

  private deleteSegment(segment: Segment): void {
    const i = this.segments.indexOf(segment);
    if (i >= 0) this.segments.splice(i, 1);
    closeSync(segment.fd);
    unlinkSync(segment.file);
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

  private read(id: number, loc: Location): QueuedMessage {
    const buf = Buffer.allocUnsafe(loc.length);
    let got = 0;
    while (got < loc.length) {
      const n = readSync(loc.segment.fd, buf, got, loc.length - got, loc.offset + got);
      if (n === 0) throw new Error(`segment ${loc.segment.file} is shorter than its index says (message ${id})`);
      got += n;
    }
    const parsed = parseRecord(buf, 0);
    if (!parsed || parsed.id !== id) throw new Error(`record of message ${id} in ${loc.segment.file} changed on disk`);
    return { id, topic: parsed.topic, payload: parsed.payload, qos: parsed.qos, retain: parsed.retain };
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('message store is closed');
  }
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

function parseRecord(data: Buffer, offset: number): ParsedRecord | undefined {
  if (offset + HEADER > data.length) return undefined;
  const bodyLength = data.readUInt32LE(offset);
  if (bodyLength < BODY_FIXED || bodyLength > MAX_BODY) return undefined;
  const start = offset + HEADER;
  const end = start + bodyLength;
  if (end > data.length) return undefined;
  if (crc32(data, start, end) !== data.readUInt32LE(offset + 4)) return undefined;
  if (data.readUInt8(start) !== VERSION) return undefined;
  const flags = data.readUInt8(start + 1);
  const qos = flags & 3;
  if (qos > 1) return undefined;
  const id = data.readUIntLE(start + 2, 6);
  const topicLength = data.readUInt16LE(start + 8);
  const topicStart = start + BODY_FIXED;
  if (topicStart + topicLength > end) return undefined;
  const topic = data.toString('utf8', topicStart, topicStart + topicLength);
  const payload = Buffer.from(data.subarray(topicStart + topicLength, end));
  return { id, length: HEADER + bodyLength, size: topicLength + payload.length, topic, payload, qos: qos as Qos, retain: (flags & 4) !== 0 };
}

function indexText(committed: number, dropped: number): Buffer {
  return Buffer.from(`${JSON.stringify({ version: 1, committed, dropped })}\n`);
}

function writeAll(fd: number, buf: Buffer, position: number): void {
  let written = 0;
  while (written < buf.length) written += writeSync(fd, buf, written, buf.length - written, position + written);
}
