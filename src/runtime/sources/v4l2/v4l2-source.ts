/**
 * A camera frame source over a V4l2Device: open → negotiate → apply controls → stream, then
 * `next()` frame by frame. It keeps a cart's camera running without a person nearby:
 *
 * - a frame the driver dropped shows as a gap in buffer sequence numbers and is counted;
 * - a buffer that is not a whole frame (short raw frame, MJPEG without SOI/EOI, driver error flag)
 *   is dropped with a reason (`onDrop`), never passed on;
 * - no buffer for `stallTimeoutMs` (a UVC camera that stops streaming but stays enumerated) closes
 *   and reopens the device;
 * - an unplug (ENODEV/EIO/... from the driver) closes the device and reopens it with exponential
 *   backoff until the camera is back, re-negotiating, since the camera plugged back in may be
 *   another model.
 *
 * Timers are injectable (`clock`), so all of this is tested without a camera or real waiting.
 */
import { FramePool } from '../frame-pool.js';
import type { DroppedFrame } from '../types.js';
import { applyControls, validateControls, type ControlValue } from './controls.js';
import { probeCapabilities } from './capabilities.js';
import { V4l2Error, isDeviceLost } from './errors.js';
import { checkFrame, type DropReason } from './frame-check.js';
import { fpsOf, negotiate, normalizeFourcc, DEFAULT_FORMAT_PREFERENCE, NegotiationError, type CaptureRequest, type Negotiation } from './negotiate.js';
import type { FourCC, V4l2Device, V4l2DeviceOpener, V4l2PixFormat } from './types.js';

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface BackoffOptions {
  /** First wait before reopening (default 250 ms: udev needs a moment to recreate the node). */
  readonly initialMs?: number;
  /** Longest wait between attempts (default 5000 ms). */
  readonly maxMs?: number;
  readonly factor?: number;
  /** Attempts per outage before next() fails with ERR_V4L2_REOPEN (default: unlimited). */
  readonly maxAttempts?: number;
}

export interface V4l2SourceOptions {
  readonly path: string;
  readonly request: CaptureRequest;
  readonly controls?: Readonly<Record<string, ControlValue>>;
  /** How to open a node; the native addon by default (see native-device.ts). */
  readonly openDevice: V4l2DeviceOpener;
  /** mmap buffers to ask for (default 4: one being filled, one being read, slack for jitter). */
  readonly bufferCount?: number;
  /** No buffer for this long means the camera stalled (default 3000 ms). */
  readonly stallTimeoutMs?: number;
  /** Longest single wait in the native poll, so close() and stall checks stay prompt (default 500 ms). */
  readonly pollMs?: number;
  readonly backoff?: BackoffOptions;
  readonly clock?: Clock;
  readonly onDrop?: (drop: DroppedFrame) => void;
  readonly onEvent?: (event: V4l2SourceEvent) => void;
}

export interface V4l2Frame {
  /** Position in the stream this source delivered, from 0, across reopens. */
  readonly seq: number;
  /** `v4l2:/dev/video0#seq`. */
  readonly id: string;
  readonly format: FourCC;
  readonly width: number;
  readonly height: number;
  /** Row stride of the first plane (may exceed width × bytes per pixel); 0 for MJPEG. */
  readonly bytesPerLine: number;
  /** Exactly one frame: stride × height (+ chroma) bytes, or one whole JPEG. */
  readonly data: Uint8Array;
  /** Driver timestamp (CLOCK_MONOTONIC on UVC and most SoC drivers). */
  readonly timestampNs: bigint;
  /** Driver buffer sequence number; restarts at each reopen (see `generation`). */
  readonly sequence: number;
  /** Incremented on every (re)open. */
  readonly generation: number;
  /** Wall-clock time the buffer was dequeued, ms since the epoch. */
  readonly captureTimeMs: number;
}

