import t from 'tap';

import { probeCapabilities } from '../../../../src/runtime/sources/v4l2/capabilities.js';
import { NegotiationError, chooseRate, describeOffers, negotiate } from '../../../../src/runtime/sources/v4l2/negotiate.js';
import type { V4l2Capabilities } from '../../../../src/runtime/sources/v4l2/types.js';
import { FakeDevice, NOTHING_USABLE, STEPWISE_BRIDGE, THERMAL_GREY, UVC_WEBCAM, type FakeSpec } from './fake-device.js';

function caps(spec: FakeSpec): V4l2Capabilities {
  return probeCapabilities(new FakeDevice('/dev/video0', spec));
}

t.test('probeCapabilities reads formats, sizes, intervals and flags', async (t) => {
  const c = caps(UVC_WEBCAM);
  t.same(
    c.formats.map((f) => [f.fourcc, f.compressed, f.sizes.length]),
    [
      ['YUYV', false, 3],
      ['MJPG', true, 3],
    ],
  );
  const yuyv1080 = c.formats[0].sizes.find((s) => s.kind === 'discrete' && s.width === 1920);
  t.same(yuyv1080?.intervals, { kind: 'discrete', intervals: [{ numerator: 1, denominator: 5 }] });
  t.ok(c.canCapture && c.canStream && !c.multiplanarOnly);
  t.same(describeOffers(c.formats), [
    'YUYV "YUYV 4:2:2": 640x480 @ 30/15 fps, 320x240 @ 30/15 fps, 1920x1080 @ 5 fps',
    'MJPG "Motion-JPEG": 1920x1080 @ 30 fps, 1280x720 @ 60/30 fps, 640x480 @ 30 fps',
  ]);
});

t.test('UVC webcam: YUYV 640x480@30 + MJPEG 1920x1080@30', async (t) => {
  const c = caps(UVC_WEBCAM);

  t.test('exact size and rate in the preferred format', async (t) => {
    const n = negotiate(c, { width: 640, height: 480, fps: 30 });
    t.match(n, { fourcc: 'YUYV', width: 640, height: 480, fps: 30, exactSize: true, exactFps: true });
    t.same(n.interval, { numerator: 1, denominator: 30 });
    t.same(n.warnings, []);
    t.match(n.reasons[0], /YUYV 640x480 @ 30 fps: exact size, exact rate, format preference 1 of 4/);
  });

  t.test('an exact rate in a less preferred format beats YUYV at 5 fps', async (t) => {
    const n = negotiate(c, { width: 1920, height: 1080, fps: 30 });
    t.match(n, { fourcc: 'MJPG', width: 1920, height: 1080, fps: 30, exactSize: true, exactFps: true });
    t.match(n.reasons.join('\n'), /preferred YUYV not chosen/);
    t.same(n.warnings, []);
  });

  t.test('YUYV wins when its rate is the one asked for', async (t) => {
    t.match(negotiate(c, { width: 1920, height: 1080, fps: 5 }), { fourcc: 'YUYV', fps: 5, exactFps: true });
  });

  t.test('no size match: closest by area (log ratio), with a warning', async (t) => {
    const n = negotiate(c, { width: 800, height: 600, fps: 30 });
    t.match(n, { fourcc: 'YUYV', width: 640, height: 480, exactSize: false, exactFps: true });
    t.match(n.warnings.join('\n'), /requested 800x600 is not offered; using 640x480 YUYV/);
  });

  t.test('closest size then aspect: 1280x720 is offered only as MJPEG', async (t) => {
    t.match(negotiate(c, { width: 1280, height: 720, fps: 30 }), { fourcc: 'MJPG', width: 1280, height: 720, exactSize: true });
    // 1024x576 (16:9): 1280x720 is nearer in area than 640x480 and has the same aspect.
    const n = negotiate(c, { width: 1024, height: 576 });
    t.match(n, { fourcc: 'MJPG', width: 1280, height: 720, fps: 60 });
  });

  t.test('nearest rate when the exact one is not offered', async (t) => {
    const n = negotiate(c, { width: 640, height: 480, fps: 60 });
    t.match(n, { fourcc: 'YUYV', width: 640, height: 480, fps: 30, exactFps: false });
    t.match(n.warnings.join('\n'), /requested 60 fps is not offered for YUYV 640x480 \(30\/15 fps\); using 30 fps/);
  });

  t.test('no fps requested: highest rate', async (t) => {
    t.match(negotiate(c, { width: 640, height: 480 }), { fourcc: 'YUYV', fps: 30, exactFps: true });
  });

  t.test('format preference and aliases', async (t) => {
    t.match(negotiate(c, { width: 640, height: 480, fps: 30, formats: ['MJPEG'] }), { fourcc: 'MJPG' });
    t.match(negotiate(c, { width: 640, height: 480, fps: 30, formats: ['mjpg', 'yuy2'] }), { fourcc: 'MJPG' });
  });
});

