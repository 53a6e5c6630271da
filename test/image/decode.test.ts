import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import {
  ImageDecodeError,
  decodeImage,
  decodeMask,
  readImageFile,
  readMaskFile,
  sniffFormat,
} from '../../src/image/decode.js';
import { same } from '../helpers/same.js';
import { DATASETS as DATASETS_DIR } from '../helpers/paths.js';

const DATASETS = DATASETS_DIR;
const noData = existsSync(DATASETS) ? false : `datasets not found at ${DATASETS}`;
const KVASIR_STEM = 'cju0qkwl35piu0993l0dewei2';

function onlyZeroOne(data: Uint8Array): { zeros: number; ones: number; other: number } {
  let zeros = 0, ones = 0, other = 0;
  for (const v of data) {
    if (v === 0) zeros++;
    else if (v === 1) ones++;
    else other++;
  }
  return { zeros, ones, other };
}

t.test('Kvasir JPEG image and mask', { skip: noData }, async (t) => {
  const imgPath = join(DATASETS, 'kvasir-seg/images', `${KVASIR_STEM}.jpg`);
  const img = await readImageFile(imgPath);
  t.equal(img.width, 622);
  t.equal(img.height, 529);
  t.equal(img.data.length, 622 * 529 * 3);
  const mask = await readMaskFile(join(DATASETS, 'kvasir-seg/masks', `${KVASIR_STEM}.jpg`));
  same(t, [mask.width, mask.height], [622, 529]);
  const c = onlyZeroOne(mask.data);
  t.equal(c.other, 0, 'JPEG mask thresholded to 0/1 only');
  t.ok(c.ones > 0 && c.zeros > 0, 'mask has foreground and background');
});

t.test('BUSI PNGs: greyscale and RGB images, greyscale mask', { skip: noData }, async (t) => {
  const grey = await readImageFile(join(DATASETS, 'busi/images/benign (1).png'));
  same(t, [grey.width, grey.height, grey.data.length], [562, 471, 562 * 471 * 3]);
  let equalChannels = true;
  for (let i = 0; i < grey.data.length; i += 3) {
    if (grey.data[i] !== grey.data[i + 1] || grey.data[i] !== grey.data[i + 2]) equalChannels = false;
  }
  t.ok(equalChannels, 'greyscale PNG expands to R=G=B');

  const colour = await readImageFile(join(DATASETS, 'busi/images/benign (13).png'));
  t.same([colour.width, colour.height], [678, 571]);

  const mask = await readMaskFile(join(DATASETS, 'busi/masks/benign (1).png'));
  same(t, [mask.width, mask.height], [562, 471]);
  const c = onlyZeroOne(mask.data);
  t.equal(c.other, 0);
  t.ok(c.ones > 0 && c.zeros > 0);
});

t.test('format is sniffed from bytes, not the name', { skip: noData }, async (t) => {
  const jpg = readFileSync(join(DATASETS, 'kvasir-seg/images', `${KVASIR_STEM}.jpg`));
  t.equal(sniffFormat(jpg), 'jpeg');
  const img = decodeImage(jpg, 'misnamed.png');
  t.equal(img.width, 622);
});

function expectDecodeError(t: Test, bytes: Uint8Array, name: string, reason: RegExp): void {
  t.throws(() => decodeImage(bytes, name), ImageDecodeError);
  try {
    decodeImage(bytes, name);
  } catch (err) {
    t.type(err, ImageDecodeError);
    const e = err as ImageDecodeError;
    t.equal(e.file, name, 'error carries the file');
    t.ok(e.message.includes(name), `message names the file: ${e.message}`);
    t.match(e.reason, reason);
  }
}

t.test('bad input throws ImageDecodeError naming the file', { skip: noData }, async (t) => {
  const jpg = readFileSync(join(DATASETS, 'kvasir-seg/images', `${KVASIR_STEM}.jpg`));
  const png = readFileSync(join(DATASETS, 'busi/images/benign (1).png'));
  expectDecodeError(t, new Uint8Array(0), 'empty.jpg', /empty/);
  expectDecodeError(t, jpg.subarray(0, jpg.length >> 1), 'half.jpg', /truncated JPEG/);
  expectDecodeError(t, jpg.subarray(0, 100), 'head.jpg', /JPEG/);
  expectDecodeError(t, png.subarray(0, png.length >> 1), 'half.png', /truncated PNG/);
  expectDecodeError(t, png.subarray(0, 20), 'tiny.png', /truncated PNG/);
  const flipped = Buffer.from(png);
  flipped[flipped.length >> 1] ^= 0xff;
  expectDecodeError(t, flipped, 'crc.png', /corrupt/);
  const garbage = new Uint8Array(512);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 97 + 13) & 255;
  expectDecodeError(t, garbage, 'noise.bin', /not a JPEG or PNG/);
  const jpegHeadGarbage = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, ...garbage]);
  expectDecodeError(t, jpegHeadGarbage, 'garbage.jpg', /JPEG/);
  expectDecodeError(t, Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1'), 'anim.gif', /GIF/);
});

