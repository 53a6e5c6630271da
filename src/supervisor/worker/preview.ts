/**
 * Live-view pictures in the worker: while the supervisor asks for them (a viewer is connected),
 * the newest result's frame is shrunk and JPEG-encoded natively on a libuv thread, its overlay
 * layer drawn at the model's resolution and deflated on the thread pool, and both sent over IPC. At most
 * one picture is in the making and at most `fps` a second: a result that arrives meanwhile is
 * simply not previewed, so the pipeline never waits for the view and the view costs nothing
 * without a viewer.
 */
import { drawOverlay, encodeOverlayPng } from '../../image/overlay.js';
import { loadNativeBinding, type NativeBinding } from '../../runtime/native/binding.js';
import { modelMaskToFrame } from '../../runtime/postprocess/model-mask.js';
import type { PreviewMessage } from '../ipc.js';
import type { SnapshotSource } from './snapshot.js';

/** JPEG quality of previews: small pictures, where 4:2:0 at 75 looks clean. */
const PREVIEW_QUALITY = 75;

export interface PreviewRequest {
  readonly fps: number;
  readonly maxWidth: number;
}

/** The preview size of a frame: at most maxWidth wide, aspect kept, even sides (4:2:0 JPEG). */
export function previewSize(frame: { width: number; height: number }, maxWidth: number): { width: number; height: number } {
  const width = Math.max(2, Math.min(frame.width, maxWidth) & ~1);
  const height = Math.max(2, Math.min(frame.height, Math.round((frame.height * width) / frame.width)) & ~1);
  return { width, height };
}

export class PreviewMaker {
  private request: PreviewRequest = { fps: 0, maxWidth: 640 };
  private busy = false;
  private lastStart = -Infinity;
  /** Pictures sent, and results passed over because one was in the making or too soon. */
  sent = 0;
  failures = 0;

  constructor(
    private readonly send: (message: PreviewMessage) => Promise<void>,
    private readonly log: (line: string) => void,
    private readonly binding: () => NativeBinding = loadNativeBinding,
    private readonly now: () => number = () => performance.now(),
  ) {}

  set(request: PreviewRequest): void {
    this.request = request;
  }

  get active(): boolean {
    return this.request.fps > 0;
  }

  /** A new result: previewed if asked for, none in the making, and the rate allows. */
  offer(last: SnapshotSource): void {
    const { fps } = this.request;
    if (fps <= 0 || this.busy || !last.frame) return;
    const t = this.now();
    if (t - this.lastStart < 1000 / fps) return;
    this.lastStart = t;
    this.busy = true;
    this.make(last)
      .then((m) => this.send(m))
      .then(() => this.sent++)
      .catch((err: unknown) => {
        // One log line per 100 failures: a broken frame format must not flood the journal.
        if (this.failures++ % 100 === 0) this.log(`preview of frame ${last.result.frame.id} failed: ${(err as Error).message}`);
      })
      .finally(() => {
        this.busy = false;
      });
  }

  private async make(last: SnapshotSource): Promise<PreviewMessage> {
    const frame = last.frame;
    if (!frame) throw new Error('frame no longer held');
    const size = previewSize(frame, this.request.maxWidth);
    const jpegPromise = this.binding().previewJpeg(frame.data, frame.width, frame.height, frame.format, size.width, size.height, PREVIEW_QUALITY);
    // The layer at the model's resolution (the part of its input the frame fills): a few
    // thousand pixels of JS work a picture instead of the preview's few hundred thousand; the
    // browser scales it over the picture without smoothing, so each model pixel shows as a block.
    const layerSize = last.letterbox ? { width: last.letterbox.newW, height: last.letterbox.newH } : last.maskModel;
    const mask = modelMaskToFrame(last.maskModel, { width: layerSize.width, height: layerSize.height }, last.letterbox);
    const layer = drawOverlay({ mask, boxes: last.result.components.map((c) => c.bbox), frame });
    const [jpeg, overlay] = await Promise.all([jpegPromise, encodeOverlayPng(layer)]);
    return {
      type: 'preview',
      frame: last.result.frame.id,
      width: size.width,
      height: size.height,
      jpeg: Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength).toString('base64'),
      overlay: overlay.toString('base64'),
    };
  }
}
