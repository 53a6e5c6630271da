/**
 * The native V4l2Device (native/binding/v4l2_binding.cc) behind the V4l2Device interface. Each
 * call captures a JS Error first so a native failure is rethrown as a V4l2Error with the caller's
 * stack and the native context (path, syscall, errno).
 */
import { loadNativeBinding } from '../../native/binding.js';
import { V4l2Error, fromNative } from './errors.js';
import type {
  Fraction,
  FourCC,
  V4l2ControlDescription,
  V4l2DequeuedBuffer,
  V4l2Device,
  V4l2DeviceInfo,
  V4l2DeviceOpener,
  V4l2FormatDescription,
  V4l2FrameIntervals,
  V4l2FrameSizes,
  V4l2PixFormat,
} from './types.js';

/** The class the addon exports as `V4l2Device`: the interface itself, constructed from a path. */
export type NativeV4l2DeviceClass = new (path: string) => V4l2Device;

export function nativeV4l2Class(binding: unknown = loadNativeBinding()): NativeV4l2DeviceClass {
  const ctor = (binding as { V4l2Device?: unknown }).V4l2Device;
  if (typeof ctor !== 'function') {
    throw new V4l2Error(
      'ERR_NATIVE',
      'the native addon was built without V4L2 support (no V4l2Device export): rebuild it with native/binding/v4l2_binding.cc (npm run build:native)',
    );
  }
  return ctor as NativeV4l2DeviceClass;
}

class NativeDevice implements V4l2Device {
  constructor(private readonly inner: V4l2Device) {}

  private call<T>(body: () => T): T {
    const site = new Error();
    try {
      return body();
    } catch (err) {
      throw fromNative(err, site);
    }
  }

  info(): V4l2DeviceInfo {
    return this.call(() => this.inner.info());
  }
  enumFormats(): V4l2FormatDescription[] {
    return this.call(() => this.inner.enumFormats());
  }
  enumFrameSizes(fourcc: FourCC): V4l2FrameSizes {
    return this.call(() => this.inner.enumFrameSizes(fourcc));
  }
  enumFrameIntervals(fourcc: FourCC, width: number, height: number): V4l2FrameIntervals {
    return this.call(() => this.inner.enumFrameIntervals(fourcc, width, height));
  }
  queryControls(): V4l2ControlDescription[] {
    return this.call(() => this.inner.queryControls());
  }
  getFormat(): V4l2PixFormat {
    return this.call(() => this.inner.getFormat());
  }
  setFormat(fourcc: FourCC, width: number, height: number): V4l2PixFormat {
    return this.call(() => this.inner.setFormat(fourcc, width, height));
  }
  getFrameInterval(): Fraction | null {
    return this.call(() => this.inner.getFrameInterval());
  }
  setFrameInterval(numerator: number, denominator: number): Fraction | null {
    return this.call(() => this.inner.setFrameInterval(numerator, denominator));
  }
  getControl(id: number): number {
    return this.call(() => this.inner.getControl(id));
  }
  setControl(id: number, value: number): void {
    this.call(() => this.inner.setControl(id, value));
  }
  requestBuffers(count: number): number {
    return this.call(() => this.inner.requestBuffers(count));
  }
  releaseBuffers(): void {
    this.call(() => this.inner.releaseBuffers());
  }
  streamOn(): void {
    this.call(() => this.inner.streamOn());
  }
  streamOff(): void {
    this.call(() => this.inner.streamOff());
  }
  async dequeue(timeoutMs: number, into?: Buffer): Promise<V4l2DequeuedBuffer | null> {
    const site = new Error();
    try {
      return await (into ? this.inner.dequeue(timeoutMs, into) : this.inner.dequeue(timeoutMs));
    } catch (err) {
      throw fromNative(err, site);
    }
  }
  close(): void {
    this.inner.close();
  }
}

/** Wraps any V4l2Device-shaped native object (exported for tests with a stand-in class). */
export function wrapNativeDevice(inner: V4l2Device): V4l2Device {
  return new NativeDevice(inner);
}

/** The default opener for V4l2Source: loads the addon once, opens a node per call. */
export function nativeOpener(ctor?: NativeV4l2DeviceClass): V4l2DeviceOpener {
  let cls = ctor;
  return (path) => {
    cls ??= nativeV4l2Class();
    const Cls = cls;
    const site = new Error();
    try {
      return wrapNativeDevice(new Cls(path));
    } catch (err) {
      throw fromNative(err, site);
    }
  };
}
