/**
 * Replay sources read only regular files, and check frame sizes against the limits before reading
 * or allocating: a FIFO or /dev/zero is refused with its path named, an oversized frame is refused
 * from its header or its announced size.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';

import { FolderSource } from '../../../src/runtime/sources/folder-source.js';
import { MAX_FRAME_PIXELS } from '../../../src/runtime/sources/limits.js';
import { RawFileSource } from '../../../src/runtime/sources/raw-file-source.js';
import type { DroppedFrame } from '../../../src/runtime/sources/types.js';
import { tempDir } from '../pipeline/fixtures/model.js';
import { same } from '../../helpers/same.js';

const tmp = tempDir('sources');
t.teardown(tmp.remove);

function smallJpeg(width: number, height: number): Uint8Array {
  return jpeg.encode({ width, height, data: new Uint8Array(width * height * 4).fill(200) }, 85).data;
}

/** A JPEG whose frame header claims another size (the scan data no longer matters: it is never decoded). */
function withHeaderSize(j: Uint8Array, width: number, height: number): Uint8Array {
  const out = Uint8Array.from(j);
  for (let i = 2; i + 9 < out.length; ) {
    if (out[i + 1] === 0xc0) {
      out[i + 5] = height >> 8;
      out[i + 6] = height & 255;
      out[i + 7] = width >> 8;
      out[i + 8] = width & 255;
      return out;
    }
    i += 2 + ((out[i + 2] << 8) | out[i + 3]);
  }
  throw new Error('no SOF0');
}

/** Start of the entropy-coded data: just after the SOS segment. */
function scanStart(j: Uint8Array): number {
  let i = 2;
  for (;;) {
    const len = (j[i + 2] << 8) | j[i + 3];
    if (j[i + 1] === 0xda) return i + 2 + len;
    i += 2 + len;
  }
}

const fifo = join(tmp.dir, 'camera.yuyv');
let fifoSkip: string | false = false;
try {
  execFileSync('mkfifo', [fifo]);
} catch (err) {
  fifoSkip = `mkfifo failed: ${(err as Error).message}`;
}

t.test('file: a FIFO is refused, naming the path, without waiting for a writer', { skip: fifoSkip }, async (t) => {
  const source = new RawFileSource(fifo, { width: 640, height: 480 });
  await t.rejects(source.open(), { name: 'SourceError', message: new RegExp(`${fifo} is a FIFO: only regular files are read as frames`) });
});

t.test('file: /dev/zero is refused, naming the path', async (t) => {
  const source = new RawFileSource('/dev/zero', { width: 640, height: 480, format: 'YUYV' });
  await t.rejects(source.open(), { message: /\/dev\/zero is a character device: only regular files are read as frames/ });
});

t.test('file: raw frames over the pixel limit are refused before the first frame is allocated', async (t) => {
  const file = join(tmp.dir, 'big_8000x5000.grey');
  writeFileSync(file, new Uint8Array(16));
  const source = new RawFileSource(file);
  await t.rejects(source.open(), { message: /GREY frames of 8000x5000 \(40\.0 MP\) exceeds the frame limit of 36 MP \(maxFramePixels\)/ });
  t.equal(MAX_FRAME_PIXELS, 36_000_000);
  const small = new RawFileSource(join(tmp.dir, 'big_8000x5000.grey'), { maxFramePixels: 50_000_000 });
  await small.open();
  const drops: DroppedFrame[] = [];
  const s2 = new RawFileSource(file, { maxFramePixels: 50_000_000, onDrop: (d) => drops.push(d) });
  await s2.open();
  t.equal(await s2.next(), null, 'the limit is configurable: the (short) frame is then read and dropped as truncated');
  t.match(drops, [{ reason: 'truncated' }]);
  await small.close();
  await s2.close();
});

t.test('file: MJPEG frames carry their header size and are refused over the limit, the stream goes on', async (t) => {
  const ok = smallJpeg(32, 16);
  const huge = withHeaderSize(ok, 10000, 6000);
  const file = join(tmp.dir, 'stream.mjpeg');
  writeFileSync(file, Buffer.concat([ok, huge, ok]));
  const drops: DroppedFrame[] = [];
  const source = new RawFileSource(file, { onDrop: (d) => drops.push(d) });
  await source.open();
  const a = await source.next();
  const b = await source.next();
  same(t, [a?.format, a?.width, a?.height, a?.data.length], ['MJPEG', 32, 16, ok.length], 'undecoded, sized from its header');
  t.same([b?.seq, b?.format], [2, 'MJPEG']);
  t.equal(await source.next(), null);
  t.match(drops, [{ seq: 1, reason: 'refused', detail: /10000x6000 \(60\.0 MP\) exceeds the frame limit of 36 MP/ }]);
  await source.close();
});

