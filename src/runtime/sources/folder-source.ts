/**
 * Replays a folder of JPEG/PNG images in file-name order, each frame named by its file stem. JPEGs
 * are handed on undecoded as MJPEG frames (the native job decodes them, JPEG_DECODE in
 * src/model/preprocessing.ts); PNGs are decoded here to RGB24. Only regular files within the byte
 * limit are read, and an image over the pixel limit is refused from its header (limits.ts). A file
 * that cannot be read or decoded is dropped with its reason and the replay goes on.
 */
import { readdir } from 'node:fs/promises';
import { extname, join, parse } from 'node:path';
import { decodeImage, ImageDecodeError, sniffFormat } from '../../image/decode.js';
import { jpegSize } from '../../image/jpeg-header.js';
import { isFrameFileRefusal, limitsOf, pixelLimitProblem, readImageFile } from './limits.js';
import { SourceError } from './raw-file-source.js';
import { Pacer, type Frame, type FrameSource, type SourceOptions } from './types.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);

export class FolderSource implements FrameSource {
  readonly description: string;
  private files: string[] = [];
  private index = 0;
  private seq = 0;
  private loop = 0;
  private readonly pacer: Pacer;
  private readonly limits: ReturnType<typeof limitsOf>;

  constructor(
    private readonly dir: string,
    private readonly options: SourceOptions = {},
  ) {
    this.description = `folder:${dir}`;
    this.pacer = new Pacer(options.fps);
    this.limits = limitsOf(options);
  }

  async open(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      throw new SourceError(this.description, `cannot list folder: ${(err as Error).message}`);
    }
    this.files = names.filter((n) => IMAGE_EXTENSIONS.has(extname(n).toLowerCase())).sort().map((n) => join(this.dir, n));
    if (this.files.length === 0) throw new SourceError(this.description, 'no .jpg, .jpeg or .png images in folder');
  }

  async next(): Promise<Frame | null> {
    for (;;) {
      if (this.index >= this.files.length) {
        if (++this.loop >= (this.options.loops ?? 1)) return null;
        this.index = 0;
      }
      const file = this.files[this.index++];
      const seq = this.seq++;
      const stem = parse(file).name;
      const id = this.loop === 0 ? stem : `${stem}#${this.loop}`;
      let bytes: Uint8Array;
      try {
        bytes = await readImageFile(file, this.limits);
      } catch (err) {
        this.options.onDrop?.({ seq, id, reason: isFrameFileRefusal(err) ? 'refused' : 'corrupt', detail: (err as Error).message });
        continue;
      }
      if (bytes.length === 0) {
        this.options.onDrop?.({ seq, id, reason: 'empty', detail: `${file} is 0 bytes` });
        continue;
      }
      const frame = this.toFrame(file, bytes);
      if ('drop' in frame) {
        this.options.onDrop?.({ seq, id, ...frame.drop });
        continue;
      }
      await this.pacer.wait(seq);
      return { seq, id, stem, ...frame, captureTimeMs: performance.timeOrigin + performance.now() };
    }
  }

  private toFrame(file: string, bytes: Uint8Array): Pick<Frame, 'format' | 'width' | 'height' | 'data'> | { drop: { reason: 'refused' | 'decode'; detail: string } } {
    try {
      if (sniffFormat(bytes) === 'jpeg') {
        const { width, height } = jpegSize(bytes, file);
        const tooLarge = pixelLimitProblem(width, height, this.limits);
        if (tooLarge) return { drop: { reason: 'refused', detail: `${file}: ${tooLarge}` } };
        return { format: 'MJPEG', width, height, data: bytes };
      }
      if (sniffFormat(bytes) === 'png' && bytes.length >= 24) {
        // IHDR is the first chunk: width and height at bytes 16 and 20, checked before decoding.
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const tooLarge = pixelLimitProblem(view.getUint32(16), view.getUint32(20), this.limits);
        if (tooLarge) return { drop: { reason: 'refused', detail: `${file}: ${tooLarge}` } };
      }
      const img = decodeImage(bytes, file);
      return { format: 'RGB24', width: img.width, height: img.height, data: img.data };
    } catch (err) {
      const detail = err instanceof ImageDecodeError ? err.message : (err as Error).message;
      return { drop: { reason: 'decode', detail } };
    }
  }

  async close(): Promise<void> {
    this.files = [];
  }
}
