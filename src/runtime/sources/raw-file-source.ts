/**
 * Replays a recorded camera stream from one file: raw frames (YUYV, NV12, GREY, RGB24; the size
 * comes from options or from `WxH` in the file name), Y4M (4:2:0 → NV12, 4:2:2 → YUYV, mono →
 * GREY) or MJPEG (concatenated JPEGs, handed on undecoded as MJPEG frames: the native job decodes
 * them). Only a regular file is read (a FIFO or a device is refused), and frame sizes are checked
 * against the limits (limits.ts) before a frame is read. A short last frame, a JPEG without a
 * readable header or over the limits is dropped with a reason; the stream goes on.
 */
import type { FileHandle } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { jpegExtent, jpegSize } from '../../image/jpeg-header.js';
import { frameByteLength, isRawPixelFormat, type RawPixelFormat } from '../native/pixel-formats.js';
import { FramePool } from './frame-pool.js';
import { limitsOf, openRegularFile, pixelLimitProblem, type FrameLimits } from './limits.js';
import { Pacer, type DroppedFrame, type Frame, type FrameSource, type SourceOptions } from './types.js';

export interface RawFileOptions extends SourceOptions, FrameLimits {
  readonly width?: number;
  readonly height?: number;
  readonly format?: RawPixelFormat;
}

/** Raw file extensions and the pixel format each holds (also what `frames record` names files). */
export const RAW_EXTENSIONS: Readonly<Record<string, RawPixelFormat>> = {
  '.yuyv': 'YUYV',
  '.yuy2': 'YUYV',
  '.nv12': 'NV12',
  '.grey': 'GREY',
  '.gray': 'GREY',
  '.y8': 'GREY',
  '.rgb': 'RGB24',
  '.rgb24': 'RGB24',
  '.rgba': 'RGBA',
};

export class SourceError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'SourceError';
  }
}

type Reader = () => Promise<{ frame?: Omit<Frame, 'seq' | 'id' | 'captureTimeMs'>; drop?: Omit<DroppedFrame, 'seq' | 'id'> } | null>;

export class RawFileSource implements FrameSource {
  readonly description: string;
  private handle?: FileHandle;
  private reader?: Reader;
  private seq = 0;
  private loop = 0;
  private readonly pacer: Pacer;
  private limits = limitsOf({});
  /** Buffers of raw frames (fixed size), reused once the consumer gives them back. */
  private pool?: FramePool;

  constructor(
    private readonly path: string,
    private readonly options: RawFileOptions = {},
  ) {
    this.description = `file:${path}`;
    this.pacer = new Pacer(options.fps);
  }

  async open(): Promise<void> {
    const limits = limitsOf(this.options);
    let size: number;
    try {
      ({ handle: this.handle, size } = await openRegularFile(this.path));
    } catch (err) {
      throw new SourceError(this.description, `cannot open: ${(err as Error).message}`);
    }
    if (size === 0) throw new SourceError(this.description, 'file is empty (0 bytes)');
    this.limits = limits;
    this.reader = await this.makeReader();
  }

  private async makeReader(): Promise<Reader> {
    const h = this.handle!;
    const ext = extname(this.path).toLowerCase();
    const head = Buffer.alloc(10);
    await h.read(head, 0, 10, 0);
    if (head.toString('latin1', 0, 10) === 'YUV4MPEG2 ') return this.y4mReader(h);
    if (ext === '.mjpeg' || ext === '.mjpg' || (head[0] === 0xff && head[1] === 0xd8)) return this.mjpegReader(h);
    const format: RawPixelFormat | undefined = this.options.format ?? RAW_EXTENSIONS[ext];
    if (!format) {
      throw new SourceError(this.description, `unknown file type '${ext}': use .yuyv, .nv12, .grey, .rgb, .y4m or .mjpeg, or give a pixel format`);
    }
    const named = /(\d+)x(\d+)/.exec(basename(this.path));
    const width = this.options.width ?? (named ? Number(named[1]) : undefined);
    const height = this.options.height ?? (named ? Number(named[2]) : undefined);
    if (!width || !height) {
      throw new SourceError(this.description, 'raw frames need a size: give width and height, or name the file like frames_640x480.yuyv');
    }
    return this.fixedReader(h, format, width, height, 0, () => 0);
  }

