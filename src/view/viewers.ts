/**
 * One live-view viewer's WebSocket, with a single slot per kind of message (the newest picture, the
 * newest figures): while a message is being written, a newer one replaces the one waiting, so a
 * slow or stalled viewer costs one message in the socket plus one waiting, never a growing queue,
 * and nobody else (the pipeline, other viewers) waits for it.
 */
import type { WebSocket } from 'ws';

export type ViewMessageKind = 'frame' | 'state';

export class Viewer {
  private writing = false;
  private readonly waiting = new Map<ViewMessageKind, string>();
  /** Messages written, and messages replaced by a newer one before they could be written. */
  sent = 0;
  replaced = 0;

  constructor(readonly socket: WebSocket) {}

  offer(kind: ViewMessageKind, text: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (this.writing) {
      if (this.waiting.has(kind)) this.replaced++;
      this.waiting.set(kind, text);
      return;
    }
    this.write(text);
  }

  /** Bytes held for this viewer in this process (the socket's buffer and the waiting slots). */
  heldBytes(): number {
    let n = this.socket.bufferedAmount;
    for (const text of this.waiting.values()) n += text.length;
    return n;
  }

  private write(text: string): void {
    this.writing = true;
    // The callback runs once the socket has taken the bytes (the kernel accepted them): a viewer
    // that stops reading stops it, and its slots keep only the newest.
    this.socket.send(text, (err) => {
      this.writing = false;
      if (err) return;
      this.sent++;
      const [next] = this.waiting.entries();
      if (next) {
        this.waiting.delete(next[0]);
        this.write(next[1]);
      }
    });
  }
}
