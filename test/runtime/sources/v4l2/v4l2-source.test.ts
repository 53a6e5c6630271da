import t from 'tap';

import type { DroppedFrame } from '../../../../src/runtime/sources/types.js';
import { checkFrame, expectedFrameBytes } from '../../../../src/runtime/sources/v4l2/frame-check.js';
import { V4l2Error } from '../../../../src/runtime/sources/v4l2/errors.js';
import type { CaptureRequest } from '../../../../src/runtime/sources/v4l2/negotiate.js';
import type { V4l2DequeuedBuffer } from '../../../../src/runtime/sources/v4l2/types.js';
import { V4l2Source, type V4l2SourceEvent, type V4l2SourceOptions } from '../../../../src/runtime/sources/v4l2/v4l2-source.js';
import {
  CID,
  FakeDevice,
  ManualClock,
  NOTHING_USABLE,
  UVC_CONTROLS,
  UVC_WEBCAM,
  jpegBytes,
  nativeError,
  type DequeueStep,
  type FakeSpec,
} from './fake-device.js';
import { same } from '../../../helpers/same.js';

const YUYV_640 = 640 * 480 * 2;

interface Harness {
  source: V4l2Source;
  clock: ManualClock;
  devices: FakeDevice[];
  events: V4l2SourceEvent[];
  drops: DroppedFrame[];
  /** errnos the next open() calls fail with, in order. */
  openFailures: string[];
  opens: () => number;
}

function harness(
  scripts: DequeueStep[][],
  options: { spec?: FakeSpec; request?: CaptureRequest } & Partial<Omit<V4l2SourceOptions, 'openDevice' | 'request'>> = {},
): Harness {
  const { spec = UVC_WEBCAM, request = { width: 640, height: 480, fps: 30 }, ...rest } = options;
  const clock = new ManualClock();
  const devices: FakeDevice[] = [];
  const events: V4l2SourceEvent[] = [];
  const drops: DroppedFrame[] = [];
  const openFailures: string[] = [];
  let opens = 0;
  const source = new V4l2Source({
    path: '/dev/video0',
    request,
    clock,
    stallTimeoutMs: 2000,
    pollMs: 500,
    backoff: { initialMs: 100, maxMs: 1000 },
    onEvent: (e) => events.push(e),
    onDrop: (d) => drops.push(d),
    openDevice: (path) => {
      opens++;
      const errno = openFailures.shift();
      if (errno) throw nativeError(path, 'open', errno, 'ERR_V4L2_OPEN');
      const device = new FakeDevice(path, spec, scripts[devices.length] ?? [], clock);
      devices.push(device);
      return device;
    },
    ...rest,
  });
  return { source, clock, devices, events, drops, openFailures, opens: () => opens };
}

const frames = (n: number, from = 0): DequeueStep[] => Array.from({ length: n }, (_, i) => ({ frame: { sequence: from + i } }));

t.test('normal streaming: open, negotiate, stream, whole frames in order', async (t) => {
  const h = harness([frames(5)]);
  const opened = await h.source.open();
  t.match(opened, { generation: 1, fps: 30, bufferCount: 4, negotiation: { fourcc: 'YUYV', width: 640, height: 480 } });
  t.match(opened.format, { fourcc: 'YUYV', width: 640, height: 480, bytesPerLine: 1280 });
  const calls = h.devices[0].calls.filter((c) => !c.startsWith('enum') && c !== 'info' && c !== 'queryControls');
  same(t, calls, ['setFormat YUYV 640x480', 'setFrameInterval 1/30', 'requestBuffers 4', 'streamOn']);

  const got = [];
  for (let i = 0; i < 5; i++) got.push(await h.source.next());
  t.same(
    got.map((f) => [f?.seq, f?.id, f?.sequence, f?.data.length, f?.format, f?.generation]),
    [0, 1, 2, 3, 4].map((i) => [i, `v4l2:/dev/video0#${i}`, i, YUYV_640, 'YUYV', 1]),
  );
  t.equal(typeof got[0]?.timestampNs, 'bigint');
  t.equal(got[1]!.timestampNs - got[0]!.timestampNs, 33_333_333n);
  t.match(h.source.stats(), { frames: 5, gaps: 0, driverDropped: 0, stalls: 0, lost: 0, reopens: 0 });
  t.same(h.drops, []);
  t.same(h.events.map((e) => e.type), ['opened']);
  await h.source.close();
  t.ok(h.devices[0].closed, 'close() closes the device');
  t.equal(await h.source.next(), null, 'next() after close() is the end of the stream');
  await t.rejects(h.source.open(), { code: 'ERR_V4L2_CLOSED' });
});

