/**
 * `lvunet-edge frames record` over the in-memory V4L2 device: what it writes is exactly what
 * `--source file:` replays (packed raw frames, or JPEGs with Huffman tables), damaged frames are
 * not written, and names that would replay wrongly are refused. The real-driver run is
 * `npm run test:v4l2` (vivid under qemu).
 */
import t from 'tap';
import jpeg from 'jpeg-js';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { UsageError } from '../../src/cli/errors.js';
import { framesRecord, recordFrames } from '../../src/cli/frames-command.js';
import { V4l2Source } from '../../src/runtime/sources/v4l2/v4l2-source.js';
import { RawFileSource } from '../../src/runtime/sources/raw-file-source.js';
import type { Frame } from '../../src/runtime/sources/types.js';
import { FakeDevice, ManualClock, UVC_WEBCAM, type DequeueStep, type FakeSpec } from '../runtime/sources/v4l2/fake-device.js';
import { same } from '../helpers/same.js';

const tmp = mkdtempSync(join(tmpdir(), 'lvunet-record-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const PADDED: FakeSpec = { ...UVC_WEBCAM, rowPadding: 64 };

async function replay(path: string): Promise<Frame[]> {
  const source = new RawFileSource(path);
  await source.open();
  const frames: Frame[] = [];
  for (let f = await source.next(); f; f = await source.next()) frames.push(f);
  await source.close();
  return frames;
}

t.test('raw YUYV: rows unpadded, damaged frames left out, replays frame for frame', async (t) => {
  const out = join(tmp, 'cam_640x480.yuyv');
  const stride = 640 * 2 + 64;
  const script: DequeueStep[] = [
    { frame: { sequence: 0 } },
    { frame: { sequence: 1, bytes: 1000 } }, // short: truncated
    { frame: { sequence: 2, flags: 0x40 } }, // V4L2_BUF_FLAG_ERROR
    { frame: { sequence: 3 } },
    { frame: { sequence: 4 } },
  ];
  const lines: string[] = [];
  const result = await framesRecord(['--source', 'v4l2:/dev/video0', '--count', '3', '--out', out], (l) => lines.push(l), (p) => new FakeDevice(p, PADDED, script));
  t.match(result, { frames: 3, fourcc: 'YUYV', width: 640, height: 480, bytes: 3 * 640 * 480 * 2 });
  t.equal(statSync(out).size, 3 * 640 * 480 * 2);
  t.equal(lines.filter((l) => l.startsWith('dropped')).length, 2, 'both damaged frames reported');
  t.match(lines.at(-1), /recorded 3 640x480 YUYV frames .*; dropped 2, .*replay with --source file:/);

  const frames = await replay(out);
  t.equal(frames.length, 3);
  // The fake fills each buffer (padding included) with its sequence number: 0, 3, 4 survive.
  t.same(
    frames.map((f) => [f.format, f.width, f.height, f.data[0], f.data[f.data.length - 1]]),
    [0, 3, 4].map((s) => ['YUYV', 640, 480, s, s]),
  );
  t.ok(stride > 640 * 2, 'the driver padded its rows');
});

t.test('MJPEG: standard Huffman tables inserted, so the file decodes on replay', async (t) => {
  const rgba = Buffer.alloc(32 * 16 * 4, 200);
  const full = new Uint8Array(jpeg.encode({ data: rgba, width: 32, height: 16 }, 85).data);
  // Drop the DHT segments, as UVC cameras do.
  const parts: Uint8Array[] = [full.subarray(0, 2)];
  for (let i = 2; ; ) {
    const marker = full[i + 1];
    if (marker === 0xda) {
      parts.push(full.subarray(i));
      break;
    }
    const len = (full[i + 2] << 8) | full[i + 3];
    if (marker !== 0xc4) parts.push(full.subarray(i, i + 2 + len));
    i += 2 + len;
  }
  const stripped = new Uint8Array(Buffer.concat(parts));
  const out = join(tmp, 'cam.mjpeg');
  await framesRecord(
    ['--source', 'v4l2:/dev/video0', '--count', '2', '--out', out, '--size', '1920x1080'],
    () => undefined,
    (p) => new FakeDevice(p, UVC_WEBCAM, [{ frame: { sequence: 0, data: stripped } }, { frame: { sequence: 1, data: stripped } }]),
  );
  const bytes = readFileSync(out);
  t.ok(bytes.includes(Buffer.from([0xff, 0xc4])), 'DHT present');
  const frames = await replay(out);
  // Replay hands MJPEG frames on compressed (the native frame job decodes them); each must decode.
  t.same(
    frames.map((f) => [f.format, f.width, f.height]),
    [
      ['MJPEG', 32, 16],
      ['MJPEG', 32, 16],
    ],
  );
  for (const f of frames) {
    const decoded = jpeg.decode(f.data, { useTArray: true });
    same(t, [decoded.width, decoded.height], [32, 16], 'the recorded frame decodes with a standard decoder');
  }
});

t.test('names that would replay wrongly are refused', async (t) => {
  const open = (p: string): FakeDevice => new FakeDevice(p, UVC_WEBCAM, [{ frame: { sequence: 0 } }]);
  const run = (...args: string[]): Promise<unknown> => framesRecord(['--source', 'v4l2:/dev/video0', '--count', '1', ...args], () => undefined, open);
  await t.rejects(run('--out', join(tmp, 'a_640x480.yuyv'), '--format', 'nv12'), UsageError, 'extension and --format disagree');
  await t.rejects(run('--out', join(tmp, 'a.bin')), { message: /name it \.yuyv/ });
  await t.rejects(run('--out', join(tmp, 'a_640x480.yuyv'), '--size', '320x240'), { message: /names the size 640x480 but --size is 320x240/ });
  await t.rejects(run('--out', join(tmp, 'a.yuyv'), '--format', 'rgb24'), UsageError);
  await t.rejects(run('--out', join(tmp, 'x.yuyv'), '--source', 'file:x'), UsageError);
  // The driver answers 1920x1080 YUYV with 640x480: a file named for 1920x1080 would replay as garbage.
  const adjusting: FakeSpec = { ...UVC_WEBCAM, adjustFormat: (fourcc) => ({ fourcc, width: 640, height: 480 }) };
  await t.rejects(
    framesRecord(['--source', 'v4l2:/dev/video0', '--count', '1', '--out', join(tmp, 'b_1920x1080.yuyv')], () => undefined, (p) => new FakeDevice(p, adjusting, [])),
    { message: /driver gave 640x480 YUYV, not the 1920x1080/ },
  );
});

t.test('a camera that comes back in another size after an unplug stops the recording, named', async (t) => {
  const clock = new ManualClock();
  const devices = [
    new FakeDevice('/dev/video0', UVC_WEBCAM, [{ frame: { sequence: 0 } }, { error: 'ENODEV' }], clock),
    new FakeDevice('/dev/video0', { ...UVC_WEBCAM, adjustFormat: (fourcc) => ({ fourcc, width: 320, height: 240 }) }, [{ frame: { sequence: 0 } }], clock),
  ];
  const source = new V4l2Source({ path: '/dev/video0', request: { width: 640, height: 480, formats: ['YUYV'] }, openDevice: () => devices.shift()!, clock });
  const out = join(tmp, 'unplug_640x480.yuyv');
  await t.rejects(recordFrames(source, 3, out), { message: /after a reopen the camera delivers 320x240 YUYV, not the 640x480 YUYV .* stopped after 1 of 3 frames/ });
  await source.close();
  t.equal(statSync(out).size, 640 * 480 * 2, 'the frame before the unplug is kept');
});
