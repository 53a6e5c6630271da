/**
 * V4l2Source as a pipeline FrameSource (src/runtime/sources/types.ts): frames become tightly
 * packed YUYV/NV12/GREY/RGB24 (row padding removed); MJPG frames stay compressed (format MJPEG) and
 * are decoded natively inside the per-frame job (JPEG_DECODE in src/model/preprocessing.ts), so a
 * corrupt one is dropped there, counted by the pipeline at stage 'preprocess' (ERR_JPEG_CORRUPT /
 * ERR_JPEG_TRUNCATED). UVC cameras send MJPEG without Huffman tables (the "AVI1" convention: the
 * standard tables are implied); libjpeg-turbo supplies them itself. withHuffmanTables() inserts them
 * for decoders that do not (jpeg-js: tools and tests).
 */
import { ImageDecodeError } from '../../../image/decode.js';
import { jpegSize } from '../../../image/jpeg-header.js';
import type { PixelFormat } from '../../native/pixel-formats.js';
import type { DroppedFrame, Frame, FrameSource } from '../types.js';
import { V4l2Error } from './errors.js';
import { DEFAULT_FORMAT_PREFERENCE, normalizeFourcc } from './negotiate.js';
import type { FourCC } from './types.js';
import { V4l2Source, type V4l2Frame, type V4l2SourceOptions, type V4l2SourceStats } from './v4l2-source.js';

/** V4L2 formats the pipeline takes, and what each becomes. */
const PIPELINE_FORMATS: Readonly<Record<string, PixelFormat>> = { YUYV: 'YUYV', NV12: 'NV12', GREY: 'GREY', RGB3: 'RGB24', MJPG: 'MJPEG' };

export const PIPELINE_FOURCCS: readonly FourCC[] = Object.keys(PIPELINE_FORMATS);

/** Copies `rows` rows of `rowBytes` out of a buffer with `stride` bytes per row. */
export function packRows(data: Uint8Array, stride: number, rowBytes: number, rows: number, offset = 0): Uint8Array {
  if (stride === rowBytes) return data.subarray(offset, offset + rowBytes * rows);
  const out = new Uint8Array(rowBytes * rows);
  for (let r = 0; r < rows; r++) out.set(data.subarray(offset + r * stride, offset + r * stride + rowBytes), r * rowBytes);
  return out;
}

// ITU-T T.81 Annex K.3 standard Huffman tables: BITS (codes per length 1..16), then HUFFVAL.
const DC_BITS_Y = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_BITS_C = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_BITS_Y = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_VALS_Y = [
  0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81,
  0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18,
  0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
  0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75,
  0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
  0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
  0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5,
  0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];
const AC_BITS_C = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const AC_VALS_C = [
  0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08,
  0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25,
  0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47,
  0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74,
  0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
  0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba,
  0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4,
  0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];

function standardDht(): Uint8Array {
  const tables: [number, number[], number[]][] = [
    [0x00, DC_BITS_Y, DC_VALS],
    [0x10, AC_BITS_Y, AC_VALS_Y],
    [0x01, DC_BITS_C, DC_VALS],
    [0x11, AC_BITS_C, AC_VALS_C],
  ];
  const body = tables.flatMap(([cls, bits, vals]) => [cls, ...bits, ...vals]);
  const length = body.length + 2;
  return Uint8Array.from([0xff, 0xc4, length >> 8, length & 0xff, ...body]);
}

const STANDARD_DHT = standardDht();

/** The JPEG with the standard Huffman tables inserted before SOS when it defines none. */
export function withHuffmanTables(jpeg: Uint8Array): Uint8Array {
  let i = 2;
  while (i + 4 <= jpeg.length && jpeg[i] === 0xff) {
    const marker = jpeg[i + 1];
    if (marker === 0xc4) return jpeg;
    if (marker === 0xda) {
      const out = new Uint8Array(jpeg.length + STANDARD_DHT.length);
      out.set(jpeg.subarray(0, i));
      out.set(STANDARD_DHT, i);
      out.set(jpeg.subarray(i), i + STANDARD_DHT.length);
      return out;
    }
    i += 2 + ((jpeg[i + 2] << 8) | jpeg[i + 3]);
  }
  return jpeg; // malformed headers: let the decoder say what is wrong
}

