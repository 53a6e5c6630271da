/**
 * `lvunet-edge frames make`: a camera-like raw recording from dataset images, for replaying through
 * the pipeline without a camera. Images are resized (bilinear, half-pixel centres, aspect ratio not
 * kept, as a sensor's fixed mode would be) and packed as the camera would deliver them.
 */
import { createWriteStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';

import { readImageFile } from '../image/decode.js';
import { assertRgbImage, type RgbImage } from '../image/types.js';
import { rgbToYuyv } from '../runtime/sources/synthetic-source.js';
import { UsageError } from './errors.js';
import { FRAMES_MAKE_USAGE } from './usage.js';
import { intArg } from './run-command.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);

/** Bilinear resize of 8-bit RGB with half-pixel centres, rounded to nearest. */
export function resizeRgbBilinear(src: RgbImage, width: number, height: number): RgbImage {
  assertRgbImage(src, 'resizeRgbBilinear source');
  const axis = (srcN: number, dstN: number): { i0: Int32Array; i1: Int32Array; f: Float64Array } => {
    const i0 = new Int32Array(dstN);
    const i1 = new Int32Array(dstN);
    const f = new Float64Array(dstN);
    for (let k = 0; k < dstN; k++) {
      const s = Math.min(Math.max(((k + 0.5) * srcN) / dstN - 0.5, 0), srcN - 1);
      i0[k] = Math.floor(s);
      i1[k] = Math.min(i0[k] + 1, srcN - 1);
      f[k] = s - i0[k];
    }
    return { i0, i1, f };
  };
  const tx = axis(src.width, width);
  const ty = axis(src.height, height);
  const out = new Uint8Array(width * height * 3);
  const d = src.data;
  const row = src.width * 3;
  for (let y = 0; y < height; y++) {
    const r0 = ty.i0[y] * row;
    const r1 = ty.i1[y] * row;
    const fy = ty.f[y];
    for (let x = 0; x < width; x++) {
      const a = tx.i0[x] * 3;
      const b = tx.i1[x] * 3;
      const fx = tx.f[x];
      for (let c = 0; c < 3; c++) {
        const top = d[r0 + a + c] + fx * (d[r0 + b + c] - d[r0 + a + c]);
        const bottom = d[r1 + a + c] + fx * (d[r1 + b + c] - d[r1 + a + c]);
        out[(y * width + x) * 3 + c] = Math.round(top + fy * (bottom - top));
      }
    }
  }
  return { width, height, data: out };
}

async function listImages(dir: string): Promise<string[]> {
  for (const candidate of [dir, join(dir, 'images')]) {
    let names: string[];
    try {
      names = await readdir(candidate);
    } catch {
      continue;
    }
    const images = names.filter((n) => IMAGE_EXTENSIONS.has(extname(n).toLowerCase())).sort();
    if (images.length > 0) return images.map((n) => join(candidate, n));
  }
  throw new Error(`--from ${dir}: no .jpg or .png images in it or in ${join(dir, 'images')}`);
}

export async function framesMake(argv: string[], log: (line: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      from: { type: 'string' },
      count: { type: 'string' },
      size: { type: 'string', default: '640x480' },
      format: { type: 'string', default: 'yuyv' },
      out: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, FRAMES_MAKE_USAGE);
  if (!values.from || !values.out || values.count === undefined) throw new UsageError('--from, --count and --out are required', FRAMES_MAKE_USAGE);
  const count = intArg('--count', values.count, FRAMES_MAKE_USAGE, 1) as number;
  const size = /^(\d+)x(\d+)$/.exec(values.size);
  if (!size || Number(size[1]) < 1 || Number(size[2]) < 1) throw new UsageError(`--size ${JSON.stringify(values.size)} is not WxH`, FRAMES_MAKE_USAGE);
  const width = Number(size[1]);
  const height = Number(size[2]);
  const format = values.format.toLowerCase();
  if (format !== 'yuyv' && format !== 'rgb24') throw new UsageError(`--format ${JSON.stringify(values.format)}: use yuyv or rgb24`, FRAMES_MAKE_USAGE);
  if (format === 'yuyv' && width % 2 !== 0) throw new UsageError(`YUYV needs an even width, got ${width}`, FRAMES_MAKE_USAGE);

  const images = await listImages(values.from);
  const out = createWriteStream(values.out);
  const failed = new Promise<never>((_, reject) => out.once('error', (err) => reject(new Error(`${values.out}: ${err.message}`))));
  // Decoding and resizing are the cost; each distinct image is done once and reused on later loops.
  const cache = new Map<number, Uint8Array>();
  for (let i = 0; i < count; i++) {
    const k = i % images.length;
    let frame = cache.get(k);
    if (!frame) {
      const rgb = resizeRgbBilinear(await readImageFile(images[k]), width, height);
      frame = format === 'yuyv' ? rgbToYuyv(rgb.data, width, height) : rgb.data;
      if (count > images.length && images.length <= 128) cache.set(k, frame);
    }
    if (!out.write(frame)) await Promise.race([once(out, 'drain'), failed]);
  }
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
  const bytes = count * (format === 'yuyv' ? 2 : 3) * width * height;
  log(`wrote ${count} ${width}x${height} ${format.toUpperCase()} frames (${bytes} bytes) from ${images.length} images to ${values.out}`);
}