t.test('async iteration ends at close()', async (t) => {
  const h = harness([frames(10)]);
  const seen: number[] = [];
  for await (const f of h.source) {
    seen.push(f.sequence);
    if (seen.length === 3) await h.source.close();
  }
  t.same(seen, [0, 1, 2]);
});

t.test('a truncated YUYV frame is dropped with a counted reason', async (t) => {
  const h = harness([[{ frame: { sequence: 0 } }, { frame: { sequence: 1, bytes: YUYV_640 / 2 } }, { frame: { sequence: 2 } }]]);
  const a = await h.source.next();
  const b = await h.source.next();
  t.same([a?.sequence, b?.sequence], [0, 2]);
  same(t, [a?.seq, b?.seq], [0, 2], 'the dropped frame keeps its place in seq');
  t.equal(h.drops.length, 1);
  t.match(h.drops[0], {
    seq: 1,
    id: 'v4l2:/dev/video0#1',
    reason: 'truncated',
    detail: 'sequence 1: YUYV 640x480 needs 614400 bytes (bytesperline 1280), the driver delivered 307200',
  });
  t.match(h.source.stats(), { frames: 2, drops: { truncated: 1, corrupt: 0, empty: 0, driver: 0 }, gaps: 0 });
});

t.test('row padding: the expected size follows bytesperline', async (t) => {
  const h = harness([[{ frame: { sequence: 0, bytes: YUYV_640 } }, { frame: { sequence: 1 } }]], { spec: { ...UVC_WEBCAM, rowPadding: 64 } });
  const f = await h.source.next();
  t.equal(f?.sequence, 1);
  t.equal(f?.bytesPerLine, 1344);
  t.equal(f?.data.length, 1344 * 480);
  t.match(h.drops[0].detail, /needs 645120 bytes \(bytesperline 1344\)/);
});

t.test('driver error flag and empty buffers are dropped', async (t) => {
  const h = harness([[{ frame: { sequence: 0, flags: 0x40 } }, { frame: { sequence: 1, bytes: 0 } }, { frame: { sequence: 2 } }]]);
  t.equal((await h.source.next())?.sequence, 2);
  t.same(
    h.drops.map((d) => d.reason),
    ['driver', 'empty'],
  );
  t.match(h.drops[0].detail, /V4L2_BUF_FLAG_ERROR/);
});

t.test('MJPEG: variable size, checked for SOI and EOI markers', async (t) => {
  const noEoi = jpegBytes(800);
  noEoi[799] = 0x00;
  noEoi[798] = 0x12;
  const noSoi = jpegBytes(900);
  noSoi[1] = 0x00;
  const h = harness(
    [
      [
        { frame: { sequence: 0, data: jpegBytes(1000, 24) } },
        { frame: { sequence: 1, data: noEoi } },
        { frame: { sequence: 2, data: noSoi } },
        { frame: { sequence: 3, data: jpegBytes(1200) } },
      ],
    ],
    { request: { width: 1920, height: 1080, fps: 30, formats: ['MJPEG'] } },
  );
  const a = await h.source.next();
  t.match(a, { format: 'MJPG', width: 1920, height: 1080, bytesPerLine: 0 });
  t.equal(a?.data.length, 1000, 'zero padding after EOI is trimmed');
  const b = await h.source.next();
  t.equal(b?.data.length, 1200);
  t.same(
    h.drops.map((d) => [d.reason, d.detail]),
    [
      ['truncated', 'sequence 1: MJPG frame of 800 bytes does not end with a JPEG EOI marker (FF D9)'],
      ['corrupt', 'sequence 2: MJPG frame of 900 bytes does not start with a JPEG SOI marker (FF D8)'],
    ],
  );
});

t.test('sequence gaps (frames the driver dropped) are counted', async (t) => {
  const h = harness([[0, 1, 4, 5, 9].map((sequence) => ({ frame: { sequence } }))]);
  for (let i = 0; i < 5; i++) await h.source.next();
  t.match(h.source.stats(), { frames: 5, gaps: 2, driverDropped: 5 });
  t.same(
    h.events.filter((e) => e.type === 'gap'),
    [
      { type: 'gap', missing: 2, afterSequence: 1, sequence: 4 },
      { type: 'gap', missing: 3, afterSequence: 5, sequence: 9 },
    ],
  );
});