/** A V4L2 frame as the pipeline takes it (MJPG frames undecoded). Throws ImageDecodeError for an MJPG frame without a readable JPEG header. */
export function toPipelineFrame(frame: V4l2Frame): Frame {
  const base = { seq: frame.seq, id: frame.id, captureTimeMs: frame.captureTimeMs };
  const { width: w, height: h, bytesPerLine: stride, data } = frame;
  switch (frame.format) {
    case 'YUYV':
      return { ...base, format: 'YUYV', width: w, height: h, data: packRows(data, stride, w * 2, h) };
    case 'GREY':
      return { ...base, format: 'GREY', width: w, height: h, data: packRows(data, stride, w, h) };
    case 'RGB3':
      return { ...base, format: 'RGB24', width: w, height: h, data: packRows(data, stride, w * 3, h) };
    case 'NV12': {
      if (stride === w) return { ...base, format: 'NV12', width: w, height: h, data: data.subarray(0, w * h * 1.5) };
      const out = new Uint8Array(w * h * 1.5);
      out.set(packRows(data, stride, w, h));
      out.set(packRows(data, stride, w, h / 2, stride * h), w * h);
      return { ...base, format: 'NV12', width: w, height: h, data: out };
    }
    case 'MJPG': {
      // Undecoded: the size is the JPEG header's (read up to SOF only, not the scan data), so a frame
      // without a readable header is dropped here and one that differs from the negotiated mode is
      // still decoded and reported at its own size.
      let size: { width: number; height: number };
      try {
        size = jpegSize(data, `${frame.id} (MJPG)`);
      } catch (err) {
        throw new ImageDecodeError(`${frame.id} (MJPG)`, (err as Error).message, { cause: err });
      }
      return { ...base, format: 'MJPEG', width: size.width, height: size.height, data };
    }
    default:
      throw new V4l2Error('ERR_INVALID_ARGUMENT', `${frame.id}: ${frame.format} frames cannot be fed to the pipeline (accepted: ${PIPELINE_FOURCCS.join(', ')})`);
  }
}

export class V4l2FrameSource implements FrameSource {
  readonly description: string;
  readonly source: V4l2Source;
  private decodeDrops = 0;

  constructor(private readonly options: V4l2SourceOptions) {
    const formats = (options.request.formats ?? DEFAULT_FORMAT_PREFERENCE).map(normalizeFourcc);
    const unusable = formats.filter((f) => !PIPELINE_FOURCCS.includes(f));
    if (unusable.length > 0) {
      throw new V4l2Error('ERR_INVALID_ARGUMENT', `v4l2:${options.path}: the pipeline cannot take ${unusable.join(', ')} (accepted: ${PIPELINE_FOURCCS.join(', ')})`);
    }
    this.source = new V4l2Source(options);
    this.description = this.source.description;
  }

  async open(): Promise<void> {
    await this.source.open();
  }

  async next(): Promise<Frame | null> {
    for (;;) {
      const frame = await this.source.next();
      if (!frame) return null;
      try {
        const out = toPipelineFrame(frame);
        // Row padding removed into a new buffer: the dequeued one can be reused at once.
        if (out.data.buffer !== frame.data.buffer) this.source.recycle(frame.data);
        return out;
      } catch (err) {
        this.source.recycle(frame.data);
        if (!(err instanceof ImageDecodeError)) throw err;
        this.decodeDrops++;
        const drop: DroppedFrame = { seq: frame.seq, id: frame.id, reason: 'decode', detail: err.reason };
        this.options.onDrop?.(drop);
      }
    }
  }

  /**
   * The capture statistics; `decode` counts frames this source could not convert. MJPEG frames are
   * decoded by the pipeline's native job, whose failures the pipeline counts (stage 'preprocess').
   */
  stats(): V4l2SourceStats {
    const s = this.source.stats();
    return { ...s, drops: { ...s.drops, decode: this.decodeDrops } };
  }

  recycle(data: Uint8Array): void {
    this.source.recycle(data);
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}
