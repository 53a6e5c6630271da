/**
 * The snapshot reply: a PNG overlay of the last processed frame with its mask, sized to fit one
 * reply under the broker's limit.
 */
import { encodePngRgb } from '../../image/encode.js';
import { composeOverlay, drawOverlay } from '../../image/overlay.js';
import type { LetterboxGeometry } from '../../image/preprocess.js';
import type { GrayImage, RgbImage } from '../../image/types.js';
import { decodeJpegFrame } from '../../runtime/native/runtime.js';
import { modelMaskToFrame } from '../../runtime/postprocess/model-mask.js';
import type { SinkItem } from '../../runtime/sinks/index.js';
import type { Frame } from '../../runtime/sources/types.js';

/**
 * The last result, its model-size mask, where the frame sat in the model input (letterbox) and
 * (while still held) the frame it came from. The frame-size mask stays native for every frame; a
 * snapshot draws it from the model-size one on request.
 */
export interface SnapshotSource {
  readonly result: SinkItem['result'];
  readonly maskModel: GrayImage;
  readonly letterbox: LetterboxGeometry | undefined;
  readonly frame: Frame | undefined;
}

export function frameToRgb(frame: Frame): RgbImage {
  const { width: w, height: h, data } = frame;
  const out = new Uint8Array(w * h * 3);
  const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);
  if (frame.format === 'RGB24') return { width: w, height: h, data: data.subarray(0, w * h * 3) };
  // A snapshot (on request, not per frame) decodes the JPEG at full size with the same native decoder.
  if (frame.format === 'MJPEG') return decodeJpegFrame(frame, { width: w, height: h });
  if (frame.format === 'RGBA') {
    for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) out[i * 3 + c] = data[i * 4 + c];
  } else if (frame.format === 'YUYV') {
    for (let i = 0; i < w * h; i += 2) {
      const y0 = data[i * 2] - 16, u = data[i * 2 + 1] - 128, y1 = data[i * 2 + 2] - 16, v = data[i * 2 + 3] - 128;
      for (const [k, y] of [[i, y0], [i + 1, y1]] as const) {
        out[k * 3] = clamp(1.164 * y + 1.596 * v);
        out[k * 3 + 1] = clamp(1.164 * y - 0.392 * u - 0.813 * v);
        out[k * 3 + 2] = clamp(1.164 * y + 2.017 * u);
      }
    }
  } else {
    // GREY and NV12 start with a full-resolution luma plane: grey is enough for an overlay.
    for (let i = 0; i < w * h; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = data[i];
  }
  return { width: w, height: h, data: out };
}

/** Box-filter downscale of the (already tinted) overlay by an integer factor: averages k x k blocks. */
export function shrink(rgb: Uint8Array, w: number, h: number, k: number): { rgb: Uint8Array; width: number; height: number } {
  const width = Math.max(1, Math.floor(w / k));
  const height = Math.max(1, Math.floor(h / k));
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0, n = 0;
      for (let dy = 0; dy < k && y * k + dy < h; dy++) {
        for (let dx = 0; dx < k && x * k + dx < w; dx++) {
          const i = (y * k + dy) * w + x * k + dx;
          r += rgb[i * 3];
          g += rgb[i * 3 + 1];
          b += rgb[i * 3 + 2];
          n++;
        }
      }
      const o = y * width + x;
      out[o * 3] = Math.round(r / n);
      out[o * 3 + 1] = Math.round(g / n);
      out[o * 3 + 2] = Math.round(b / n);
    }
  }
  return { rgb: out, width, height };
}

/** The frame with its result drawn over it (src/image/overlay.ts), at frame size. */
export function overlayPicture(last: SnapshotSource, frame: Frame): RgbImage {
  const mask = modelMaskToFrame(last.maskModel, frame, last.letterbox);
  const layer = drawOverlay({ mask, boxes: last.result.components.map((c) => c.bbox), frame });
  return composeOverlay(frameToRgb(frame), layer);
}

/**
 * The snapshot reply: a PNG overlay of the last frame, base64. `maxBytes` (from the supervisor:
 * the broker's limit less the reply envelope) caps the base64 text; a frame whose overlay does
 * not fit is scaled down by the smallest integer factor that fits, and the reply says so
 * (`scale`, `sourceWidth`, `sourceHeight`). Scaling, not parts: one message any dashboard can
 * show as is, that never holds the link for longer than one reply.
 */
export function renderSnapshot(last: SnapshotSource | undefined, args: unknown): Record<string, unknown> {
  const maxBytes = (args as { maxBytes?: unknown } | null)?.maxBytes;
  if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !(maxBytes > 0))) throw new TypeError('snapshot maxBytes must be a positive number');
  if (!last) throw new Error('no frame processed yet');
  const { result, frame } = last;
  if (!frame) throw new Error(`frame ${result.frame.id} is no longer held`);
  const rgb = overlayPicture(last, frame);
  const data = rgb.data;
  const base = { frame: result.frame.id, coverage: result.coverage, mimeType: 'image/png' };
  let png = encodePngRgb({ width: rgb.width, height: rgb.height, data }).toString('base64');
  if (maxBytes === undefined || png.length <= maxBytes) return { ...base, width: rgb.width, height: rgb.height, png };
  // PNG size falls roughly with the pixel count: start at the factor that predicts, go up until it fits.
  for (let k = Math.max(2, Math.floor(Math.sqrt(png.length / maxBytes))); k <= Math.max(rgb.width, rgb.height); k++) {
    const small = shrink(data, rgb.width, rgb.height, k);
    png = encodePngRgb({ width: small.width, height: small.height, data: small.rgb }).toString('base64');
    if (png.length <= maxBytes) {
      return { ...base, width: small.width, height: small.height, scale: 1 / k, sourceWidth: rgb.width, sourceHeight: rgb.height, png };
    }
  }
  throw new Error(`a snapshot does not fit in ${maxBytes} bytes even at 1 pixel`);
}