t.test('stepwise device: sizes snapped to the step, rates to the interval step', async (t) => {
  const c = caps(STEPWISE_BRIDGE);

  t.test('in-range exact size', async (t) => {
    const n = negotiate(c, { width: 1280, height: 720, fps: 30 });
    t.match(n, { fourcc: 'NV12', width: 1280, height: 720, fps: 30, exactSize: true, exactFps: true });
    t.same(n.interval, { numerator: 1, denominator: 30 });
  });

  t.test('off-step size is snapped and reported', async (t) => {
    const n = negotiate(c, { width: 1000, height: 700, fps: 30 });
    t.match(n, { width: 1008, height: 704, exactSize: false });
    t.match(n.warnings.join('\n'), /requested 1000x700 snapped to the device's 16x8 step: 1008x704/);
  });

  t.test('too large is clamped to the maximum', async (t) => {
    const n = negotiate(c, { width: 4000, height: 3000 });
    t.match(n, { width: 1920, height: 1080, fps: 60 });
    t.match(n.warnings.join('\n'), /not offered; using 1920x1080 NV12/);
    t.match(n.warnings.join('\n'), /aspect ratio 1\.778 differs from the requested 1\.333/);
  });

  t.test('a rate between steps snaps to the nearest interval', async (t) => {
    const n = negotiate(c, { width: 640, height: 480, fps: 25 });
    // 1/25 s lies between 1/60 + 1/60 (30 fps) and 1/60 + 2/60 (20 fps); 1/30 is nearer.
    t.match(n, { fps: 30, exactFps: false });
    t.same(n.interval, { numerator: 1, denominator: 30 });
  });

  t.test('chooseRate clamps outside the range', async (t) => {
    const spec = { kind: 'stepwise', min: { numerator: 1, denominator: 60 }, max: { numerator: 1, denominator: 1 }, step: { numerator: 1, denominator: 60 } } as const;
    t.match(chooseRate(spec, 120), { fps: 60, exact: false });
    t.match(chooseRate(spec, 0.5), { fps: 1, exact: false });
    t.match(chooseRate({ kind: 'continuous', min: spec.min, max: spec.max, step: { numerator: 1, denominator: 1 } }, 29.97), {
      interval: { numerator: 100, denominator: 2997 },
      exact: true,
    });
    t.match(chooseRate({ kind: 'discrete', intervals: [{ numerator: 1001, denominator: 30000 }] }, 30), { exact: true });
  });
});

t.test('GREY-only thermal camera: the one usable format, with size and rate warnings', async (t) => {
  const n = negotiate(caps(THERMAL_GREY), { width: 256, height: 256, fps: 30 });
  t.match(n, { fourcc: 'GREY', width: 160, height: 120, fps: 9, exactSize: false, exactFps: false });
  t.equal(n.warnings.length, 3, n.warnings.join('\n'));
  t.match(n.warnings.join('\n'), /requested 30 fps is not offered for GREY 160x120 \(9 fps\); using 9 fps/);
});

t.test('nothing usable: the error lists what the device offers', async (t) => {
  const c = caps(NOTHING_USABLE);
  const err = t.throws(() => negotiate(c, { width: 640, height: 480 })) as NegotiationError;
  t.type(err, NegotiationError);
  t.equal(err.code, 'ERR_V4L2_NEGOTIATION');
  t.equal(err.path, '/dev/video0');
  t.match(err.message, /^\/dev\/video0: no usable pixel format\. Accepted, most preferred first: YUYV, NV12, MJPG, GREY\./);
  t.match(err.message, /H264 "H\.264": 1920x1080 @ 30 fps/);
  t.match(err.message, /Z16 "16-bit Depth": 848x480 @ 30\/15 fps/);
  t.equal(err.offers.length, 2);

  const empty = t.throws(() => negotiate({ formats: [] }, { width: 640, height: 480 })) as NegotiationError;
  t.match(empty.message, /enumerates no capture formats/);

  // A format filter that excludes everything the device has.
  t.throws(() => negotiate(caps(UVC_WEBCAM), { width: 640, height: 480, formats: ['GREY'] }), { code: 'ERR_V4L2_NEGOTIATION' });
});

t.test('a driver that does not enumerate sizes: ask for the request, let S_FMT decide', async (t) => {
  const n = negotiate(
    { formats: [{ fourcc: 'YUYV', description: 'YUYV', compressed: false, emulated: false, sizes: [] }] },
    { width: 720, height: 576, fps: 25 },
  );
  t.match(n, { fourcc: 'YUYV', width: 720, height: 576, exactFps: false });
  t.same(n.interval, { numerator: 1, denominator: 25 });
  t.match(n.warnings.join('\n'), /does not enumerate YUYV sizes/);
});

t.test('invalid requests are rejected before looking at the device', async (t) => {
  const c = caps(UVC_WEBCAM);
  t.throws(() => negotiate(c, { width: 0, height: 480 }), { code: 'ERR_INVALID_ARGUMENT', message: /width must be a positive integer, got 0/ });
  t.throws(() => negotiate(c, { width: 640, height: 480.5 }), { message: /height must be a positive integer/ });
  t.throws(() => negotiate(c, { width: 640, height: 480, fps: -1 }), { message: /fps must be a positive number/ });
  t.throws(() => negotiate(c, { width: 640, height: 480, formats: [] }), { message: /at least one pixel format/ });
});