t.test('file: an MJPEG stream without an end marker is cut at maxFrameBytes', async (t) => {
  const file = join(tmp.dir, 'endless.mjpeg');
  const ok = smallJpeg(8, 8);
  // A frame whose scan data never ends: headers up to SOS, then 3 MB of entropy-coded bytes.
  const head = ok.subarray(0, scanStart(ok));
  writeFileSync(file, Buffer.concat([ok, head, Buffer.alloc(3 << 20, 0x11)]));
  const drops: DroppedFrame[] = [];
  const source = new RawFileSource(file, { maxFrameBytes: 1 << 20, onDrop: (d) => drops.push(d) });
  await source.open();
  t.equal((await source.next())?.width, 8);
  t.equal(await source.next(), null);
  t.match(drops, [{ reason: 'refused', detail: /no JPEG end marker within \d+ bytes .*limit 1048576 bytes per frame/ }]);
  await source.close();
});

t.test('folder: a FIFO entry and oversized images are dropped as refused; JPEGs stay compressed', { skip: fifoSkip }, async (t) => {
  const dir = join(tmp.dir, 'folder');
  mkdirSync(dir);
  writeFileSync(join(dir, 'a.jpg'), smallJpeg(24, 12));
  execFileSync('mkfifo', [join(dir, 'b.jpg')]);
  writeFileSync(join(dir, 'c.jpg'), withHeaderSize(smallJpeg(24, 12), 9000, 9000));
  writeFileSync(join(dir, 'd.jpg'), Buffer.alloc(2000, 1));
  writeFileSync(join(dir, 'e.jpg'), smallJpeg(24, 12));
  const drops: DroppedFrame[] = [];
  const source = new FolderSource(dir, { maxFrameBytes: 1000, onDrop: (d) => drops.push(d) });
  await source.open();
  const a = await source.next();
  const e = await source.next();
  t.same([a?.id, a?.format, a?.width, a?.height], ['a', 'MJPEG', 24, 12]);
  t.equal(e?.id, 'e');
  t.equal(await source.next(), null);
  t.match(drops, [
    { id: 'b', reason: 'refused', detail: /b\.jpg is a FIFO: only regular files are read as frames/ },
    { id: 'c', reason: 'refused', detail: /c\.jpg: 9000x9000 \(81\.0 MP\) exceeds the frame limit of 36 MP/ },
    { id: 'd', reason: 'refused', detail: /d\.jpg is 2000 bytes, over the limit of 1000 bytes per frame/ },
  ]);
  await source.close();
});

t.test('file: MJPEG frames are delimited by their structure: a cut-off frame costs only itself, a thumbnail does not end its frame', async (t) => {
  const a = smallJpeg(16, 8);
  const b = smallJpeg(24, 8);
  // An APP1 segment holding a whole JPEG (as EXIF thumbnails do), inserted after SOI.
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, (a.length + 2) >> 8, (a.length + 2) & 255]), a]);
  const withThumb = Buffer.concat([b.subarray(0, 2), app1, b.subarray(2)]);
  const cut = a.subarray(0, a.length - 4); // the last scan bytes and EOI missing
  t.ok(cut.length > scanStart(a), "cut inside the scan data");
  const garbage = Buffer.from([0xff, 0xd8, 0x12, 0x34, 0x56]);
  const file = join(tmp.dir, 'cut.mjpeg');
  writeFileSync(file, Buffer.concat([a, cut, b, withThumb, garbage, a]));
  const drops: DroppedFrame[] = [];
  const source = new RawFileSource(file, { onDrop: (d) => drops.push(d) });
  await source.open();
  const got: [number, number, number, number][] = [];
  for (let f = await source.next(); f; f = await source.next()) got.push([f.seq, f.width, f.height, f.data.length]);
  await source.close();
  t.same(got, [
    [0, 16, 8, a.length],
    [2, 24, 8, b.length],
    [3, 24, 8, withThumb.length],
    [5, 16, 8, a.length],
  ], 'the frame after the cut one is whole; the thumbnail stays inside its frame');
  t.match(drops, [
    { seq: 1, reason: 'truncated', detail: new RegExp(`JPEG at byte ${a.length} is cut off after ${cut.length} bytes`) },
    { seq: 4, reason: 'corrupt', detail: /no marker at byte/ },
  ]);
});