t.test('a stall (no buffer for stallTimeoutMs) closes and reopens the device', async (t) => {
  const h = harness([[{ frame: { sequence: 41 } }], [{ frame: { sequence: 0 } }, { frame: { sequence: 1 } }]], {
    controls: { brightness: 12 },
    spec: { ...UVC_WEBCAM, controls: UVC_CONTROLS },
  });
  t.equal((await h.source.next())?.sequence, 41);
  const after = await h.source.next();
  t.match(after, { sequence: 0, generation: 2, seq: 1 });
  t.equal(h.devices.length, 2);
  t.ok(h.devices[0].closed && h.devices[0].calls.includes('streamOff'), 'the stalled device was stopped and closed');
  t.equal(h.devices[0].calls.filter((c) => c === 'dequeue').length, 5, 'four 500 ms polls, then the stall');
  t.ok(h.devices[1].calls.includes(`setControl ${CID.BRIGHTNESS}=12`), 'controls are applied again after reopening');
  t.same(h.clock.sleeps, [100]);
  t.match(h.events.find((e) => e.type === 'stall'), { silentMs: 2000 });
  t.same(
    h.events.map((e) => e.type),
    ['opened', 'stall', 'opened', 'reopened'],
  );
  t.equal((await h.source.next())?.sequence, 1);
  t.match(h.source.stats(), { frames: 3, stalls: 1, reopens: 1, gaps: 0, driverDropped: 0 }, 'the sequence restart is not a gap');
});

t.test('unplug (ENODEV) closes and reopens with exponential backoff', async (t) => {
  const h = harness([[{ frame: { sequence: 0 } }, { error: 'ENODEV' }], [{ frame: { sequence: 0 } }]]);
  t.equal((await h.source.next())?.sequence, 0);
  h.openFailures.push('ENOENT', 'ENOENT', 'ENOENT', 'ENOENT', 'ENOENT');
  const f = await h.source.next();
  t.match(f, { sequence: 0, generation: 2 });
  t.same(h.clock.sleeps, [100, 200, 400, 800, 1000, 1000], 'doubling, capped at maxMs');
  t.match(h.source.stats(), { lost: 1, reopenFailures: 5, reopens: 1 });
  const lost = h.events.find((e) => e.type === 'lost');
  t.match(lost, { error: { errno: 'ENODEV', syscall: 'VIDIOC_DQBUF' } });
  t.same(
    h.events.filter((e) => e.type === 'reopen-failed').map((e) => (e.type === 'reopen-failed' ? [e.attempt, e.retryInMs, (e.error as V4l2Error).errno] : [])),
    [
      [1, 200, 'ENOENT'],
      [2, 400, 'ENOENT'],
      [3, 800, 'ENOENT'],
      [4, 1000, 'ENOENT'],
      [5, 1000, 'ENOENT'],
    ],
  );
  t.match(h.events.at(-1), { type: 'reopened', attempts: 6, downtimeMs: 3500 });
  t.ok(h.devices[0].closed);
});

t.test('EIO during streaming is treated as a lost device too', async (t) => {
  const h = harness([[{ error: 'EIO' }], frames(1)]);
  t.match(await h.source.next(), { generation: 2 });
  t.match(h.source.stats(), { lost: 1, reopens: 1 });
});

t.test('reopen gives up after maxAttempts with the last error', async (t) => {
  const h = harness([[{ error: 'ENODEV' }]], { backoff: { initialMs: 50, maxAttempts: 3 } });
  await h.source.open();
  h.openFailures.push('ENOENT', 'ENOENT', 'EACCES');
  const err = (await h.source.next().then(
    () => undefined,
    (e: unknown) => e,
  )) as V4l2Error;
  t.type(err, V4l2Error);
  t.equal(err.code, 'ERR_V4L2_REOPEN');
  t.match(err.message, /v4l2:\/dev\/video0: could not reopen the camera after 3 attempts: open on '\/dev\/video0' failed \(EACCES\)/);
  t.match(err.cause, { errno: 'EACCES' });
  t.same(h.clock.sleeps, [50, 100, 200]);
});

t.test('other dequeue errors are not retried', async (t) => {
  const h = harness([[{ error: 'EINVAL' }]]);
  const err = await h.source.next().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match(err, { errno: 'EINVAL', syscall: 'VIDIOC_DQBUF' });
  t.equal(h.opens(), 1);
});

