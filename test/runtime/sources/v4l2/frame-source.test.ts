import t from 'tap';
import jpeg from 'jpeg-js';

import { decodeImage } from '../../../../src/image/decode.js';
import type { DroppedFrame } from '../../../../src/runtime/sources/types.js';
import { V4l2FrameSource, packRows, toPipelineFrame, withHuffmanTables } from '../../../../src/runtime/sources/v4l2/frame-source.js';
import type { V4l2Frame } from '../../../../src/runtime/sources/v4l2/v4l2-source.js';
import { FakeDevice, ManualClock, UVC_WEBCAM, jpegBytes } from './fake-device.js';
import { same } from '../../../helpers/same.js';

/** A real JPEG, and the same JPEG with its DHT segments removed, as UVC cameras send MJPEG. */
function uvcStyleJpeg(width: number, height: number): { full: Uint8Array; stripped: Uint8Array } {
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) rgba.set([(i * 7) % 256, (i * 3) % 256, 128, 255], i * 4);
  const full = new Uint8Array(jpeg.encode({ data: rgba, width, height }, 85).data);
  const parts: Uint8Array[] = [full.subarray(0, 2)];
  let i = 2;
  for (;;) {
    const marker = full[i + 1];
    if (marker === 0xda) {
      parts.push(full.subarray(i));
      break;
    }
    const len = (full[i + 2] << 8) | full[i + 3];
    if (marker !== 0xc4) parts.push(full.subarray(i, i + 2 + len));
    i += 2 + len;
  }
  return { full, stripped: new Uint8Array(Buffer.concat(parts)) };
}

const frame = (over: Partial<V4l2Frame>): V4l2Frame => ({
  seq: 0,
  id: 'v4l2:/dev/video0#0',
  format: 'YUYV',
  width: 4,
  height: 2,
  bytesPerLine: 8,
  data: new Uint8Array(16),
  timestampNs: 0n,
  sequence: 0,
  generation: 1,
  captureTimeMs: 0,
  ...over,
});

t.test('MJPEG without Huffman tables decodes once the standard tables are inserted', async (t) => {
  const { full, stripped } = uvcStyleJpeg(32, 16);
  t.ok(stripped.length < full.length);
  t.throws(() => decodeImage(stripped, 'stripped'), 'the decoder rejects a JPEG without DHT');
  const fixed = withHuffmanTables(stripped);
  const a = decodeImage(full, 'full');
  const b = decodeImage(fixed, 'fixed');
  t.same([b.width, b.height], [32, 16]);
  t.ok(Buffer.from(a.data).equals(Buffer.from(b.data)), 'same pixels as the original (it used the standard tables)');
  t.equal(withHuffmanTables(full), full, 'a JPEG with its own tables is left alone');
});

t.test('row padding is removed: YUYV, GREY, NV12', async (t) => {
  const padded = Uint8Array.from([1, 2, 3, 4, 9, 9, 5, 6, 7, 8, 9, 9]);
  t.same([...packRows(padded, 6, 4, 2)], [1, 2, 3, 4, 5, 6, 7, 8]);
  const y = toPipelineFrame(frame({ format: 'YUYV', width: 2, height: 2, bytesPerLine: 6, data: padded }));
  same(t, [y.format, [...y.data]], ['YUYV', [1, 2, 3, 4, 5, 6, 7, 8]]);
  // NV12 4x2 with stride 6: two luma rows then one chroma row, each padded by 2.
  const nv = Uint8Array.from([1, 1, 1, 1, 0, 0, 2, 2, 2, 2, 0, 0, 3, 4, 3, 4, 0, 0]);
  const n = toPipelineFrame(frame({ format: 'NV12', width: 4, height: 2, bytesPerLine: 6, data: nv }));
  same(t, [...n.data], [1, 1, 1, 1, 2, 2, 2, 2, 3, 4, 3, 4]);
  const g = toPipelineFrame(frame({ format: 'GREY', width: 4, height: 2, bytesPerLine: 4, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }));
  same(t, [g.format, g.data.length, g.seq, g.id], ['GREY', 8, 0, 'v4l2:/dev/video0#0']);
  t.throws(() => toPipelineFrame(frame({ format: 'Y16' })), { code: 'ERR_INVALID_ARGUMENT', message: /Y16 frames cannot be fed/ });
});

t.test('V4l2FrameSource: MJPEG camera frames stay compressed (sized from their header), headerless frames dropped', async (t) => {
  const { stripped } = uvcStyleJpeg(32, 16);
  const garbage = jpegBytes(600);
  const drops: DroppedFrame[] = [];
  const clock = new ManualClock();
  const source = new V4l2FrameSource({
    path: '/dev/video0',
    request: { width: 1920, height: 1080, fps: 30, formats: ['MJPG'] },
    clock,
    onDrop: (d) => drops.push(d),
    openDevice: (path) =>
      new FakeDevice(path, UVC_WEBCAM, [{ frame: { sequence: 0, data: stripped } }, { frame: { sequence: 1, data: garbage } }, { frame: { sequence: 2, data: stripped } }], clock),
  });
  await source.open();
  const a = await source.next();
  const b = await source.next();
  same(t, [a?.format, a?.width, a?.height, a?.data.length, a?.seq], ['MJPEG', 32, 16, stripped.length, 0]);
  t.same([b?.seq, b?.id], [2, 'v4l2:/dev/video0#2']);
  t.equal(drops.length, 1);
  t.match(drops[0], { seq: 1, reason: 'decode' });
  t.match(source.stats(), { frames: 3, drops: { decode: 1 } });
  await source.close();
  t.equal(await source.next(), null);
});

t.test('V4l2FrameSource refuses formats the pipeline cannot take', async (t) => {
  t.throws(
    () => new V4l2FrameSource({ path: '/dev/video0', request: { width: 640, height: 480, formats: ['YUYV', 'H264'] }, openDevice: () => new FakeDevice('/dev/video0', UVC_WEBCAM) }),
    { code: 'ERR_INVALID_ARGUMENT', message: /the pipeline cannot take H264/ },
  );
});

t.test('V4l2FrameSource: frames are copied into pooled buffers; a buffer given back takes a later frame', async (t) => {
  const clock = new ManualClock();
  let device: FakeDevice | undefined;
  const source = new V4l2FrameSource({
    path: '/dev/video0',
    request: { width: 640, height: 480, fps: 30, formats: ['YUYV'] },
    clock,
    openDevice: (path) => (device = new FakeDevice(path, UVC_WEBCAM, [0, 1, 2].map((sequence) => ({ frame: { sequence } })), clock)),
  });
  await source.open();
  const a = await source.next();
  const b = await source.next();
  if (!a || !b) throw new Error('two frames expected');
  same(t, [a.data.length, a.data[0], b.data[0]], [640 * 480 * 2, 0, 1]);
  t.not(a.data.buffer, b.data.buffer, 'frames in use have buffers of their own');
  source.recycle(a.data);
  const c = await source.next();
  t.equal(c?.data.buffer, a.data.buffer, 'the third frame is copied into the first frame\'s buffer');
  t.equal(c?.data[0], 2);
  t.equal(b.data[0], 1, 'a frame not given back is untouched');
  t.equal(device?.intoBuffers.length, 3, 'every dequeue got a buffer to copy into');
  await source.close();
});
