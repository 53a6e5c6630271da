/**
 * Wraps the real source so it can be closed and reopened under a running pipeline (the
 * supervisor's watchdog asks for that when frames stop), and says when frames arrive.
 */
import type { Frame, FrameSource } from '../../runtime/sources/types.js';

export class ReopenableSource implements FrameSource {
  readonly description: string;
  private inner: FrameSource;
  private wake: (() => void) | undefined;
  private opened = false;
  private lastBeat = 0;

  /**
   * @param onBeat called at most every 500 ms while frames arrive: frames that are all dropped
   *   downstream still prove the camera is alive.
   */
  constructor(
    private readonly factory: () => FrameSource,
    private readonly onBeat: () => void,
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.inner = factory();
    this.description = this.inner.description;
  }

  async open(): Promise<void> {
    if (this.opened) return;
    await this.inner.open();
    this.opened = true;
  }

  async next(): Promise<Frame | null> {
    for (;;) {
      const inner = this.inner;
      // A hung camera never answers next(); reopen() must be able to abandon that wait.
      const reopened = new Promise<'reopened'>((resolve) => {
        this.wake = () => resolve('reopened');
      });
      const got = await Promise.race([inner.next(), reopened]);
      if (got === 'reopened' || inner !== this.inner) continue;
      if (got !== null) this.beat();
      return got;
    }
  }

  private beat(): void {
    const now = this.now();
    if (now - this.lastBeat >= 500) {
      this.lastBeat = now;
      this.onBeat();
    }
  }

  async reopen(): Promise<void> {
    const old = this.inner;
    await old.close().catch((err: unknown) => this.log(`closing ${old.description}: ${(err as Error).message}`));
    const fresh = this.factory();
    await fresh.open();
    this.inner = fresh;
    this.wake?.();
  }

  async close(): Promise<void> {
    this.wake?.();
    await this.inner.close();
  }
}
