/**
 * Frame buffers of one size, handed out and taken back (FrameSource.recycle), so that a source of
 * fixed-size frames does not allocate a frame-size buffer per frame: at 1920x1080 YUYV that is 4 MB a
 * frame, and V8 answers that much external memory with a full collection every few frames.
 */
export class FramePool {
  private readonly free: Uint8Array[] = [];
  /** Buffers this pool handed out and has not taken back: only those are accepted. */
  private readonly out = new WeakSet<Uint8Array>();

  /**
   * @param byteLength size of every buffer
   * @param keep most free buffers kept: about the frames in flight (queue slot, native jobs), more
   *   would only hold memory
   */
  constructor(
    readonly byteLength: number,
    private readonly keep = 4,
  ) {
    if (!(Number.isSafeInteger(byteLength) && byteLength > 0)) throw new RangeError(`FramePool: byteLength must be a positive integer, got ${byteLength}`);
  }

  /** A buffer of byteLength bytes, not zero-filled (the caller fills it). */
  take(): Uint8Array {
    const b = this.free.pop() ?? Buffer.allocUnsafeSlow(this.byteLength);
    this.out.add(b);
    return b;
  }

  /** Takes back a buffer from take(); anything else (a view, another pool's buffer, a second give) is ignored. */
  give(b: Uint8Array): void {
    if (!this.out.has(b)) return;
    this.out.delete(b);
    if (this.free.length < this.keep) this.free.push(b);
  }

  /** Free buffers held now. */
  get held(): number {
    return this.free.length;
  }
}
