/**
 * What a frame source agrees to read, checked before anything is read or allocated: only regular
 * files (a FIFO or /dev/zero would be read without end), files and compressed frames up to a byte
 * limit, and frames up to a pixel limit (a corrupt header saying 65535x65535 must not allocate
 * gigabytes). Both limits are options of the sources (`maxFramePixels`, `maxFrameBytes`).
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

import { fileKind } from '../../util/read-file.js';

/** 36 MP: above 8K UHD (33.2 MP); the same cap as kMaxJpegPixels in native/core/jpeg_decode.h. */
export const MAX_FRAME_PIXELS = 36_000_000;
/** 64 MiB: a compressed frame or image file beyond this is refused unread. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export interface FrameLimits {
  /** Largest frame accepted, in pixels (default MAX_FRAME_PIXELS). */
  readonly maxFramePixels?: number;
  /** Largest image file or compressed frame accepted, in bytes (default MAX_FRAME_BYTES). */
  readonly maxFrameBytes?: number;
}

export function limitsOf(options: FrameLimits): Required<FrameLimits> {
  const maxFramePixels = options.maxFramePixels ?? MAX_FRAME_PIXELS;
  const maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  if (!(Number.isInteger(maxFramePixels) && maxFramePixels > 0)) throw new RangeError(`maxFramePixels must be a positive integer, got ${maxFramePixels}`);
  if (!(Number.isInteger(maxFrameBytes) && maxFrameBytes > 0)) throw new RangeError(`maxFrameBytes must be a positive integer, got ${maxFrameBytes}`);
  return { maxFramePixels, maxFrameBytes };
}

/** Why a frame of this size is refused, or undefined when it is within the limit. */
export function pixelLimitProblem(width: number, height: number, limits: Required<FrameLimits>): string | undefined {
  if (width * height <= limits.maxFramePixels) return undefined;
  return `${width}x${height} (${((width * height) / 1e6).toFixed(1)} MP) exceeds the frame limit of ${limits.maxFramePixels / 1e6} MP (maxFramePixels)`;
}

/** A file refused before reading: `code` ENOTREG (not a regular file) or EFBIG (over a limit), as FileReadError uses. */
export type FrameFileRefusal = Error & { code: 'ENOTREG' | 'EFBIG' };

function refusal(code: FrameFileRefusal['code'], message: string): FrameFileRefusal {
  return Object.assign(new Error(message), { code });
}

/** Whether `err` is a refusal by openRegularFile or readImageFile (as opposed to a read or decode error). */
export function isFrameFileRefusal(err: unknown): err is FrameFileRefusal {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && (code === 'ENOTREG' || code === 'EFBIG');
}

/**
 * Opens `path` for reading only if it is a regular file, and returns it with its size. O_NONBLOCK
 * keeps the open of a FIFO from waiting for a writer; the check is on the opened descriptor (fstat),
 * so the file cannot be swapped between check and read. Throws an Error naming the path.
 */
export async function openRegularFile(path: string): Promise<{ handle: FileHandle; size: number }> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw refusal('ENOTREG', `${path} is ${fileKind(st)}: only regular files are read as frames`);
    return { handle, size: st.size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Reads a whole image file, refusing anything but a regular file of 1..maxFrameBytes bytes before
 * reading it. Throws an Error naming the path.
 */
export async function readImageFile(path: string, limits: Required<FrameLimits>): Promise<Uint8Array> {
  const { handle, size } = await openRegularFile(path);
  try {
    if (size > limits.maxFrameBytes) {
      throw refusal('EFBIG', `${path} is ${size} bytes, over the limit of ${limits.maxFrameBytes} bytes per frame (maxFrameBytes)`);
    }
    const data = new Uint8Array(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await handle.read(data, at, size - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return at === size ? data : data.subarray(0, at);
  } finally {
    await handle.close();
  }
}
