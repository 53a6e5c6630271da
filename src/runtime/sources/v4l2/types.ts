/**
 * The V4L2 device contract and the capability model built from it.
 *
 * `V4l2Device` is the one interface between the TypeScript capture logic and a camera: the native
 * addon's `V4l2Device` class (native/binding/v4l2_binding.cc, over native/core/v4l2_device.cc)
 * satisfies it with one method per system call, and tests satisfy it with an in-memory fake. Every
 * decision (which format, which controls, whether a frame is whole, when to reopen) is made in
 * TypeScript over this interface, so it is exercised without a camera.
 */

/** Four-character pixel format code as V4L2 spells it, trailing spaces trimmed: "YUYV", "MJPG". */
export type FourCC = string;

/** A V4L2 frame interval (seconds per frame): 1/30 is 30 fps. */
export interface Fraction {
  readonly numerator: number;
  readonly denominator: number;
}

/** VIDIOC_QUERYCAP. `capabilities`/`deviceCaps` are V4L2_CAP_* bit sets. */
export interface V4l2DeviceInfo {
  readonly path: string;
  readonly driver: string;
  readonly card: string;
  readonly busInfo: string;
  readonly version: number;
  readonly capabilities: number;
  readonly deviceCaps: number;
}

/** VIDIOC_ENUM_FMT entry. `flags`: V4L2_FMT_FLAG_* (COMPRESSED = 1, EMULATED = 2). */
export interface V4l2FormatDescription {
  readonly fourcc: FourCC;
  readonly description: string;
  readonly flags: number;
}

export interface Size {
  readonly width: number;
  readonly height: number;
}

/** VIDIOC_ENUM_FRAMESIZES for one format. `none`: the driver does not enumerate sizes. */
export type V4l2FrameSizes =
  | { readonly kind: 'discrete'; readonly sizes: readonly Size[] }
  | {
      readonly kind: 'stepwise' | 'continuous';
      readonly minWidth: number;
      readonly maxWidth: number;
      readonly stepWidth: number;
      readonly minHeight: number;
      readonly maxHeight: number;
      readonly stepHeight: number;
    }
  | { readonly kind: 'none' };

/** VIDIOC_ENUM_FRAMEINTERVALS for one format and size. `none`: not enumerated by the driver. */
export type V4l2FrameIntervals =
  | { readonly kind: 'discrete'; readonly intervals: readonly Fraction[] }
  | { readonly kind: 'stepwise' | 'continuous'; readonly min: Fraction; readonly max: Fraction; readonly step: Fraction }
  | { readonly kind: 'none' };

/** VIDIOC_QUERYCTRL (+ VIDIOC_QUERYMENU) as the device reports it. */
export interface V4l2ControlDescription {
  readonly id: number;
  /** V4L2_CTRL_TYPE_*: see CONTROL_TYPES. */
  readonly type: number;
  readonly name: string;
  readonly minimum: number;
  readonly maximum: number;
  readonly step: number;
  readonly defaultValue: number;
  /** V4L2_CTRL_FLAG_*: see CONTROL_FLAGS. */
  readonly flags: number;
  /** Menu entries (menu: `name`; integer menu: `value`); may have holes in `index`. */
  readonly menu: readonly { readonly index: number; readonly name: string; readonly value: number }[];
}

/** VIDIOC_G_FMT / S_FMT result (single-planar). */
export interface V4l2PixFormat {
  readonly width: number;
  readonly height: number;
  readonly fourcc: FourCC;
  readonly bytesPerLine: number;
  readonly sizeImage: number;
  readonly field: number;
  readonly colorspace: number;
}

/** One dequeued buffer; `data` is a copy, the driver already has the buffer back. */
export interface V4l2DequeuedBuffer {
  readonly index: number;
  readonly bytesUsed: number;
  readonly sequence: number;
  /** V4L2_BUF_FLAG_*; ERROR (0x40) marks a frame the driver knows is damaged. */
  readonly flags: number;
  /** Driver timestamp (usually CLOCK_MONOTONIC), ns. A bigint: uptime in ns passes 2^53 after 104 days. */
  readonly timestampNs: bigint;
  readonly data: Uint8Array;
}

/**
 * One open capture node. Methods are synchronous except dequeue(), which waits on a worker thread.
 * Failures throw errors shaped like V4l2Error (code, path, syscall, errno).
 */
