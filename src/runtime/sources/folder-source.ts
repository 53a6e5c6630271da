/**
 * Replays a folder of JPEG/PNG images as RGB24 frames, in file-name order, each frame named by its
 * file stem. A file that cannot be decoded is dropped with its reason and the replay goes on.
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join, parse } from 'node:path';
import { decodeImage, ImageDecodeError } from '../../image/decode.js';
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

  constructor(
    private readonly dir: string,
    private readonly options: SourceOptions = {},
  ) {
    this.description = `folder:${dir}`;
    this.pacer = new Pacer(options.fps);
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
        bytes = await readFile(file);
      } catch (err) {
        this.options.onDrop?.({ seq, id, reason: 'corrupt', detail: `${file}: ${(err as Error).message}` });
        continue;
      }
      if (bytes.length === 0) {
        this.options.onDrop?.({ seq, id, reason: 'empty', detail: `${file} is 0 bytes` });
        continue;
      }
      try {
        const img = decodeImage(bytes, file);
        await this.pacer.wait(seq);
        return { seq, id, stem, format: 'RGB24', width: img.width, height: img.height, data: img.data, captureTimeMs: performance.timeOrigin + performance.now() };
      } catch (err) {
        const detail = err instanceof ImageDecodeError ? err.message : `${file}: ${(err as Error).message}`;
        this.options.onDrop?.({ seq, id, reason: 'decode', detail });
      }
    }
  }

  async close(): Promise<void> {
    this.files = [];
  }
}