export interface V4l2Opened {
  readonly generation: number;
  readonly negotiation: Negotiation;
  readonly format: V4l2PixFormat;
  /** The rate the driver reports after S_PARM; null when it has no rate control. */
  readonly fps: number | null;
  readonly bufferCount: number;
  readonly card: string;
  readonly warnings: readonly string[];
}

export type V4l2SourceEvent =
  | { readonly type: 'opened'; readonly opened: V4l2Opened }
  | { readonly type: 'drop'; readonly drop: DroppedFrame }
  | { readonly type: 'gap'; readonly missing: number; readonly afterSequence: number; readonly sequence: number }
  | { readonly type: 'stall'; readonly silentMs: number }
  | { readonly type: 'lost'; readonly error: V4l2Error | Error }
  | { readonly type: 'reopen-failed'; readonly attempt: number; readonly error: Error; readonly retryInMs: number }
  | { readonly type: 'reopened'; readonly attempts: number; readonly downtimeMs: number };

export interface V4l2SourceStats {
  readonly frames: number;
  readonly drops: Readonly<Record<DropReason, number>>;
  /** Frames the driver dropped before we saw them (sum of sequence gaps). */
  readonly driverDropped: number;
  readonly gaps: number;
  readonly stalls: number;
  readonly lost: number;
  readonly reopens: number;
  readonly reopenFailures: number;
}

type MutableStats = { -readonly [K in keyof V4l2SourceStats]: V4l2SourceStats[K] } & { drops: Record<DropReason, number> };

export class V4l2Source {
  readonly description: string;
  private readonly clock: Clock;
  private readonly stallTimeoutMs: number;
  private readonly pollMs: number;
  private readonly bufferCount: number;
  private readonly accepted: readonly FourCC[];
  private device?: V4l2Device;
  private current?: V4l2Opened;
  private closed = false;
  private generation = 0;
  private seq = 0;
  private lastSequence?: number;
  private lastProgressAt = 0;
  /** Buffers frames are copied into (sizeImage bytes), given back by recycle(): none allocated per frame. */
  private pool?: FramePool;
  private readonly counters: MutableStats = {
    frames: 0,
    drops: { corrupt: 0, truncated: 0, empty: 0, decode: 0, driver: 0, refused: 0 },
    driverDropped: 0,
    gaps: 0,
    stalls: 0,
    lost: 0,
    reopens: 0,
    reopenFailures: 0,
  };

  constructor(private readonly options: V4l2SourceOptions) {
    this.description = `v4l2:${options.path}`;
    this.clock = options.clock ?? systemClock;
    this.stallTimeoutMs = positive(options.stallTimeoutMs, 3000, 'stallTimeoutMs');
    this.pollMs = positive(options.pollMs, 500, 'pollMs');
    this.bufferCount = positive(options.bufferCount, 4, 'bufferCount');
    this.accepted = (options.request.formats ?? DEFAULT_FORMAT_PREFERENCE).map(normalizeFourcc);
  }

  /** What the last (re)open chose; undefined before open(). */
  get opened(): V4l2Opened | undefined {
    return this.current;
  }

  stats(): V4l2SourceStats {
    return { ...this.counters, drops: { ...this.counters.drops } };
  }

  /**
   * Opens and starts streaming. Fails at once (no retry) so a wrong path, a node that is not a
   * camera, an unusable format or a bad control value is reported to whoever configured it.
   */
  async open(): Promise<V4l2Opened> {
    if (this.closed) throw this.closedError();
    if (this.device && this.current) return this.current;
    return this.openOnce();
  }

