/**
 * An in-memory V4l2Device (the serialport binding-mock pattern): it enumerates what a spec says,
 * applies S_FMT/S_PARM/S_CTRL the way drivers do, and plays a script of dequeue outcomes. Errors
 * have the native shape (code, path, syscall, errno). Plus realistic capability fixtures and a
 * manual clock.
 */
import { V4l2Error } from '../../../../src/runtime/sources/v4l2/errors.js';
import {
  CAP,
  type Fraction,
  type FourCC,
  type V4l2ControlDescription,
  type V4l2DequeuedBuffer,
  type V4l2Device,
  type V4l2DeviceInfo,
  type V4l2FormatDescription,
  type V4l2FrameIntervals,
  type V4l2FrameSizes,
  type V4l2PixFormat,
} from '../../../../src/runtime/sources/v4l2/types.js';
import type { Clock } from '../../../../src/runtime/sources/v4l2/v4l2-source.js';

export interface FakeFormat {
  readonly fourcc: FourCC;
  readonly description: string;
  readonly flags?: number;
  readonly sizes: V4l2FrameSizes;
  /** Intervals for a size (the same for every size when a plain value). */
  readonly intervals: V4l2FrameIntervals | ((width: number, height: number) => V4l2FrameIntervals);
}

export interface FakeSpec {
  readonly info?: Partial<V4l2DeviceInfo>;
  readonly formats: readonly FakeFormat[];
  readonly controls?: readonly V4l2ControlDescription[];
  /** Driver has V4L2_CAP_TIMEPERFRAME (default true). */
  readonly timePerFrame?: boolean;
  /** Extra bytes per line the driver pads rows with. */
  readonly rowPadding?: number;
  /** What S_FMT does with a request (default: accept it). */
  readonly adjustFormat?: (fourcc: FourCC, width: number, height: number) => { fourcc: FourCC; width: number; height: number };
  /** Value the driver keeps for a control (default: the value set). */
  readonly clampControl?: (id: number, value: number) => number;
}

export type DequeueStep =
  | { readonly frame: Partial<V4l2DequeuedBuffer> & { readonly bytes?: number; readonly data?: Uint8Array } }
  | { readonly timeout: true }
  | { readonly error: string; readonly syscall?: string };

export function nativeError(path: string, syscall: string, errno: string, code = 'ERR_V4L2_IOCTL'): V4l2Error {
  return new V4l2Error(code as 'ERR_V4L2_IOCTL', `${syscall} on '${path}' failed (${errno})`, { path, syscall, errno });
}

export class ManualClock implements Clock {
  time = 1_000;
  readonly sleeps: number[] = [];
  now(): number {
    return this.time;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.time += ms;
  }
}

export class FakeDevice implements V4l2Device {
  readonly calls: string[] = [];
  readonly controlValues = new Map<number, number>();
  closed = false;
  streaming = false;
  buffers = 0;
  private format: V4l2PixFormat;
  private interval: Fraction = { numerator: 1, denominator: 30 };
  private nextSequence = 0;

  constructor(
    readonly path: string,
    readonly spec: FakeSpec,
    /** Dequeue outcomes in order; once exhausted every dequeue times out. */
    readonly script: DequeueStep[] = [],
    private readonly clock?: ManualClock,
  ) {
    const first = spec.formats[0];
    const size = first?.sizes.kind === 'discrete' ? first.sizes.sizes[0] : { width: 640, height: 480 };
    this.format = this.pixFormat(first?.fourcc ?? 'YUYV', size.width, size.height);
    for (const c of spec.controls ?? []) this.controlValues.set(c.id, c.defaultValue);
  }

  private pixFormat(fourcc: FourCC, width: number, height: number): V4l2PixFormat {
    const bpp = fourcc === 'YUYV' || fourcc === 'UYVY' ? 2 : fourcc === 'RGB3' ? 3 : 1;
    const compressed = fourcc === 'MJPG' || fourcc === 'H264';
    const bytesPerLine = compressed ? 0 : width * bpp + (this.spec?.rowPadding ?? 0);
    const sizeImage = compressed ? width * height : fourcc === 'NV12' ? (bytesPerLine * height * 3) / 2 : bytesPerLine * height;
    return { width, height, fourcc, bytesPerLine, sizeImage, field: 1, colorspace: 8 };
  }

