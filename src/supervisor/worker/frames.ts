/**
 * Frames that went into inference and have no result yet, oldest first, kept for snapshots: a
 * result is a few frames behind capture, and in 'latest' mode some of these are replaced and
 * never finish.
 */
import type { Frame } from '../../runtime/sources/types.js';

const IN_FLIGHT_LIMIT = 8;

export class InFlightFrames {
  private readonly frames = new Map<string, Frame>();

  constructor(private readonly limit = IN_FLIGHT_LIMIT) {}

  get size(): number {
    return this.frames.size;
  }

  /** Keeps a captured frame (as a capture hook it leaves the pipeline on its fused native path). */
  keep(frame: Frame): void {
    this.frames.set(frame.id, frame);
    if (this.frames.size > this.limit) {
      // The oldest frames are in inference and postprocessing and will have results; the ones after
      // them were replaced in the 'latest' queue and never will. Under load many are replaced
      // between two results, so let go of those rather than of the next result's frame.
      const keys = [...this.frames.keys()];
      this.frames.delete(keys[2]);
    }
  }

  /** The frame a result came from; frames before it are finished or were replaced. */
  take(id: string): Frame | undefined {
    const frame = this.frames.get(id);
    if (!frame) return undefined;
    for (const key of [...this.frames.keys()]) {
      this.frames.delete(key);
      if (key === id) break;
    }
    return frame;
  }
}

/** Results per second over the last 5 s, from result times (a clock injected for tests). */
export class FpsWindow {
  private readonly times: number[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  record(): void {
    this.times.push(this.now());
    if (this.times.length > 300) this.times.shift();
  }

  current(): number {
    const now = this.now();
    const w = this.times;
    while (w.length > 0 && now - w[0] > 5000) w.shift();
    if (w.length < 2) return 0;
    return Math.round(((w.length - 1) * 1000 * 10) / Math.max(1, w[w.length - 1] - w[0])) / 10;
  }
}