export interface V4l2Device {
  info(): V4l2DeviceInfo;
  enumFormats(): V4l2FormatDescription[];
  enumFrameSizes(fourcc: FourCC): V4l2FrameSizes;
  enumFrameIntervals(fourcc: FourCC, width: number, height: number): V4l2FrameIntervals;
  queryControls(): V4l2ControlDescription[];
  getFormat(): V4l2PixFormat;
  /** Returns what the driver chose; it may differ from the request. */
  setFormat(fourcc: FourCC, width: number, height: number): V4l2PixFormat;
  /** null: the driver has no frame-rate control (no V4L2_CAP_TIMEPERFRAME). */
  getFrameInterval(): Fraction | null;
  setFrameInterval(numerator: number, denominator: number): Fraction | null;
  getControl(id: number): number;
  setControl(id: number, value: number): void;
  /** REQBUFS + QUERYBUF + mmap + QBUF; returns the number of buffers granted. */
  requestBuffers(count: number): number;
  releaseBuffers(): void;
  streamOn(): void;
  streamOff(): void;
  /**
   * The next filled buffer, or null when none arrived within timeoutMs (or the device was closed).
   * `into`: a Buffer (sizeImage bytes or more, e.g. from a FramePool) the frame is copied into, and
   * `data` is a view of; without it each frame gets a new Buffer. Not touched by the caller until
   * the promise settles.
   */
  dequeue(timeoutMs: number, into?: Buffer): Promise<V4l2DequeuedBuffer | null>;
  /** Idempotent; a dequeue in flight resolves with null. */
  close(): void;
}

/** Opens a device node; the native default is `new binding.V4l2Device(path)`. */
export type V4l2DeviceOpener = (path: string) => V4l2Device;

// ---------------------------------------------------------------------------------------------
// Constants from <linux/videodev2.h> that the logic reads (stable kernel ABI).

export const CAP = {
  VIDEO_CAPTURE: 0x00000001,
  VIDEO_CAPTURE_MPLANE: 0x00001000,
  STREAMING: 0x04000000,
  DEVICE_CAPS: 0x80000000,
} as const;

export const FMT_FLAG = { COMPRESSED: 0x0001, EMULATED: 0x0002 } as const;

export const BUF_FLAG = { ERROR: 0x00000040 } as const;

export const CONTROL_TYPES = {
  1: 'integer',
  2: 'boolean',
  3: 'menu',
  4: 'button',
  5: 'integer64',
  6: 'ctrl_class',
  7: 'string',
  8: 'bitmask',
  9: 'integer_menu',
} as const satisfies Record<number, string>;

export type ControlType = (typeof CONTROL_TYPES)[keyof typeof CONTROL_TYPES] | 'unknown';

export const CONTROL_FLAGS = {
  DISABLED: 0x0001,
  GRABBED: 0x0002,
  READ_ONLY: 0x0004,
  UPDATE: 0x0008,
  INACTIVE: 0x0010,
  WRITE_ONLY: 0x0040,
  VOLATILE: 0x0080,
} as const;

export function controlType(type: number): ControlType {
  return (CONTROL_TYPES as Record<number, ControlType>)[type] ?? 'unknown';
}

// ---------------------------------------------------------------------------------------------
// Capability model: what a device offers, gathered once per open (capabilities.ts).

export type IntervalSpec = V4l2FrameIntervals;

/** A discrete size with its frame intervals. */
export interface DiscreteSizeCapability extends Size {
  readonly kind: 'discrete';
  readonly intervals: IntervalSpec;
}

/**
 * A stepwise/continuous size range. `intervals` were enumerated at the largest size: drivers with
 * size ranges (CSI bridges, ISPs) report one interval range for all sizes, and the driver has the
 * last word anyway (the source reads back the rate it got).
 */
export interface RangeSizeCapability {
  readonly kind: 'stepwise' | 'continuous';
  readonly minWidth: number;
  readonly maxWidth: number;
  readonly stepWidth: number;
  readonly minHeight: number;
  readonly maxHeight: number;
  readonly stepHeight: number;
  readonly intervals: IntervalSpec;
}

export type SizeCapability = DiscreteSizeCapability | RangeSizeCapability;

export interface FormatCapability {
  readonly fourcc: FourCC;
  readonly description: string;
  readonly compressed: boolean;
  readonly emulated: boolean;
  /** Empty when the driver does not enumerate sizes (S_FMT then decides). */
  readonly sizes: readonly SizeCapability[];
}

export type ControlValueType = ControlType;

export interface ControlCapability {
  readonly id: number;
  /** As the driver names it: "Brightness", "Auto Exposure". */
  readonly name: string;
  /** snake_case key, as v4l2-ctl prints it: "brightness", "auto_exposure". */
  readonly key: string;
  readonly type: ControlValueType;
  readonly minimum: number;
  readonly maximum: number;
  readonly step: number;
  readonly defaultValue: number;
  readonly flags: number;
  readonly menu: readonly { readonly index: number; readonly name: string; readonly value: number }[];
}

export interface V4l2Capabilities {
  readonly device: V4l2DeviceInfo;
  readonly formats: readonly FormatCapability[];
  readonly controls: readonly ControlCapability[];
  /** The node can stream video frames (single-planar capture + streaming I/O). */
  readonly canCapture: boolean;
  readonly canStream: boolean;
  /** Multi-planar only (many ARM SoC ISPs): not supported by this capture path yet. */
  readonly multiplanarOnly: boolean;
}