  /** The next whole frame; null once close() was called. */
  async next(): Promise<V4l2Frame | null> {
    // Only the first open fails fast; after that a missing device is recovered below.
    if (!this.current && !this.closed) await this.open();
    for (;;) {
      if (this.closed) return null;
      const device = this.device;
      if (!device) {
        await this.recover();
        continue;
      }
      const silentMs = this.clock.now() - this.lastProgressAt;
      if (silentMs >= this.stallTimeoutMs) {
        this.counters.stalls++;
        this.emit({ type: 'stall', silentMs });
        this.shutDevice();
        await this.recover();
        continue;
      }
      const sizeImage = this.current!.format.sizeImage;
      if (this.pool?.byteLength !== sizeImage) this.pool = sizeImage > 0 ? new FramePool(sizeImage) : undefined;
      const into = this.pool?.take() as Buffer | undefined;
      let buffer;
      try {
        buffer = await device.dequeue(Math.max(1, Math.min(this.pollMs, this.stallTimeoutMs - silentMs)), into);
      } catch (err) {
        if (into) this.recycle(into);
        if (this.closed) return null;
        if (!isDeviceLost(err)) throw err;
        this.counters.lost++;
        this.emit({ type: 'lost', error: err as Error });
        this.shutDevice();
        await this.recover();
        continue;
      }
      if (!buffer || this.closed) {
        if (into) this.recycle(into);
        continue;
      }
      this.lastProgressAt = this.clock.now();

      if (this.lastSequence !== undefined && buffer.sequence > this.lastSequence + 1) {
        const missing = buffer.sequence - this.lastSequence - 1;
        this.counters.gaps++;
        this.counters.driverDropped += missing;
        this.emit({ type: 'gap', missing, afterSequence: this.lastSequence, sequence: buffer.sequence });
      }
      this.lastSequence = buffer.sequence;

      const format = this.current!.format;
      const seq = this.seq++;
      const id = `${this.description}#${seq}`;
      const check = checkFrame(format, buffer);
      if (!check.ok) {
        if (into) this.recycle(into);
        this.counters.drops[check.reason]++;
        const drop: DroppedFrame = { seq, id, reason: check.reason, detail: `sequence ${buffer.sequence}: ${check.detail}` };
        this.options.onDrop?.(drop);
        this.emit({ type: 'drop', drop });
        continue;
      }
      this.counters.frames++;
      return {
        seq,
        id,
        format: format.fourcc,
        width: format.width,
        height: format.height,
        bytesPerLine: format.bytesPerLine,
        data: check.data,
        timestampNs: buffer.timestampNs,
        sequence: buffer.sequence,
        generation: this.generation,
        captureTimeMs: Date.now(),
      };
    }
  }

