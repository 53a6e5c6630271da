/**
 * Where results go: `jsonl:PATH` (appended, one result per line), `stdout`, and the mask folder of
 * `--save-masks`. A sink receives the result and the frame-size mask; each decides what to keep.
 */
import { open, mkdir, writeFile, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';

import { encodeMaskPngAsync } from '../../image/encode.js';
import type { GrayImage } from '../../image/types.js';
import { resultLine, type ResultV1 } from './result.js';

export { RESULT_SCHEMA, assertResultV1, resultLine, type ResultV1, type StageLatencies } from './result.js';

export interface SinkItem {
  readonly result: ResultV1;
  /** The 0/1 mask at frame size: present when some sink of the pipeline needs it (needsMask). */
  readonly mask?: GrayImage;
}

export interface ResultSink {
  readonly description: string;
  /**
   * Whether write() reads item.mask. The frame-size mask stays in native memory unless a sink (or
   * another output) needs it: handing a frame-size block to the JS heap per frame costs V8 full
   * collections at 1080p.
   */
  readonly needsMask?: boolean;
  open(): Promise<void>;
  /** Resolves once the item has been handed to the OS; the pipeline awaits it before the next. */
  write(item: SinkItem): Promise<void>;
  close(): Promise<void>;
}

export type SinkSpec = { kind: 'jsonl'; path: string } | { kind: 'stdout' } | { kind: 'none' };

export function parseSinkSpec(text: string): SinkSpec {
  if (text === 'stdout' || text === '-') return { kind: 'stdout' };
  if (text === 'none') return { kind: 'none' };
  const m = /^jsonl:(.+)$/.exec(text);
  if (!m) throw new RangeError(`--sink ${JSON.stringify(text)}: use jsonl:PATH, stdout or none`);
  return { kind: 'jsonl', path: m[1] };
}

/**
 * Appends one JSON line per result. Each line goes out in a single write() on a file opened with
 * O_APPEND, so a reader tailing the file, or a crash, never sees half a line from us; there is no
 * user-space buffer to flush. Not fsync'd per line: on an SD card that would cost more than a frame.
 */
export class JsonlSink implements ResultSink {
  readonly description: string;
  private handle?: FileHandle;
  readonly path: string;

  constructor(path: string) {
    this.path = resolve(path);
    this.description = `jsonl:${this.path}`;
  }

  async open(): Promise<void> {
    try {
      this.handle = await open(this.path, 'a');
    } catch (err) {
      throw new Error(`${this.description}: cannot open for appending: ${(err as Error).message}`);
    }
  }

  async write(item: SinkItem): Promise<void> {
    if (!this.handle) throw new Error(`${this.description}: write() before open()`);
    await this.handle.write(`${resultLine(item.result)}\n`);
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }
}

/** One JSON line per result on a stream (stdout by default), honouring its back-pressure. */
export class StreamSink implements ResultSink {
  readonly description: string;
  constructor(
    private readonly stream: Writable = process.stdout,
    description = 'stdout',
  ) {
    this.description = description;
  }

  async open(): Promise<void> {}

  async write(item: SinkItem): Promise<void> {
    if (!this.stream.write(`${resultLine(item.result)}\n`)) {
      await new Promise<void>((resolveDrain, reject) => {
        const onError = (err: Error): void => {
          this.stream.off('drain', onDrain);
          reject(err);
        };
        const onDrain = (): void => {
          this.stream.off('error', onError);
          resolveDrain();
        };
        this.stream.once('drain', onDrain);
        this.stream.once('error', onError);
      });
    }
  }

  async close(): Promise<void> {}
}

/** Discards results: for benchmarks that measure the pipeline, not the disk. */
export class NullSink implements ResultSink {
  readonly description = 'none';
  async open(): Promise<void> {}
  async write(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A file name from a frame id: path separators and other awkward characters become '_'. */
export function maskFileName(result: ResultV1): string {
  const base = result.frame.stem ?? result.frame.id;
  const safe = base.replace(/[^A-Za-z0-9._ ()+-]/g, '_').replace(/^\.+/, '_');
  // A looped folder replays stems; the loop suffix keeps later passes from overwriting the first.
  const loop = result.frame.stem !== undefined && /#(\d+)$/.exec(result.frame.id);
  return `${safe}${loop ? `_${loop[1]}` : ''}.png`;
}

/**
 * `--save-masks DIR`: each frame-size mask as a black/white PNG (encodeMaskPngAsync: deflate off the JS
 * thread) named by the source file's stem (or frame id).
 */
export class MaskDirSink implements ResultSink {
  readonly description: string;
  readonly dir: string;
  readonly needsMask = true;

  constructor(dir: string) {
    this.dir = resolve(dir);
    this.description = `masks:${this.dir}`;
  }

  async open(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (err) {
      throw new Error(`--save-masks ${this.dir}: cannot create folder: ${(err as Error).message}`);
    }
  }

  async write(item: SinkItem): Promise<void> {
    if (!item.mask) throw new Error(`${this.description}: no mask for frame ${item.result.frame.id} (the pipeline left it native)`);
    await writeFile(join(this.dir, maskFileName(item.result)), await encodeMaskPngAsync(item.mask));
  }

  async close(): Promise<void> {}
}

export function createSink(spec: SinkSpec): ResultSink {
  switch (spec.kind) {
    case 'jsonl':
      return new JsonlSink(spec.path);
    case 'stdout':
      return new StreamSink();
    case 'none':
      return new NullSink();
  }
}
