/**
 * `lvunet-edge frames make`: a camera-like recording from dataset images, for replaying through the
 * pipeline without a camera. Images are resized (bilinear, half-pixel centres, aspect ratio not
 * kept, as a sensor's fixed mode would be) and packed as the camera would deliver them: YUYV, NV12,
 * RGB24, or MJPEG (baseline JPEGs, 4:2:0, back to back, as a UVC grabber's stream).
 */
import { createWriteStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';

import { readImageFile } from '../image/decode.js';
import { assertRgbImage, type RgbImage } from '../image/types.js';
import { loadNativeBinding } from '../runtime/native/binding.js';
import { rgbToNv12, rgbToYuyv } from '../runtime/sources/synthetic-source.js';
import { UsageError } from './errors.js';
import { intArg } from './run-command.js';

export const FRAMES_MAKE_USAGE = `usage: lvunet-edge frames make --from DIR --count N [--size 640x480] [--format yuyv|nv12|rgb24|mjpeg] [--quality 85] [--subsampling 422] --out FILE

Writes N frames to FILE, looping over the .jpg/.png images of DIR (or DIR/images) in name order,
each resized bilinearly to the given size and packed as YUYV or NV12 (BT.601 limited range, chroma
averaged over each pixel pair (YUYV) or 2x2 block (NV12), as cameras do), RGB24, or MJPEG (one
baseline JPEG per frame, concatenated, encoded by libjpeg-turbo through the native addon at
--quality, default 85, with --subsampling 422 (default: what UVC grabbers send), 420 or 444). Replay it with --source file:FILE
(name raw files like frames_1920x1080.nv12, or pass --width/--height; .mjpeg needs neither).`;

const FORMATS = ['yuyv', 'nv12', 'rgb24', 'mjpeg'] as const;
type MakeFormat = (typeof FORMATS)[number];

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
      quality: { type: 'string', default: '85' },
      subsampling: { type: 'string', default: '422' },
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
  const format = values.format.toLowerCase() as MakeFormat;
  if (!FORMATS.includes(format)) throw new UsageError(`--format ${JSON.stringify(values.format)}: use ${FORMATS.join(', ')}`, FRAMES_MAKE_USAGE);
  if (format === 'yuyv' && width % 2 !== 0) throw new UsageError(`YUYV needs an even width, got ${width}`, FRAMES_MAKE_USAGE);
  if (format === 'nv12' && (width % 2 !== 0 || height % 2 !== 0)) throw new UsageError(`NV12 needs an even width and height, got ${width}x${height}`, FRAMES_MAKE_USAGE);
  const quality = intArg('--quality', values.quality, FRAMES_MAKE_USAGE, 1) as number;
  if (quality > 100) throw new UsageError(`--quality must be 1..100, got ${quality}`, FRAMES_MAKE_USAGE);
  const subsampling = Number(values.subsampling);
  if (subsampling !== 444 && subsampling !== 422 && subsampling !== 420) {
    throw new UsageError(`--subsampling ${JSON.stringify(values.subsampling)}: use 422, 420 or 444`, FRAMES_MAKE_USAGE);
  }
  const native = format === 'mjpeg' ? loadNativeBinding() : undefined;
  const pack = (rgb: RgbImage): Uint8Array => {
    switch (format) {
      case 'yuyv':
        return rgbToYuyv(rgb.data, width, height);
      case 'nv12':
        return rgbToNv12(rgb.data, width, height);
      case 'rgb24':
        return rgb.data;
      case 'mjpeg':
        return (native as NonNullable<typeof native>).encodeJpeg(rgb.data, width, height, quality, subsampling);
    }
  };

  const images = await listImages(values.from);
  const out = createWriteStream(values.out);
  const failed = new Promise<never>((_, reject) => out.once('error', (err) => reject(new Error(`${values.out}: ${err.message}`))));
  // Decoding and resizing are the cost; each distinct image is done once and reused on later loops.
  const cache = new Map<number, Uint8Array>();
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const k = i % images.length;
    let frame = cache.get(k);
    if (!frame) {
      const rgb = resizeRgbBilinear(await readImageFile(images[k]), width, height);
      frame = pack(rgb);
      if (count > images.length && images.length <= 128) cache.set(k, frame);
    }
    bytes += frame.length;
    if (!out.write(frame)) await Promise.race([once(out, 'drain'), failed]);
  }
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
  log(`wrote ${count} ${width}x${height} ${format === 'mjpeg' ? `MJPEG (quality ${quality}, ${subsampling})` : format.toUpperCase()} frames (${bytes} bytes) from ${images.length} images to ${values.out}`);
}
