/**
 * Frame buffers of one size, handed out and taken back (FrameSource.recycle), so that a source of
 * fixed-size frames does not allocate a frame-size buffer per frame: at 1920x1080 YUYV that is 4 MB a
 * frame, and V8 answers that much external memory with a full collection every few frames.
 */
export class FramePool {
  private readonly free: Uint8Array[] = [];
  /**
   * Buffers this pool handed out and has not taken back, by their memory: only those are accepted,
   * also through a view (a frame is often a subarray of the buffer it was read into). Weak: a buffer
   * never given back is collected as usual.
   */
  private readonly out = new WeakMap<ArrayBufferLike, Uint8Array>();

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
    // allocUnsafeSlow: a buffer of its own (not a slice of Node's shared pool), so its memory names it.
    const b = this.free.pop() ?? Buffer.allocUnsafeSlow(this.byteLength);
    this.out.set(b.buffer, b);
    return b;
  }

  /**
   * Takes back a buffer from take(), or any view of one; anything else (another pool's buffer, a
   * second give of the same one) is ignored. The caller must not touch it afterwards.
   */
  give(view: Uint8Array): void {
    const b = this.out.get(view.buffer);
    if (!b) return;
    this.out.delete(view.buffer);
    if (this.free.length < this.keep) this.free.push(b);
  }

  /** Free buffers held now. */
  get held(): number {
    return this.free.length;
  }
}
