/**
 * `lvunet-edge frames make`: a camera-like recording from dataset images, for replaying through the
 * pipeline without a camera. Images are resized (bilinear, half-pixel centres, aspect ratio not
 * kept, as a sensor's fixed mode would be) and packed as the camera would deliver them: YUYV, NV12,
 * RGB24, or MJPEG (baseline JPEGs, 4:2:0, back to back, as a UVC grabber's stream).
 */
import { createWriteStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';

import { readImageFile } from '../image/decode.js';
import { assertRgbImage, type RgbImage } from '../image/types.js';
import type { PixelFormat } from '../runtime/native/pixel-formats.js';
import { loadNativeBinding } from '../runtime/native/binding.js';
import { RAW_EXTENSIONS } from '../runtime/sources/raw-file-source.js';
import { rgbToGrey, rgbToNv12, rgbToYuyv } from '../runtime/sources/synthetic-source.js';
import { nativeOpener, toPipelineFrame, V4l2Source, withHuffmanTables, type FourCC, type V4l2DeviceOpener, type V4l2Frame, type V4l2SourceStats } from '../runtime/sources/v4l2/index.js';
import { UsageError } from './errors.js';
import { FRAMES_MAKE_USAGE, FRAMES_RECORD_USAGE } from './usage.js';
import { intArg } from './run-command.js';

const FORMATS = ['yuyv', 'nv12', 'grey', 'rgb24', 'mjpeg'] as const;
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
      case 'grey':
        return rgbToGrey(rgb.data, width, height);
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


/** --format names and extensions to V4L2 fourccs, and each fourcc's file extension. */
const RECORD_FORMATS: Readonly<Record<string, FourCC>> = { yuyv: 'YUYV', nv12: 'NV12', grey: 'GREY', gray: 'GREY', rgb24: 'RGB3', mjpeg: 'MJPG', mjpg: 'MJPG' };
const PIXEL_FORMAT_FOURCC: Readonly<Record<PixelFormat, FourCC | undefined>> = { YUYV: 'YUYV', NV12: 'NV12', GREY: 'GREY', RGB24: 'RGB3', RGBA: undefined, MJPEG: 'MJPG' };
const MJPEG_EXTENSIONS = new Set(['.mjpeg', '.mjpg']);

function fourccOfFile(path: string): FourCC | undefined {
  const ext = extname(path).toLowerCase();
  if (MJPEG_EXTENSIONS.has(ext)) return 'MJPG';
  const pixel = RAW_EXTENSIONS[ext];
  return pixel ? PIXEL_FORMAT_FOURCC[pixel] : undefined;
}

export interface RecordResult {
  readonly frames: number;
  readonly bytes: number;
  readonly fourcc: FourCC;
  readonly width: number;
  readonly height: number;
  readonly fps: number | null;
  readonly stats: V4l2SourceStats;
}

/**
 * Bytes of one frame as FILE holds it: raw frames packed as the pipeline takes them (the one
 * packing definition, toPipelineFrame), MJPEG as the camera sent it plus standard Huffman tables.
 */
function fileBytes(frame: V4l2Frame): Uint8Array {
  return frame.format === 'MJPG' ? withHuffmanTables(frame.data) : toPipelineFrame(frame).data;
}

/** Streams `count` whole frames from an opened source into `out`. The caller closes the source. */
export async function recordFrames(source: V4l2Source, count: number, out: string): Promise<RecordResult> {
  const opened = await source.open();
  const { fourcc, width, height } = opened.format;
  const stream = createWriteStream(out);
  const failed = new Promise<never>((_, reject) => stream.once('error', (err) => reject(new Error(`${out}: ${err.message}`))));
  failed.catch(() => undefined); // raced below; an error after the last race is reported by 'finish'
  let frames = 0;
  let bytes = 0;
  try {
    while (frames < count) {
      const frame = await source.next();
      if (!frame) throw new Error(`${source.description}: the source closed after ${frames} of ${count} frames`);
      // A camera that comes back after an unplug is renegotiated and may be another model: its
      // frames would not fit the file's fixed size and format.
      if (frame.format !== fourcc || frame.width !== width || frame.height !== height) {
        throw new Error(
          `${source.description}: after a reopen the camera delivers ${frame.width}x${frame.height} ${frame.format}, not the ${width}x${height} ${fourcc} ` +
            `that ${out} holds; stopped after ${frames} of ${count} frames`,
        );
      }
      const data = fileBytes(frame);
      frames++;
      bytes += data.length;
      if (!stream.write(data)) await Promise.race([once(stream, 'drain'), failed]);
    }
  } finally {
    stream.end();
    await Promise.race([once(stream, 'finish'), failed]);
  }
  return { frames, bytes, fourcc, width, height, fps: opened.fps, stats: source.stats() };
}

export async function framesRecord(argv: string[], log: (line: string) => void, openDevice: V4l2DeviceOpener = nativeOpener()): Promise<RecordResult> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      source: { type: 'string' },
      count: { type: 'string' },
      out: { type: 'string' },
      size: { type: 'string' },
      format: { type: 'string' },
      fps: { type: 'string' },
      control: { type: 'string', multiple: true },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, FRAMES_RECORD_USAGE);
  if (!values.source || !values.out || values.count === undefined) throw new UsageError('--source, --count and --out are required', FRAMES_RECORD_USAGE);
  const spec = /^v4l2:(.+)$/.exec(values.source);
  if (!spec) throw new UsageError(`--source ${JSON.stringify(values.source)}: frames record captures from a camera, v4l2:/dev/videoN`, FRAMES_RECORD_USAGE);
  const count = intArg('--count', values.count, FRAMES_RECORD_USAGE, 1) as number;
  const out = values.out;

  const fromFile = fourccOfFile(out);
  let fourcc = fromFile;
  if (values.format !== undefined) {
    fourcc = RECORD_FORMATS[values.format.toLowerCase()];
    if (!fourcc) throw new UsageError(`--format ${JSON.stringify(values.format)}: use ${Object.keys(RECORD_FORMATS).join(', ')}`, FRAMES_RECORD_USAGE);
    if (fromFile && fromFile !== fourcc) {
      throw new UsageError(`--out ${out}: the extension says ${fromFile} but --format is ${values.format}; replay reads the format from the extension`, FRAMES_RECORD_USAGE);
    }
  }
  if (!fourcc) throw new UsageError(`--out ${out}: name it .yuyv, .nv12, .grey, .rgb or .mjpeg, or give --format`, FRAMES_RECORD_USAGE);
  if (!fromFile) {
    throw new UsageError(`--out ${out}: give it the extension of ${fourcc} frames (${fourcc === 'MJPG' ? '.mjpeg' : Object.entries(RAW_EXTENSIONS).find(([, p]) => PIXEL_FORMAT_FOURCC[p] === fourcc)?.[0]}) so that --source file: replays it`, FRAMES_RECORD_USAGE);
  }

  const named = /(\d+)x(\d+)/.exec(basename(out));
  const sizeText = values.size ?? (named ? named[0] : '640x480');
  const size = /^(\d+)x(\d+)$/.exec(sizeText);
  if (!size || Number(size[1]) < 1 || Number(size[2]) < 1) throw new UsageError(`--size ${JSON.stringify(sizeText)} is not WxH`, FRAMES_RECORD_USAGE);
  if (named && values.size !== undefined && named[0] !== values.size) {
    throw new UsageError(`--out ${out} names the size ${named[0]} but --size is ${values.size}; replay reads the size from the name`, FRAMES_RECORD_USAGE);
  }
  const fps = values.fps === undefined ? undefined : Number(values.fps);
  if (fps !== undefined && !(fps > 0)) throw new UsageError(`--fps ${JSON.stringify(values.fps)} is not a positive number`, FRAMES_RECORD_USAGE);
  const controls: Record<string, string> = {};
  for (const c of values.control ?? []) {
    const eq = c.indexOf('=');
    if (eq <= 0) throw new UsageError(`--control ${JSON.stringify(c)} is not KEY=VALUE`, FRAMES_RECORD_USAGE);
    controls[c.slice(0, eq).trim()] = c.slice(eq + 1);
  }

  let drops = 0;
  const source = new V4l2Source({
    path: spec[1],
    request: { width: Number(size[1]), height: Number(size[2]), fps, formats: [fourcc] },
    controls,
    openDevice,
    onDrop: (d) => {
      drops++;
      log(`dropped ${d.id} (${d.reason}): ${d.detail}`);
    },
    onEvent: (e) => {
      if (e.type === 'lost') log(`${values.source}: camera lost (${e.error.message}); reopening`);
      if (e.type === 'reopened') log(`${values.source}: reopened after ${e.attempts} attempt(s)`);
    },
  });
  try {
    const opened = await source.open();
    for (const w of opened.warnings) log(`warning: ${w}`);
    const got = `${opened.format.width}x${opened.format.height}`;
    // A raw file's size is read back from its name: a name the frames do not match replays as garbage.
    if (fourcc !== 'MJPG' && named && named[0] !== got) {
      throw new Error(`${values.source}: the driver gave ${got} ${opened.format.fourcc}, not the ${named[0]} that ${out} is named for; name the file for ${got}`);
    }
    const result = await recordFrames(source, count, out);
    const replay = fourcc === 'MJPG' || named ? `--source file:${out}` : `--source file:${out} --width ${opened.format.width} --height ${opened.format.height}`;
    log(
      `recorded ${result.frames} ${got} ${fourcc} frames (${result.bytes} bytes${result.fps ? `, ${result.fps} fps` : ''}) from ${opened.card} to ${out}` +
        `; dropped ${drops}, driver-dropped ${result.stats.driverDropped}; replay with ${replay}`,
    );
    return result;
  } finally {
    await source.close();
  }
}