t.test('readImageFile errors name the path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-decode-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const p = join(dir, 'zero.png');
  writeFileSync(p, new Uint8Array(0));
  await t.rejects(readImageFile(p), { name: 'ImageDecodeError', file: p });
  await t.rejects(readMaskFile(p), { message: new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) });
  await t.rejects(readImageFile(join(dir, 'absent.png')), { code: 'ENOENT' });
});

// Minimal PNG writer so the odd formats pngjs cannot write (palette, 16-bit, 1-bit) are covered.
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, body: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.write(type, 4, 'latin1');
  out.set(body, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
  return out;
}

/** rows: the packed bytes of each scanline, without the filter byte. */
function makePng(
  width: number,
  height: number,
  bitDepth: number,
  colorType: number,
  rows: number[][],
  extra: Buffer[] = [],
): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  const raw = Buffer.from(rows.flatMap((r) => [0, ...r]));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...extra,
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

t.test('PNG colour types and bit depths decode to 8-bit RGB', async (t) => {
  const grey8 = decodeImage(makePng(2, 1, 8, 0, [[10, 200]]), 'grey8.png');
  same(t, Array.from(grey8.data), [10, 10, 10, 200, 200, 200]);

  // 16-bit samples are rounded to 8 bits: 0x1234 -> round(4660*255/65535) = 18.
  const grey16 = decodeImage(makePng(2, 1, 16, 0, [[0x12, 0x34, 0xff, 0xff]]), 'grey16.png');
  same(t, Array.from(grey16.data), [18, 18, 18, 255, 255, 255]);

  const grey1 = decodeImage(makePng(3, 1, 1, 0, [[0b10100000]]), 'grey1.png');
  same(t, Array.from(grey1.data), [255, 255, 255, 0, 0, 0, 255, 255, 255]);

  const greyAlpha = decodeImage(makePng(1, 1, 8, 4, [[77, 0]]), 'greyalpha.png');
  same(t, Array.from(greyAlpha.data), [77, 77, 77], 'alpha dropped, not composited');

  const rgba = decodeImage(makePng(1, 1, 8, 6, [[1, 2, 3, 4]]), 'rgba.png');
  same(t, Array.from(rgba.data), [1, 2, 3]);

  const rgb16 = decodeImage(makePng(1, 1, 16, 2, [[0xff, 0xff, 0x00, 0x00, 0x80, 0x00]]), 'rgb16.png');
  same(t, Array.from(rgb16.data), [255, 0, 128]);

  const plte = chunk('PLTE', Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255]));
  const pal = decodeImage(makePng(3, 1, 8, 3, [[2, 0, 1]], [plte]), 'palette.png');
  same(t, Array.from(pal.data), [0, 0, 255, 255, 0, 0, 0, 255, 0]);

  const pal4 = decodeImage(makePng(2, 1, 4, 3, [[0x21]], [plte]), 'palette4.png');
  same(t, Array.from(pal4.data), [0, 0, 255, 0, 255, 0]);

  const mask = decodeMask(makePng(4, 1, 8, 0, [[0, 127, 128, 255]]), 'mask.png');
  same(t, Array.from(mask.data), [0, 0, 1, 1], 'threshold: >= 128 is foreground');

  // Luma of (255, 0, 0) is 76: a pure red pixel is background, pure green (150) foreground.
  const colourMask = decodeMask(makePng(2, 1, 8, 2, [[255, 0, 0, 0, 255, 0]]), 'colourmask.png');
  same(t, Array.from(colourMask.data), [0, 1]);
});

t.test('oversized header is refused before decoding', async (t) => {
  const png = makePng(1, 1, 8, 0, [[0]]);
  png.writeUInt32BE(100000, 16);
  png.writeUInt32BE(100000, 20);
  t.throws(() => decodeImage(png, 'huge.png'), { name: 'ImageDecodeError', message: /huge\.png.*megapixels/ });
});
