import type { FrameLimits } from './limits.js';
import type { PixelFormat } from '../native/pixel-formats.js';

/** One captured frame, as every source hands it to the pipeline. */
export interface Frame {
  /** Position in this source's stream, from 0; gaps mean frames were dropped before us. */
  readonly seq: number;
  /** Stable identifier for results: `<source>#<seq>` or the file stem for image folders. */
  readonly id: string;
  /** Source file stem, where frames come from named files (used to name saved masks). */
  readonly stem?: string;
  readonly format: PixelFormat;
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
  /** Wall-clock capture time, ms since the epoch (fractional). */
  readonly captureTimeMs: number;
}

/** A frame that was not delivered, and why: every drop is counted and logged, never silent. */
export interface DroppedFrame {
  readonly seq: number;
  readonly id: string;
  /** refused: over the frame limits or not a regular file (limits.ts), never read or decoded. */
  readonly reason: 'corrupt' | 'truncated' | 'empty' | 'decode' | 'driver' | 'refused';
  readonly detail: string;
}

export interface FrameSource {
  /** e.g. `folder:/data/frames`, shown in reports and logs. */
  readonly description: string;
  open(): Promise<void>;
  /** The next good frame, or null once a finite source is exhausted. Bad frames are reported through `onDrop` and skipped. */
  next(): Promise<Frame | null>;
  close(): Promise<void>;
  /**
   * Takes back the `data` of a frame this source delivered, once the consumer no longer reads it, for
   * a later frame to be read into (sources that pool their frame buffers implement it). The caller
   * must not touch the buffer afterwards.
   */
  recycle?(data: Uint8Array): void;
}

export interface SourceOptions extends FrameLimits {
  /** Pace frames at this rate (frames/s); 0 or undefined: as fast as the consumer takes them. */
  readonly fps?: number;
  /** Replay finite sources this many times (default 1); Infinity loops forever. */
  readonly loops?: number;
  readonly onDrop?: (drop: DroppedFrame) => void;
}

/** Paces a stream at a fixed rate against a start time, so slow consumers do not accumulate delay. */
export class Pacer {
  private start = 0;
  constructor(private readonly fps: number | undefined) {}

  async wait(seq: number): Promise<void> {
    if (!this.fps || this.fps <= 0) return;
    if (seq === 0 || this.start === 0) this.start = performance.now();
    const due = this.start + (seq * 1000) / this.fps;
    const delay = due - performance.now();
    if (delay > 1) await new Promise((r) => setTimeout(r, delay));
  }
}