  /** Takes back a frame's data (or any view of it) once the consumer is done with it, for a later frame. */
  recycle(data: Uint8Array): void {
    this.pool?.give(data);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.shutDevice();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<V4l2Frame> {
    for (;;) {
      const frame = await this.next();
      if (!frame) return;
      yield frame;
    }
  }

  // -------------------------------------------------------------------------------------------

  private emit(event: V4l2SourceEvent): void {
    this.options.onEvent?.(event);
  }

  private closedError(): V4l2Error {
    return new V4l2Error('ERR_V4L2_CLOSED', `${this.description}: the source has been closed`, { path: this.options.path });
  }

  /** Best-effort teardown: after an unplug every call fails with ENODEV, and that is expected. */
  private shutDevice(): void {
    const device = this.device;
    this.device = undefined;
    if (!device) return;
    try {
      device.streamOff();
    } catch {
      // already gone or never streaming
    }
    try {
      device.close();
    } catch {
      // closing a lost device can only fail in ways that change nothing
    }
  }

  private openOnce(): V4l2Opened {
    const { path } = this.options;
    const device = this.options.openDevice(path);
    try {
      const caps = probeCapabilities(device);
      const card = `"${caps.device.card}" (${caps.device.driver}, ${caps.device.busInfo})`;
      if (caps.multiplanarOnly) {
        throw new V4l2Error('ERR_V4L2_NOT_CAPTURE', `${path} ${card} only offers multi-planar capture, which this source does not support yet`, { path });
      }
      if (!caps.canCapture) {
        throw new V4l2Error(
          'ERR_V4L2_NOT_CAPTURE',
          `${path} ${card} is not a video capture node (device caps 0x${caps.device.deviceCaps.toString(16)}); ` +
            'UVC cameras also create a metadata node: try the other /dev/videoN of this camera (`v4l2-ctl --list-devices`)',
          { path },
        );
      }
      if (!caps.canStream) {
        throw new V4l2Error('ERR_V4L2_NOT_CAPTURE', `${path} ${card} does not support streaming (mmap) I/O`, { path });
      }
      const negotiation = negotiate(caps, this.options.request);
      const warnings = [...negotiation.warnings];

      const format = device.setFormat(negotiation.fourcc, negotiation.width, negotiation.height);
      if (!this.accepted.includes(format.fourcc)) {
        throw new NegotiationError(
          `${path}: asked for ${negotiation.fourcc} but the driver switched to ${format.fourcc}, which is not accepted (${this.accepted.join(', ')})`,
          [],
          path,
        );
      }
      if (format.fourcc !== negotiation.fourcc || format.width !== negotiation.width || format.height !== negotiation.height) {
        warnings.push(
          `the driver adjusted ${negotiation.fourcc} ${negotiation.width}x${negotiation.height} to ${format.fourcc} ${format.width}x${format.height}`,
        );
      }

      let fps: number | null = null;
      const interval = negotiation.interval ? device.setFrameInterval(negotiation.interval.numerator, negotiation.interval.denominator) : device.getFrameInterval();
      if (interval) fps = fpsOf(interval);
      if (negotiation.fps !== null && fps !== null && Math.abs(fps - negotiation.fps) > 0.002 * negotiation.fps) {
        warnings.push(`asked for ${negotiation.fps} fps, the driver set ${fps} fps`);
      }
      if (negotiation.interval && !interval) warnings.push('the driver has no frame-rate control (no V4L2_CAP_TIMEPERFRAME)');

      if (this.options.controls && Object.keys(this.options.controls).length > 0) {
        const plan = validateControls(caps.controls, this.options.controls);
        warnings.push(...plan.warnings, ...applyControls(device, plan, caps.controls));
      }

      const bufferCount = device.requestBuffers(this.bufferCount);
      if (bufferCount < 2) warnings.push(`the driver granted only ${bufferCount} buffer: frames will be dropped while one is read`);
      device.streamOn();

      this.device = device;
      this.generation++;
      this.lastSequence = undefined;
      this.lastProgressAt = this.clock.now();
      this.current = { generation: this.generation, negotiation, format, fps, bufferCount, card, warnings };
      this.emit({ type: 'opened', opened: this.current });
      return this.current;
    } catch (err) {
      try {
        device.close();
      } catch {
        // the error that got us here is the one to report
      }
      throw err;
    }
  }

  /** Reopens with exponential backoff until it works, close() is called, or maxAttempts is reached. */
  private async recover(): Promise<void> {
    const { initialMs = 250, maxMs = 5000, factor = 2, maxAttempts = Infinity } = this.options.backoff ?? {};
    const started = this.clock.now();
    let delay = initialMs;
    let lastError: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      await this.clock.sleep(delay);
      if (this.closed) return;
      try {
        this.openOnce();
        this.counters.reopens++;
        this.emit({ type: 'reopened', attempts: attempt, downtimeMs: this.clock.now() - started });
        return;
      } catch (err) {
        lastError = err;
        this.counters.reopenFailures++;
        const next = Math.min(delay * factor, maxMs);
        this.emit({ type: 'reopen-failed', attempt, error: err as Error, retryInMs: attempt < maxAttempts ? next : 0 });
        delay = next;
      }
    }
    const why = lastError instanceof Error ? lastError.message : String(lastError);
    throw new V4l2Error('ERR_V4L2_REOPEN', `${this.description}: could not reopen the camera after ${maxAttempts} attempts: ${why}`, {
      path: this.options.path,
      cause: lastError,
    });
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new V4l2Error('ERR_INVALID_ARGUMENT', `V4l2Source: ${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}