  /** Raw and Y4M frames: fixed size, at `start`, each preceded by `headerBytes(at)` bytes. */
  private fixedReader(h: FileHandle, format: RawPixelFormat, width: number, height: number, start: number, headerBytes: (at: number) => Promise<number> | number, convert?: (b: Uint8Array) => Uint8Array): Reader {
    // Every frame has this size: refuse the stream before the first allocation.
    const tooLarge = pixelLimitProblem(width, height, this.limits);
    if (tooLarge) throw new SourceError(this.description, `${format} frames of ${tooLarge}`);
    const bytes = frameByteLength(format, width, height);
    // Raw frames are read straight into pooled buffers the pipeline gives back (recycle); Y4M frames
    // are read into one scratch buffer, since the conversion writes a new one anyway.
    const pool = convert ? undefined : (this.pool = new FramePool(bytes));
    const scratch = convert ? Buffer.allocUnsafeSlow(bytes) : undefined;
    let at = start;
    return async () => {
      at += await headerBytes(at);
      // Not zero-filled (a memset of the whole frame on the JS thread): read() fills it, and a short read is dropped.
      const data = pool ? pool.take() : (scratch as Buffer);
      const { bytesRead } = await h.read(data, 0, bytes, at);
      if (bytesRead === 0) {
        pool?.give(data);
        return null;
      }
      at += bytesRead;
      if (bytesRead < bytes) {
        pool?.give(data);
        return { drop: { reason: 'truncated', detail: `last frame has ${bytesRead} of ${bytes} bytes (${width}x${height} ${format})` } };
      }
      return { frame: { format, width, height, data: convert ? convert(data) : data } };
    };
  }

  private async y4mReader(h: FileHandle): Promise<Reader> {
    const headBuf = Buffer.alloc(512);
    const { bytesRead } = await h.read(headBuf, 0, 512, 0);
    const nl = headBuf.subarray(0, bytesRead).indexOf(0x0a);
    if (nl < 0) throw new SourceError(this.description, 'Y4M header has no end of line within 512 bytes');
    const fields = headBuf.toString('latin1', 10, nl).split(' ');
    const get = (tag: string): string | undefined => fields.find((f) => f.startsWith(tag))?.slice(1);
    const width = Number(get('W'));
    const height = Number(get('H'));
    const colour = get('C') ?? '420jpeg';
    if (!(width > 0 && height > 0)) throw new SourceError(this.description, `Y4M header lacks a valid size: ${fields.join(' ')}`);
    let format: RawPixelFormat;
    let convert: (b: Uint8Array) => Uint8Array;
    if (colour.startsWith('420')) {
      format = 'NV12';
      convert = (b) => i420ToNv12(b, width, height);
    } else if (colour.startsWith('422')) {
      format = 'YUYV';
      convert = (b) => i422ToYuyv(b, width, height);
    } else if (colour === 'mono') {
      format = 'GREY';
      convert = (b) => b;
    } else {
      throw new SourceError(this.description, `Y4M colour space C${colour} is not supported (420*, 422, mono are)`);
    }
    const frameHeader = async (at: number): Promise<number> => {
      const b = Buffer.alloc(256);
      const { bytesRead: n } = await h.read(b, 0, 256, at);
      if (n === 0) return 0;
      const end = b.subarray(0, n).indexOf(0x0a);
      if (b.toString('latin1', 0, 5) !== 'FRAME' || end < 0) {
        throw new SourceError(this.description, `expected a FRAME marker at byte ${at}`);
      }
      return end + 1;
    };
    return this.fixedReader(h, format, width, height, nl + 1, frameHeader, convert);
  }

