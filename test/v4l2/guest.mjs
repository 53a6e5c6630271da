// The guest half of `npm run test:v4l2` (scripts/test-v4l2.mjs): runs inside the VM against the
// kernel's vivid driver (/dev/video0), through the project's own compiled V4L2 code (dist/) and the
// native addon (build/Release). Writes <out>/report.json ({ checks: [{ name, ok, detail }], ... })
// and exits non-zero if any check failed. Usage: node --expose-gc test/v4l2/guest.mjs OUT_DIR
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const outDir = process.argv[2];
if (!outDir) throw new Error('usage: guest.mjs OUT_DIR');
const DEVICE = process.env.LVUNET_V4L2_DEVICE ?? '/dev/video0';

const v4l2 = await import(join(root, 'dist', 'src', 'runtime', 'sources', 'v4l2', 'index.js'));
const { V4l2Source, V4l2FrameSource, nativeOpener, probeCapabilities, validateControls, applyControls } = v4l2;
const openDevice = nativeOpener();

const checks = [];
const measurements = {};
let failed = 0;

function record(name, ok, detail) {
  checks.push({ name, ok, detail });
  if (!ok) failed++;
  console.log(`${ok ? 'ok' : 'not ok'} ${checks.length} - ${name}${detail ? ` # ${typeof detail === 'string' ? detail : JSON.stringify(detail)}` : ''}`);
}

/** Runs one check; a throw is a failure with the error's message (and errno context). */
async function check(name, body) {
  try {
    const detail = await body();
    record(name, true, detail);
  } catch (err) {
    const e = err;
    record(name, false, `${e?.message ?? String(e)}${e?.errno ? ` [${e.syscall} ${e.errno}]` : ''}`);
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

// ---------------------------------------------------------------------------------------------
// vivid's colour bars. Test Pattern "100% Colorbar": white, yellow, cyan, green, magenta, red,
// blue, black, each 1/8 of the width. 100% bars are made of 0 and 255 only, which every transfer
// function maps to themselves, so the expected code values depend only on the Y'CbCr matrix and
// the quantization: vivid's webcam input is sRGB (G_FMT colorspace 8), whose defaults are BT.601
// limited range for YUV formats, full range for RGB, and, for GREY, the Rec. 709 luma function at
// full range (v4l2-tpg-core.c: "Rec. 709 Luma function", TGP_COLOR_ENC_LUMA is not Y'CbCr).

const BARS = [
  ['white', 1, 1, 1],
  ['yellow', 1, 1, 0],
  ['cyan', 0, 1, 1],
  ['green', 0, 1, 0],
  ['magenta', 1, 0, 1],
  ['red', 1, 0, 0],
  ['blue', 0, 0, 1],
  ['black', 0, 0, 0],
];
const COLORSPACE_SRGB = 8;

/** Expected code values of one bar in a packed pipeline frame's channels. */
function expectedBar([, r, g, b], format) {
  const y601 = 16 + 65.481 * r + 128.553 * g + 24.966 * b;
  const cb = 128 - 37.797 * r - 74.203 * g + 112 * b;
  const cr = 128 + 112 * r - 93.786 * g - 18.214 * b;
  switch (format) {
    case 'YUYV':
    case 'NV12':
      return { Y: y601, Cb: cb, Cr: cr };
    case 'RGB24':
      return { R: 255 * r, G: 255 * g, B: 255 * b };
    case 'GREY':
      return { Y: 255 * (0.2126 * r + 0.7152 * g + 0.0722 * b) };
    default:
      throw new Error(`no expectation for ${format}`);
  }
}

/** Channel values at (x, y) of a tightly packed pipeline frame. */
function pixel(frame, x, y) {
  const { format, width: w, height: h, data } = frame;
  switch (format) {
    case 'YUYV': {
      const pair = (y * w + (x & ~1)) * 2;
      return { Y: data[(y * w + x) * 2], Cb: data[pair + 1], Cr: data[pair + 3] };
    }
    case 'NV12': {
      const uv = w * h + (y >> 1) * w + (x & ~1);
      return { Y: data[y * w + x], Cb: data[uv], Cr: data[uv + 1] };
    }
    case 'RGB24': {
      const i = (y * w + x) * 3;
      return { R: data[i], G: data[i + 1], B: data[i + 2] };
    }
    case 'GREY':
      return { Y: data[y * w + x] };
    default:
      throw new Error(`no pixel reader for ${format}`);
  }
}

/**
 * Tolerance per channel, in code values. vivid's pattern generator (v4l2-tpg) works in 12-bit
 * fixed point and rounds once to 8 bits (<= 1 code), its Y'CbCr matrix has 16-bit integer
 * coefficients (<= 1 code); 2 codes of slack on top. The closest two bars differ by 18 codes (GREY
 * black/blue), so a bar in the wrong place, a swapped channel, a wrong range or a torn frame fails.
 */
const TOLERANCE = 4;

/**
 * Compares a 16x16 patch in the middle of each bar, in the lower half of the frame (vivid prints its
 * on-screen text in the top rows), with the bar's expected values. Returns the largest deviation.
 */
function checkColourBars(frame, expectedOf = expectedBar) {
  let worst = 0;
  const problems = [];
  for (let bar = 0; bar < BARS.length; bar++) {
    const expected = expectedOf(BARS[bar], frame.format);
    const cx = Math.floor(((bar + 0.5) * frame.width) / BARS.length);
    for (const fy of [0.6, 0.85]) {
      const cy = Math.floor(frame.height * fy);
      for (let dy = -8; dy < 8; dy += 3) {
        for (let dx = -8; dx < 8; dx += 3) {
          const got = pixel(frame, cx + dx, cy + dy);
          for (const [ch, want] of Object.entries(expected)) {
            const diff = Math.abs(got[ch] - want);
            worst = Math.max(worst, diff);
            if (diff > TOLERANCE && problems.length < 4) {
              problems.push(`${BARS[bar][0]} bar at (${cx + dx},${cy + dy}) ${ch}=${got[ch]}, expected ${want.toFixed(1)}`);
            }
          }
        }
      }
    }
  }
  assert(problems.length === 0, `${frame.id}: ${problems.join('; ')} (tolerance ±${TOLERANCE})`);
  return worst;
}

/** Controls that shape the pattern, at their defaults except the pattern itself. */
function patternControls(caps, overrides = {}) {
  const byKey = new Map(caps.controls.map((c) => [c.key, c]));
  const out = { test_pattern: '100% Colorbar' };
  for (const key of ['brightness', 'contrast', 'saturation', 'hue']) if (byKey.has(key)) out[key] = byKey.get(key).defaultValue;
  return { ...out, ...overrides };
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const fdCount = () => readdirSync('/proc/self/fd').length;

// ---------------------------------------------------------------------------------------------

let caps;
await check('vivid capture node: capabilities, formats, sizes, controls', () => {
  const dev = openDevice(DEVICE);
  try {
    caps = probeCapabilities(dev);
  } finally {
    dev.close();
  }
  assert(caps.device.driver === 'vivid', `driver is ${caps.device.driver}, expected vivid`);
  assert(caps.canCapture && caps.canStream, 'not a streaming capture node');
  const fourccs = caps.formats.map((f) => f.fourcc);
  for (const f of ['YUYV', 'NV12', 'RGB3', 'GREY']) assert(fourccs.includes(f), `${f} not offered (offered: ${fourccs.join(' ')})`);
  const yuyv = caps.formats.find((f) => f.fourcc === 'YUYV');
  const sizes = yuyv.sizes.filter((s) => s.kind === 'discrete').map((s) => `${s.width}x${s.height}`);
  for (const s of ['640x480', '1920x1080']) assert(sizes.includes(s), `YUYV size ${s} not offered (${sizes.join(' ')})`);
  for (const k of ['brightness', 'contrast', 'saturation', 'hue', 'test_pattern', 'disconnect']) {
    assert(caps.controls.some((c) => c.key === k), `control ${k} missing (have: ${caps.controls.map((c) => c.key).join(' ')})`);
  }
  measurements.offered = { formats: fourccs, controls: caps.controls.map((c) => c.name) };
  return `${caps.device.card}: ${fourccs.length} formats (MJPG ${fourccs.includes('MJPG') ? '' : 'not '}offered), YUYV sizes ${sizes.join(' ')}, ${caps.controls.length} controls`;
});
if (!caps) {
  writeFileSync(join(outDir, 'report.json'), JSON.stringify({ checks, measurements }, null, 2));
  process.exit(1);
}

// Format negotiation and capture through the pipeline-facing source, content checked per format.
const FRAMES_PER_FORMAT = 3;
measurements.formats = {};
for (const [fourcc, pipelineFormat] of [
  ['YUYV', 'YUYV'],
  ['NV12', 'NV12'],
  ['RGB3', 'RGB24'],
  ['GREY', 'GREY'],
]) {
  for (const [width, height] of [
    [640, 480],
    [1920, 1080],
  ]) {
    await check(`capture ${fourcc} ${width}x${height}: negotiated exactly, ${FRAMES_PER_FORMAT} whole frames, colour bars`, async () => {
      const source = new V4l2FrameSource({ path: DEVICE, request: { width, height, formats: [fourcc] }, controls: patternControls(caps), openDevice });
      try {
        const t0 = performance.now();
        await source.open();
        const opened = source.source.opened;
        const f = opened.format;
        assert(f.fourcc === fourcc && f.width === width && f.height === height, `negotiated ${f.fourcc} ${f.width}x${f.height}`);
        assert(f.colorspace === COLORSPACE_SRGB, `colorspace ${f.colorspace}, the expectations assume sRGB (8)`);
        let worst = 0;
        let lastSequence = -1;
        for (let i = 0; i < FRAMES_PER_FORMAT; i++) {
          const frame = await withTimeout(source.next(), 10000, `${fourcc} frame ${i}`);
          assert(frame, 'source ended');
          assert(frame.format === pipelineFormat && frame.width === width && frame.height === height, `frame is ${frame.format} ${frame.width}x${frame.height}`);
          const bytes = { YUYV: 2, NV12: 1.5, RGB24: 3, GREY: 1 }[pipelineFormat] * width * height;
          assert(frame.data.length === bytes, `frame has ${frame.data.length} bytes, expected ${bytes}`);
          worst = Math.max(worst, checkColourBars(frame));
          const seq = source.source.stats().frames;
          assert(seq > lastSequence, 'frame counter did not advance');
          lastSequence = seq;
        }
        const stats = source.stats();
        const dropped = Object.values(stats.drops).reduce((a, b) => a + b, 0);
        assert(dropped === 0, `drops: ${JSON.stringify(stats.drops)}`);
        const ms = performance.now() - t0;
        measurements.formats[`${fourcc} ${width}x${height}`] = { bytesPerLine: f.bytesPerLine, sizeImage: f.sizeImage, fps: opened.fps, worstDeviation: worst, ms: Math.round(ms) };
        return `bytesperline ${f.bytesPerLine}, sizeimage ${f.sizeImage}, ${opened.fps} fps, worst deviation ${worst.toFixed(1)} codes, ${Math.round(ms)} ms`;
      } finally {
        await source.close();
      }
    });
  }
}

// Controls: read, set through the source's control plan, read back on a second handle, and seen in
// the frames (brightness lifts the black bar's luma).
await check('controls: brightness read, set, read back and visible in the frame', async () => {
  const brightness = caps.controls.find((c) => c.key === 'brightness');
  const probe = openDevice(DEVICE);
  let before;
  try {
    before = probe.getControl(brightness.id);
  } finally {
    probe.close();
  }
  assert(before === brightness.defaultValue, `brightness reads ${before}, the default is ${brightness.defaultValue}`);
  const delta = 40;
  const value = brightness.defaultValue + delta;
  const source = new V4l2FrameSource({ path: DEVICE, request: { width: 640, height: 480, formats: ['YUYV'] }, controls: patternControls(caps, { brightness: value }), openDevice });
  try {
    await source.open();
    const other = openDevice(DEVICE);
    let readBack;
    try {
      readBack = other.getControl(brightness.id);
    } finally {
      other.close();
    }
    assert(readBack === value, `brightness set to ${value} reads back ${readBack}`);
    const frame = await withTimeout(source.next(), 10000, 'frame after brightness');
    // v4l2-tpg adds (brightness - 128) to Y' and clamps it to the limited range (white stays at
    // 235, black rises from 16); the chroma does not change.
    const lifted = checkColourBars(frame, (bar, format) => {
      const e = expectedBar(bar, format);
      return { ...e, Y: Math.min(e.Y + delta, 235) };
    });
    return `brightness ${before} -> ${readBack}; black bar luma ${pixel(frame, Math.floor(frame.width * 15 / 16), Math.floor(frame.height * 0.6)).Y} (was 16), worst deviation ${lifted.toFixed(1)}`;
  } finally {
    await source.close();
    // vivid keeps control values across opens: put it back for the checks that follow.
    const restore = openDevice(DEVICE);
    try {
      restore.setControl(brightness.id, brightness.defaultValue);
    } finally {
      restore.close();
    }
  }
});

await check('controls: out-of-range and unknown values are refused before the driver sees them', () => {
  const errors = [];
  for (const bad of [{ brightness: 100000 }, { no_such_control: 1 }, { test_pattern: 'no such pattern' }]) {
    try {
      validateControls(caps.controls, bad);
      errors.push(`${JSON.stringify(bad)} was accepted`);
    } catch (err) {
      if (err.code !== 'ERR_V4L2_CONTROL') errors.push(`${JSON.stringify(bad)}: ${err.message}`);
    }
  }
  assert(errors.length === 0, errors.join('; '));
});

// Stream off and on, on one open device, twice, with REQBUFS in between once.
await check('stream off and on: frames resume after STREAMOFF/STREAMON and after REQBUFS again', async () => {
  const dev = openDevice(DEVICE);
  const fds = fdCount();
  try {
    const f = dev.setFormat('YUYV', 640, 480);
    assert(f.fourcc === 'YUYV', `S_FMT gave ${f.fourcc}`);
    const got = [];
    const take = async (n, label) => {
      for (let i = 0; i < n; i++) {
        const b = await dev.dequeue(5000);
        assert(b, `${label}: no buffer within 5 s (frame ${i})`);
        assert(b.bytesUsed >= f.bytesPerLine * f.height, `${label}: buffer of ${b.bytesUsed} bytes`);
        got.push(`${label}#${b.sequence}`);
      }
    };
    dev.requestBuffers(4);
    dev.streamOn();
    await take(3, 'first');
    dev.streamOff();
    let refused;
    try {
      await dev.dequeue(100);
    } catch (err) {
      refused = err;
    }
    assert(refused?.code === 'ERR_V4L2_STATE', `dequeue after STREAMOFF: ${refused ? refused.message : 'no error'}`);
    dev.streamOn();
    await take(3, 'after-streamon');
    dev.streamOff();
    dev.releaseBuffers();
    dev.requestBuffers(3);
    dev.streamOn();
    await take(3, 'after-reqbufs');
    dev.streamOff();
    dev.releaseBuffers();
    return got.join(' ');
  } finally {
    dev.close();
    assert(fdCount() <= fds, `fds ${fds} -> ${fdCount()} after close`);
  }
});

// The device going away: vivid's "Disconnect" control unregisters the node as a USB unplug would
// (every call on an open handle fails with ENODEV); it comes back when its last handle is closed.
/**
 * Streams 3 frames, sets `controls` on a second handle (the fault), then streams 3 more: the
 * source must lose the device once, reopen it once, and deliver frames of generation 2.
 */
async function faultAndReopen(controls, expectErrno) {
  const events = [];
  const source = new V4l2Source({
    path: DEVICE,
    request: { width: 640, height: 480, formats: ['YUYV'] },
    controls: patternControls(caps),
    openDevice,
    backoff: { initialMs: 100, maxMs: 1000 },
    onEvent: (e) => events.push(e),
  });
  try {
    await source.open();
    for (let i = 0; i < 3; i++) assert(await withTimeout(source.next(), 10000, 'frame before the fault'), 'source ended');
    const handle = openDevice(DEVICE);
    try {
      applyControls(handle, validateControls(caps.controls, controls), caps.controls);
    } finally {
      handle.close();
    }
    let after;
    for (let i = 0; i < 3; i++) {
      after = await withTimeout(source.next(), 20000, 'frame after the fault');
      assert(after, 'source ended');
    }
    const stats = source.stats();
    const lost = events.filter((e) => e.type === 'lost');
    const reopened = events.filter((e) => e.type === 'reopened');
    assert(stats.lost === 1 && lost.length === 1, `lost ${stats.lost} (events ${lost.length}), expected 1`);
    assert(lost[0].error.errno === expectErrno, `lost with ${lost[0].error.syscall} ${lost[0].error.errno ?? lost[0].error.message}, expected ${expectErrno}`);
    assert(stats.reopens === 1 && reopened.length === 1, `reopens ${stats.reopens}, expected 1`);
    assert(after.generation === 2, `frames after the reopen have generation ${after.generation}, expected 2`);
    return { after, stats, lost: lost[0], reopened: reopened[0] };
  } finally {
    await source.close();
  }
}

await check('disconnect: vivid "Disconnect" -> lost (ENODEV) -> reopened, counted, frames resume', async () => {
  const { after, stats, lost, reopened } = await faultAndReopen({ disconnect: true }, 'ENODEV');
  checkColourBars({ ...after, format: 'YUYV', data: after.data.subarray(0, 640 * 480 * 2) });
  measurements.disconnect = { downtimeMs: Math.round(reopened.downtimeMs), reopenFailures: stats.reopenFailures, lostWith: `${lost.error.syscall} ${lost.error.errno}` };
  return `lost on ${lost.error.syscall} ${lost.error.errno}, reopened after ${reopened.attempts} attempt(s), ${Math.round(reopened.downtimeMs)} ms down, generation ${after.generation}`;
});

// A fatal streaming error (vivid's "Inject Fatal Streaming Error": vb2_queue_error, as a UVC
// transfer failure would leave the queue): DQBUF fails with EIO until the queue is torn down.
await check('fatal streaming error: EIO -> lost -> reopened, frames resume', async () => {
  const inject = caps.controls.find((c) => /fatal streaming error/i.test(c.name));
  assert(inject, 'vivid has no "Inject Fatal Streaming Error" control');
  const { after, lost } = await faultAndReopen({ [inject.key]: true }, 'EIO');
  return `lost on ${lost.error.syscall} ${lost.error.errno}, reopened, generation ${after.generation}`;
});

// Frames the driver drops (vivid's "Percentage of Dropped Buffers") show as gaps in the real
// sequence numbers; the counters must account for every one of them exactly.
await check('driver-dropped frames: sequence gaps counted exactly (50% dropped by vivid)', async () => {
  const perc = caps.controls.find((c) => /percentage of dropped buffers/i.test(c.name));
  assert(perc, 'vivid has no "Percentage of Dropped Buffers" control');
  const gaps = [];
  const source = new V4l2Source({
    path: DEVICE,
    request: { width: 640, height: 480, formats: ['YUYV'] },
    controls: { ...patternControls(caps), [perc.key]: 50 },
    openDevice,
    onEvent: (e) => e.type === 'gap' && gaps.push(e),
  });
  const frames = [];
  try {
    await source.open();
    for (let i = 0; i < 40; i++) {
      const f = await withTimeout(source.next(), 10000, `frame ${i}`);
      assert(f, 'source ended');
      frames.push(f.sequence);
    }
  } finally {
    await source.close();
    const reset = openDevice(DEVICE);
    try {
      reset.setControl(perc.id, 0);
    } finally {
      reset.close();
    }
  }
  const stats = source.stats();
  const span = frames.at(-1) - frames[0] + 1;
  // Every sequence number between the first and last frame was either delivered or counted dropped.
  assert(span === frames.length + stats.driverDropped, `sequence span ${span} != ${frames.length} delivered + ${stats.driverDropped} counted dropped`);
  assert(stats.gaps === gaps.length && gaps.reduce((a, g) => a + g.missing, 0) === stats.driverDropped, 'gap events and counters disagree');
  const share = stats.driverDropped / span;
  // 50% dropped by the driver (binomial, n ~ 80: 0.3 is 4 sd below) plus what a slow guest misses.
  assert(share >= 0.3 && share <= 0.85, `dropped share ${share.toFixed(2)} is not what 50% dropping gives`);
  measurements.driverDrops = { delivered: frames.length, counted: stats.driverDropped, gaps: stats.gaps, share: +share.toFixed(2) };
  return `${frames.length} delivered, ${stats.driverDropped} dropped in ${stats.gaps} gaps over sequence ${frames[0]}..${frames.at(-1)} (share ${share.toFixed(2)})`;
});

// 300+ frames streamed without a leak: RSS, external (Buffer) memory and open fds before and
// after, plus open/close cycles. One leaked 640x480 YUYV frame per frame would be 180 MiB.
const LEAK_FRAMES = 300;
await check(`leak: ${LEAK_FRAMES} frames streamed and 10 open/close cycles without growth`, async () => {
  // Buffers are freed by GC; a second pass after a turn of the event loop lets finalizers run.
  const snapshot = async () => {
    globalThis.gc?.();
    await new Promise((resolve) => setImmediate(resolve));
    globalThis.gc?.();
    const m = process.memoryUsage();
    return { rss: m.rss, external: m.external + m.arrayBuffers, fds: fdCount() };
  };
  const source = new V4l2FrameSource({ path: DEVICE, request: { width: 640, height: 480, formats: ['YUYV'] }, controls: patternControls(caps), openDevice });
  let frames = 0;
  let streamMs = 0;
  let before;
  try {
    await source.open();
    // Frames are given back once used, as the pipeline does when a frame's native job settles: the
    // source then reuses its few pooled buffers instead of allocating a frame-size block per frame.
    for (let i = 0; i < 30; i++) {
      const frame = await withTimeout(source.next(), 10000, 'warm-up frame'); // JIT and allocator warm-up
      assert(frame, 'source ended');
      source.recycle(frame.data);
    }
    before = await snapshot();
    const t0 = performance.now();
    for (; frames < LEAK_FRAMES; frames++) {
      const frame = await withTimeout(source.next(), 10000, `frame ${frames}`);
      assert(frame, 'source ended');
      assert(frame.data.length === 640 * 480 * 2, `frame ${frames} has ${frame.data.length} bytes`);
      source.recycle(frame.data);
    }
    streamMs = performance.now() - t0;
    const stats = source.stats();
    measurements.stream = { frames, seconds: +(streamMs / 1000).toFixed(2), fps: +((frames * 1000) / streamMs).toFixed(1), driverDropped: stats.driverDropped, drops: stats.drops };
  } finally {
    await source.close();
  }
  const afterStream = await snapshot();
  for (let i = 0; i < 10; i++) {
    const s = new V4l2FrameSource({ path: DEVICE, request: { width: 640, height: 480, formats: ['YUYV'] }, openDevice });
    try {
      await s.open();
      assert(await withTimeout(s.next(), 10000, `cycle ${i} frame`), 'source ended');
    } finally {
      await s.close();
    }
  }
  const after = await snapshot();
  const mib = (n) => +(n / 1048576).toFixed(1);
  measurements.leak = {
    before: { rssMiB: mib(before.rss), externalMiB: mib(before.external), fds: before.fds },
    afterStream: { rssMiB: mib(afterStream.rss), externalMiB: mib(afterStream.external), fds: afterStream.fds },
    afterCycles: { rssMiB: mib(after.rss), externalMiB: mib(after.external), fds: after.fds },
    gcExposed: typeof globalThis.gc === 'function',
  };
  // The stream's own fd, eventfd and mappings are gone after close: fewer or equal fds than before.
  assert(after.fds <= before.fds, `open fds ${before.fds} -> ${after.fds}`);
  assert(after.external - before.external < 8 * 1048576, `external memory grew by ${mib(after.external - before.external)} MiB`);
  assert(after.rss - before.rss < 24 * 1048576, `RSS grew by ${mib(after.rss - before.rss)} MiB`);
  return `${frames} frames in ${(streamMs / 1000).toFixed(1)} s (${measurements.stream.fps} fps); RSS ${mib(before.rss)} -> ${mib(after.rss)} MiB, external ${mib(before.external)} -> ${mib(after.external)} MiB, fds ${before.fds} -> ${after.fds}`;
});

// `lvunet-edge frames record` in the guest; the host runs the model on these files.
const RECORDINGS = [
  { file: 'vivid_640x480.yuyv', count: 12 },
  { file: 'vivid_1920x1080.nv12', count: 6 },
];
measurements.recordings = [];
for (const { file, count } of RECORDINGS) {
  await check(`frames record --source v4l2:${DEVICE} --count ${count} --out ${file}`, () => {
    const out = join(outDir, file);
    const t0 = performance.now();
    const r = spawnSync(
      process.execPath,
      [join(root, 'dist', 'src', 'cli', 'main.js'), 'frames', 'record', '--source', `v4l2:${DEVICE}`, '--count', String(count), '--out', out, '--control', 'test_pattern=100% Colorbar'],
      { encoding: 'utf8', timeout: 120000 },
    );
    const ms = Math.round(performance.now() - t0);
    if (r.status !== 0) console.log(`${r.stdout}${r.stderr}`);
    assert(r.status === 0, `exit ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n').slice(0, 3).join(' | ')}`);
    const [, w, h] = /(\d+)x(\d+)/.exec(file);
    const per = file.endsWith('.yuyv') ? 2 : 1.5;
    const size = statSync(out).size;
    assert(size === count * per * Number(w) * Number(h), `${file} has ${size} bytes, expected ${count} frames of ${per * w * h}`);
    measurements.recordings.push({ file, frames: count, bytes: size, ms });
    return `${`${r.stderr}${r.stdout}`.trim().split('\n').pop()} (${ms} ms including node start)`;
  });
}

const report = { device: DEVICE, kernel: readFileSync('/proc/version', 'utf8').trim(), node: process.version, checks, measurements, failed };
writeFileSync(join(outDir, 'report.json'), JSON.stringify(report, null, 2));
console.log(`1..${checks.length}`);
console.log(failed === 0 ? `# all ${checks.length} checks passed` : `# ${failed} of ${checks.length} checks FAILED`);
process.exit(failed === 0 ? 0 : 1);