  private live(what: string): void {
    this.calls.push(what);
    if (this.closed) throw new V4l2Error('ERR_V4L2_STATE', `${what} on '${this.path}': the device has been closed`, { path: this.path });
  }

  /** Bytes of a whole frame in the current format. */
  frameBytes(): number {
    const f = this.format;
    if (f.fourcc === 'MJPG') return 1000;
    return f.fourcc === 'NV12' ? (f.bytesPerLine * f.height * 3) / 2 : f.bytesPerLine * f.height;
  }

  info(): V4l2DeviceInfo {
    this.live('info');
    return {
      path: this.path,
      driver: 'uvcvideo',
      card: 'Fake Camera',
      busInfo: 'usb-0000:00:14.0-1',
      version: 0x060100,
      capabilities: CAP.VIDEO_CAPTURE | CAP.STREAMING | CAP.DEVICE_CAPS,
      deviceCaps: CAP.VIDEO_CAPTURE | CAP.STREAMING,
      ...this.spec.info,
    };
  }
  enumFormats(): V4l2FormatDescription[] {
    this.live('enumFormats');
    return this.spec.formats.map((f) => ({ fourcc: f.fourcc, description: f.description, flags: f.flags ?? 0 }));
  }
  enumFrameSizes(fourcc: FourCC): V4l2FrameSizes {
    this.live('enumFrameSizes');
    return this.spec.formats.find((f) => f.fourcc === fourcc)?.sizes ?? { kind: 'none' };
  }
  enumFrameIntervals(fourcc: FourCC, width: number, height: number): V4l2FrameIntervals {
    this.live('enumFrameIntervals');
    const f = this.spec.formats.find((x) => x.fourcc === fourcc);
    if (!f) return { kind: 'none' };
    return typeof f.intervals === 'function' ? f.intervals(width, height) : f.intervals;
  }
  queryControls(): V4l2ControlDescription[] {
    this.live('queryControls');
    return [...(this.spec.controls ?? [])];
  }
  getFormat(): V4l2PixFormat {
    this.live('getFormat');
    return this.format;
  }
  setFormat(fourcc: FourCC, width: number, height: number): V4l2PixFormat {
    this.live(`setFormat ${fourcc} ${width}x${height}`);
    const a = this.spec.adjustFormat?.(fourcc, width, height) ?? { fourcc, width, height };
    this.format = this.pixFormat(a.fourcc, a.width, a.height);
    return this.format;
  }
  getFrameInterval(): Fraction | null {
    this.live('getFrameInterval');
    return this.spec.timePerFrame === false ? null : this.interval;
  }
  setFrameInterval(numerator: number, denominator: number): Fraction | null {
    this.live(`setFrameInterval ${numerator}/${denominator}`);
    if (this.spec.timePerFrame === false) return null;
    this.interval = { numerator, denominator };
    return this.interval;
  }
  getControl(id: number): number {
    this.live(`getControl ${id}`);
    return this.controlValues.get(id) ?? 0;
  }
  setControl(id: number, value: number): void {
    this.live(`setControl ${id}=${value}`);
    this.controlValues.set(id, this.spec.clampControl?.(id, value) ?? value);
  }
  requestBuffers(count: number): number {
    this.live(`requestBuffers ${count}`);
    this.buffers = count;
    return count;
  }
  releaseBuffers(): void {
    this.live('releaseBuffers');
    this.buffers = 0;
  }
  streamOn(): void {
    this.live('streamOn');
    this.streaming = true;
  }
  streamOff(): void {
    this.live('streamOff');
    this.streaming = false;
  }
  /** Buffers the caller passed to dequeue(), in order. */
  readonly intoBuffers: Buffer[] = [];
  async dequeue(timeoutMs: number, into?: Buffer): Promise<V4l2DequeuedBuffer | null> {
    if (into) this.intoBuffers.push(into);
    this.live('dequeue');
    if (!this.streaming) throw new V4l2Error('ERR_V4L2_STATE', 'not streaming', { path: this.path });
    const step = this.script.shift();
    if (!step || 'timeout' in step) {
      if (this.clock) this.clock.time += timeoutMs;
      return null;
    }
    if ('error' in step) throw nativeError(this.path, step.syscall ?? 'VIDIOC_DQBUF', step.error);
    const f = step.frame;
    const sequence = f.sequence ?? this.nextSequence;
    this.nextSequence = sequence + 1;
    const filled = f.data ?? new Uint8Array(f.bytes ?? this.frameBytes()).fill(sequence & 0xff);
    // As the addon: copied into the caller's buffer (cut at its end), or into a new one.
    let data = filled;
    if (into) {
      const n = Math.min(filled.length, into.length);
      into.set(filled.subarray(0, n));
      data = into.subarray(0, n);
    }
    return {
      index: f.index ?? sequence % Math.max(1, this.buffers),
      bytesUsed: f.bytesUsed ?? filled.length,
      sequence,
      flags: f.flags ?? 0,
      timestampNs: f.timestampNs ?? BigInt(sequence) * 33_333_333n + 5_000_000_000_000n,
      data,
    };
  }
  close(): void {
    this.calls.push('close');
    this.closed = true;
    this.streaming = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Capability fixtures, modelled on real devices.

const fps = (...rates: number[]): V4l2FrameIntervals => ({
  kind: 'discrete',
  intervals: rates.map((r) => ({ numerator: 1, denominator: r })),
});

/**
 * A UVC webcam (C920-like): uncompressed YUYV only at low resolution or low rate (USB 2.0
 * bandwidth), MJPEG at full rate up to 1920x1080.
 */
export const UVC_WEBCAM: FakeSpec = {
  formats: [
    {
      fourcc: 'YUYV',
      description: 'YUYV 4:2:2',
      sizes: { kind: 'discrete', sizes: [{ width: 640, height: 480 }, { width: 320, height: 240 }, { width: 1920, height: 1080 }] },
      intervals: (w) => (w === 1920 ? fps(5) : fps(30, 15)),
    },
    {
      fourcc: 'MJPG',
      description: 'Motion-JPEG',
      flags: 1,
      sizes: { kind: 'discrete', sizes: [{ width: 1920, height: 1080 }, { width: 1280, height: 720 }, { width: 640, height: 480 }] },
      intervals: (w) => (w === 1280 ? fps(60, 30) : fps(30)),
    },
  ],
};

/** A CSI bridge / ISP style node: stepwise sizes and a stepwise interval range. */
export const STEPWISE_BRIDGE: FakeSpec = {
  info: { driver: 'tegra-video', card: 'vi-output, imx219 9-0010', busInfo: 'platform:tegra-capture-vi:0' },
  formats: [
    { fourcc: 'RG10', description: '10-bit Bayer RGRG/GBGB', sizes: { kind: 'discrete', sizes: [{ width: 3280, height: 2464 }] }, intervals: fps(21) },
    {
      fourcc: 'NV12',
      description: 'Y/UV 4:2:0',
      sizes: { kind: 'stepwise', minWidth: 16, maxWidth: 1920, stepWidth: 16, minHeight: 16, maxHeight: 1080, stepHeight: 8 },
      // 1/60 s .. 1 s in steps of 1/60 s: 60, 30, 20, 15, 12, 10 ... fps.
      intervals: { kind: 'stepwise', min: { numerator: 1, denominator: 60 }, max: { numerator: 1, denominator: 1 }, step: { numerator: 1, denominator: 60 } },
    },
  ],
};

/** A radiometric thermal core behind a UVC board (PureThermal-like): 160x120 at 9 fps only. */
export const THERMAL_GREY: FakeSpec = {
  info: { card: 'PureThermal (fw:v1.3.0)' },
  formats: [
    { fourcc: 'UYVY', description: 'UYVY 4:2:2', sizes: { kind: 'discrete', sizes: [{ width: 160, height: 120 }] }, intervals: fps(9) },
    { fourcc: 'Y16', description: '16-bit Greyscale', sizes: { kind: 'discrete', sizes: [{ width: 160, height: 120 }] }, intervals: fps(9) },
    { fourcc: 'GREY', description: '8-bit Greyscale', sizes: { kind: 'discrete', sizes: [{ width: 160, height: 120 }] }, intervals: fps(9) },
  ],
};

/** An H.264-only encoder node and 16-bit depth: nothing the pipeline can take. */
export const NOTHING_USABLE: FakeSpec = {
  formats: [
    { fourcc: 'H264', description: 'H.264', flags: 1, sizes: { kind: 'discrete', sizes: [{ width: 1920, height: 1080 }] }, intervals: fps(30) },
    { fourcc: 'Z16', description: '16-bit Depth', sizes: { kind: 'discrete', sizes: [{ width: 848, height: 480 }] }, intervals: fps(30, 15) },
  ],
};

/** V4L2 control ids (videodev2.h / v4l2-controls.h). */
export const CID = {
  BRIGHTNESS: 0x00980900,
  CONTRAST: 0x00980901,
  AUTO_WHITE_BALANCE: 0x0098090c,
  POWER_LINE_FREQUENCY: 0x00980918,
  WHITE_BALANCE_TEMPERATURE: 0x0098091a,
  EXPOSURE_AUTO: 0x009a0901,
  EXPOSURE_ABSOLUTE: 0x009a0902,
  FOCUS_ABSOLUTE: 0x009a090a,
  PRIVACY: 0x009a0910,
} as const;

const ctrl = (c: Partial<V4l2ControlDescription> & Pick<V4l2ControlDescription, 'id' | 'name' | 'type'>): V4l2ControlDescription => ({
  minimum: 0,
  maximum: 1,
  step: 1,
  defaultValue: 0,
  flags: 0,
  menu: [],
  ...c,
});

/** UVC controls as Linux < 5.16 names them ("Exposure, Auto"). */
export const UVC_CONTROLS: readonly V4l2ControlDescription[] = [
  ctrl({ id: CID.BRIGHTNESS, name: 'Brightness', type: 1, minimum: -64, maximum: 64, step: 1, defaultValue: 0 }),
  ctrl({ id: CID.CONTRAST, name: 'Contrast', type: 1, minimum: 0, maximum: 64, step: 1, defaultValue: 32 }),
  ctrl({ id: CID.AUTO_WHITE_BALANCE, name: 'White Balance Temperature, Auto', type: 2, defaultValue: 1, flags: 0x0008 }),
  ctrl({ id: CID.WHITE_BALANCE_TEMPERATURE, name: 'White Balance Temperature', type: 1, minimum: 2800, maximum: 6500, step: 1, defaultValue: 4600, flags: 0x0010 }),
  ctrl({
    id: CID.POWER_LINE_FREQUENCY,
    name: 'Power Line Frequency',
    type: 3,
    maximum: 2,
    defaultValue: 1,
    menu: [
      { index: 0, name: 'Disabled', value: 0 },
      { index: 1, name: '50 Hz', value: 0 },
      { index: 2, name: '60 Hz', value: 0 },
    ],
  }),
  ctrl({
    id: CID.EXPOSURE_AUTO,
    name: 'Exposure, Auto',
    type: 3,
    maximum: 3,
    defaultValue: 3,
    flags: 0x0008,
    menu: [
      { index: 1, name: 'Manual Mode', value: 0 },
      { index: 3, name: 'Aperture Priority Mode', value: 0 },
    ],
  }),
  ctrl({ id: CID.EXPOSURE_ABSOLUTE, name: 'Exposure (Absolute)', type: 1, minimum: 3, maximum: 2047, step: 1, defaultValue: 250, flags: 0x0010 }),
  ctrl({ id: CID.FOCUS_ABSOLUTE, name: 'Focus (absolute)', type: 1, minimum: 0, maximum: 250, step: 5, defaultValue: 0 }),
  ctrl({ id: CID.PRIVACY, name: 'Privacy', type: 2, flags: 0x0004 }),
];

/** The same camera on Linux >= 5.16 ("Auto Exposure", "White Balance, Automatic"). */
export const UVC_CONTROLS_NEW_NAMES: readonly V4l2ControlDescription[] = UVC_CONTROLS.map((c) =>
  c.id === CID.EXPOSURE_AUTO
    ? { ...c, name: 'Auto Exposure' }
    : c.id === CID.EXPOSURE_ABSOLUTE
      ? { ...c, name: 'Exposure Time, Absolute' }
      : c.id === CID.AUTO_WHITE_BALANCE
        ? { ...c, name: 'White Balance, Automatic' }
        : c,
);

/** A minimal valid JPEG-shaped payload: SOI, filler, EOI, then `padding` zero bytes. */
export function jpegBytes(length = 1000, padding = 0): Uint8Array {
  const b = new Uint8Array(length + padding).fill(0x55);
  b[0] = 0xff;
  b[1] = 0xd8;
  b[length - 2] = 0xff;
  b[length - 1] = 0xd9;
  b.fill(0, length);
  return b;
}