  private mjpegReader(h: FileHandle): Reader {
    const { maxFrameBytes } = this.limits;
    let at = 0; // file offset of the next read
    let base = 0; // file offset of pending[0]
    let eof = false;
    let pending = Buffer.alloc(0);
    const chunk = Buffer.alloc(1 << 20);
    const SOI = Buffer.from([0xff, 0xd8]);
    const fill = async (): Promise<boolean> => {
      if (eof) return false;
      const { bytesRead } = await h.read(chunk, 0, chunk.length, at);
      if (bytesRead === 0) {
        eof = true;
        return false;
      }
      at += bytesRead;
      pending = pending.length === 0 ? Buffer.from(chunk.subarray(0, bytesRead)) : Buffer.concat([pending, chunk.subarray(0, bytesRead)]);
      return true;
    };
    const consume = (to: number): void => {
      pending = pending.subarray(to);
      base += to;
    };
    return async () => {
      for (;;) {
        const soi = pending.indexOf(SOI);
        if (soi < 0) {
          consume(Math.max(0, pending.length - 1)); // no frame start: keep a possible 0xFF
          if (!(await fill())) return null;
          continue;
        }
        const extent = jpegExtent(pending, soi);
        switch (extent.kind) {
          case 'end': {
            // A view, not a copy: `pending` is never written (each fill makes a new buffer), and the
            // native job reads the JPEG in place.
            const jpeg = pending.subarray(soi, extent.end);
            consume(extent.end);
            return this.mjpegFrame(jpeg);
          }
          case 'cut': {
            const detail = `JPEG at byte ${base + soi} is cut off after ${extent.at - soi} bytes: the next one starts before its end marker`;
            consume(extent.at);
            return { drop: { reason: 'truncated', detail } };
          }
          case 'corrupt': {
            const detail = `JPEG at byte ${base + soi} is corrupt: no marker at byte ${base + extent.at}`;
            consume(soi + 2);
            return { drop: { reason: 'corrupt', detail } };
          }
          case 'more':
            if (pending.length - soi > maxFrameBytes) {
              const detail = `no JPEG end marker within ${pending.length - soi} bytes at byte ${base + soi} (limit ${maxFrameBytes} bytes per frame, maxFrameBytes)`;
              consume(pending.length);
              return { drop: { reason: 'refused', detail } };
            }
            if (!(await fill())) {
              const detail = `last JPEG (at byte ${base + soi}) has no end marker (${pending.length - soi} bytes)`;
              consume(pending.length);
              return { drop: { reason: 'truncated', detail } };
            }
        }
      }
    };
  }

  /** An MJPEG frame from one JPEG: its size from the header, checked against the limit; not decoded here. */
  private mjpegFrame(jpeg: Uint8Array): Awaited<ReturnType<Reader>> {
    let size: { width: number; height: number };
    try {
      size = jpegSize(jpeg, `${this.description} frame`);
    } catch (err) {
      return { drop: { reason: 'corrupt', detail: (err as Error).message } };
    }
    const tooLarge = pixelLimitProblem(size.width, size.height, this.limits);
    if (tooLarge) return { drop: { reason: 'refused', detail: `JPEG frame of ${tooLarge}` } };
    return { frame: { format: 'MJPEG', width: size.width, height: size.height, data: jpeg } };
  }

  async next(): Promise<Frame | null> {
    if (!this.reader) throw new SourceError(this.description, 'next() before open()');
    for (;;) {
      const r = await this.reader();
      if (r === null) {
        if (++this.loop >= (this.options.loops ?? 1)) return null;
        this.reader = await this.makeReader();
        continue;
      }
      const seq = this.seq++;
      const id = `${this.description}#${seq}`;
      if (r.drop) {
        this.options.onDrop?.({ seq, id, ...r.drop });
        continue;
      }
      await this.pacer.wait(seq);
      return { seq, id, ...r.frame!, captureTimeMs: performance.timeOrigin + performance.now() };
    }
  }

  recycle(data: Uint8Array): void {
    this.pool?.give(data);
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }
}

/** Planar 4:2:0 (Y, U, V planes) to NV12 (Y plane, interleaved UV). */
export function i420ToNv12(b: Uint8Array, width: number, height: number): Uint8Array {
  const y = width * height;
  const q = y / 4;
  const out = new Uint8Array(y + 2 * q);
  out.set(b.subarray(0, y));
  for (let i = 0; i < q; i++) {
    out[y + 2 * i] = b[y + i];
    out[y + 2 * i + 1] = b[y + q + i];
  }
  return out;
}

/** Planar 4:2:2 to packed YUYV. */
export function i422ToYuyv(b: Uint8Array, width: number, height: number): Uint8Array {
  const y = width * height;
  const h = y / 2;
  const out = new Uint8Array(2 * y);
  for (let i = 0; i < h; i++) {
    out[4 * i] = b[2 * i];
    out[4 * i + 1] = b[y + i];
    out[4 * i + 2] = b[2 * i + 1];
    out[4 * i + 3] = b[y + h + i];
  }
  return out;
}

export function parsePixelFormat(text: string): RawPixelFormat {
  const upper = text.toUpperCase();
  if (!isRawPixelFormat(upper)) throw new RangeError(`unknown pixel format '${text}'`);
  return upper;
}
