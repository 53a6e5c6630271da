/**
 * Is a dequeued buffer a whole frame? Raw formats must carry at least bytesperline × height bytes
 * (plus chroma planes); MJPEG frames vary in size, so they must start with SOI and end with EOI.
 * USB cameras deliver short or torn frames when the bus is saturated or a cable is marginal, and
 * feeding those to the model gives garbage masks that look plausible.
 */
import type { DroppedFrame } from '../types.js';
import { BUF_FLAG, type FourCC, type V4l2DequeuedBuffer, type V4l2PixFormat } from './types.js';

export type DropReason = DroppedFrame['reason'];

export type FrameCheck =
  | { readonly ok: true; readonly data: Uint8Array }
  | { readonly ok: false; readonly reason: DropReason; readonly detail: string };

const COMPRESSED: ReadonlySet<FourCC> = new Set(['MJPG', 'JPEG']);
/** Single-plane-buffer 4:2:0 layouts: a full-size luma plane then half as many chroma bytes. */
const YUV420: ReadonlySet<FourCC> = new Set(['NV12', 'NV21', 'YU12', 'YV12']);

/** Bytes a whole raw frame occupies, or undefined for compressed formats. */
export function expectedFrameBytes(format: V4l2PixFormat): number | undefined {
  if (COMPRESSED.has(format.fourcc)) return undefined;
  const plane = format.bytesPerLine * format.height;
  if (YUV420.has(format.fourcc)) return plane + plane / 2;
  // Packed formats (YUYV, GREY, RGB3, ...). A driver reporting bytesperline 0 leaves sizeimage as
  // the only size we can trust.
  return plane > 0 ? plane : format.sizeImage;
}

function jpegEnd(data: Uint8Array): number {
  // Some UVC cameras pad MJPEG payloads with zeros after EOI.
  let end = data.length;
  while (end > 2 && data[end - 1] === 0) end--;
  return end;
}

export function checkFrame(format: V4l2PixFormat, buffer: V4l2DequeuedBuffer): FrameCheck {
  const data = buffer.data.subarray(0, Math.min(buffer.bytesUsed, buffer.data.length));
  if (buffer.flags & BUF_FLAG.ERROR) {
    return { ok: false, reason: 'driver', detail: `the driver flagged buffer ${buffer.index} as damaged (V4L2_BUF_FLAG_ERROR)` };
  }
  if (data.length === 0) return { ok: false, reason: 'empty', detail: 'the driver returned a buffer with no bytes' };
  const expected = expectedFrameBytes(format);
  if (expected === undefined) {
    if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) {
      return { ok: false, reason: 'corrupt', detail: `${format.fourcc} frame of ${data.length} bytes does not start with a JPEG SOI marker (FF D8)` };
    }
    const end = jpegEnd(data);
    if (data[end - 2] !== 0xff || data[end - 1] !== 0xd9) {
      return { ok: false, reason: 'truncated', detail: `${format.fourcc} frame of ${data.length} bytes does not end with a JPEG EOI marker (FF D9)` };
    }
    return { ok: true, data: data.subarray(0, end) };
  }
  if (data.length < expected) {
    return {
      ok: false,
      reason: 'truncated',
      detail:
        `${format.fourcc} ${format.width}x${format.height} needs ${expected} bytes ` +
        `(bytesperline ${format.bytesPerLine}), the driver delivered ${data.length}`,
    };
  }
  return { ok: true, data: data.subarray(0, expected) };
}