t.test('open fails fast, closing the device, with a clear reason', async (t) => {
  const metadata = harness([], { spec: { ...UVC_WEBCAM, info: { card: 'HD Pro Webcam C920', deviceCaps: 0x00800000 | 0x04000000 } } });
  await t.rejects(metadata.source.open(), {
    code: 'ERR_V4L2_NOT_CAPTURE',
    message: /\/dev\/video0 "HD Pro Webcam C920" \(uvcvideo, usb-0000:00:14\.0-1\) is not a video capture node \(device caps 0x4800000\); UVC cameras also create a metadata node/,
  });
  t.ok(metadata.devices[0].closed);

  const mplane = harness([], { spec: { ...UVC_WEBCAM, info: { deviceCaps: 0x00001000 | 0x04000000 } } });
  await t.rejects(mplane.source.open(), { code: 'ERR_V4L2_NOT_CAPTURE', message: /only offers multi-planar capture/ });

  const noStream = harness([], { spec: { ...UVC_WEBCAM, info: { deviceCaps: 0x00000001 } } });
  await t.rejects(noStream.source.open(), { message: /does not support streaming/ });

  const nothing = harness([], { spec: NOTHING_USABLE });
  await t.rejects(nothing.source.open(), { code: 'ERR_V4L2_NEGOTIATION', message: /H264 "H\.264"/ });
  t.ok(nothing.devices[0].closed);
  t.equal(nothing.opens(), 1, 'no retry on the first open');

  const control = harness([], { spec: { ...UVC_WEBCAM, controls: UVC_CONTROLS }, controls: { brightness: 999 } });
  await t.rejects(control.source.open(), { code: 'ERR_V4L2_CONTROL', message: /brightness.*999.*-64\.\.64/ });
  t.ok(control.devices[0].closed);
  t.notOk(control.devices[0].calls.some((c) => c.startsWith('setControl')), 'nothing is set when validation fails');

  const missing = harness([]);
  missing.openFailures.push('ENOENT');
  await t.rejects(missing.source.next(), { code: 'ERR_V4L2_OPEN', errno: 'ENOENT' });
});

t.test('what the driver changes on S_FMT / S_PARM is reported', async (t) => {
  const adjusted = harness([frames(1)], { spec: { ...UVC_WEBCAM, adjustFormat: (fourcc) => ({ fourcc, width: 640, height: 360 }) } });
  const opened = await adjusted.source.open();
  t.match(opened.format, { width: 640, height: 360 });
  t.match(opened.warnings.join('\n'), /the driver adjusted YUYV 640x480 to YUYV 640x360/);
  const f = await adjusted.source.next();
  same(t, [f?.width, f?.height, f?.data.length], [640, 360, 640 * 360 * 2]);

  const switched = harness([], { spec: { ...UVC_WEBCAM, adjustFormat: (_f, width, height) => ({ fourcc: 'UYVY', width, height }) } });
  await t.rejects(switched.source.open(), { code: 'ERR_V4L2_NEGOTIATION', message: /the driver switched to UYVY, which is not accepted/ });

  const noRate = harness([], { spec: { ...UVC_WEBCAM, timePerFrame: false } });
  const o = await noRate.source.open();
  t.equal(o.fps, null);
  t.match(o.warnings.join('\n'), /no frame-rate control/);
});

t.test('close() during a pending dequeue ends next() with null', async (t) => {
  class Blocking extends FakeDevice {
    private wake?: () => void;
    override async dequeue(): Promise<V4l2DequeuedBuffer | null> {
      this.calls.push('dequeue');
      await new Promise<void>((resolve) => (this.wake = resolve));
      return null;
    }
    override close(): void {
      super.close();
      this.wake?.();
    }
  }
  const clock = new ManualClock();
  let device: Blocking | undefined;
  const source = new V4l2Source({
    path: '/dev/video0',
    request: { width: 640, height: 480 },
    clock,
    openDevice: (path) => (device = new Blocking(path, UVC_WEBCAM)),
  });
  const pending = source.next();
  await new Promise((r) => setImmediate(r));
  t.ok(device?.calls.includes('dequeue'));
  await source.close();
  t.equal(await pending, null);
});

t.test('checkFrame / expectedFrameBytes', async (t) => {
  const fmt = { width: 4, height: 2, bytesPerLine: 4, sizeImage: 12, field: 1, colorspace: 8 };
  t.equal(expectedFrameBytes({ ...fmt, fourcc: 'NV12' }), 12);
  t.equal(expectedFrameBytes({ ...fmt, fourcc: 'GREY' }), 8);
  t.equal(expectedFrameBytes({ ...fmt, fourcc: 'MJPG' }), undefined);
  t.equal(expectedFrameBytes({ ...fmt, fourcc: 'GREY', bytesPerLine: 0 }), 12, 'sizeimage when bytesperline is unknown');
  const buf = (n: number, bytesUsed = n): V4l2DequeuedBuffer => ({ index: 0, bytesUsed, sequence: 0, flags: 0, timestampNs: 0n, data: new Uint8Array(n) });
  t.match(checkFrame({ ...fmt, fourcc: 'NV12' }, buf(11)), { ok: false, reason: 'truncated' });
  const whole = checkFrame({ ...fmt, fourcc: 'NV12' }, buf(16, 12));
  t.equal(whole.ok && whole.data.length, 12);
  t.match(checkFrame({ ...fmt, fourcc: 'NV12' }, buf(16, 10)), { ok: false, reason: 'truncated' }, 'bytesused is what counts');
});
