/**
 * The one definition of how a result is drawn over its frame: the predicted mask filled with
 * alpha and outlined, a box around each reported component, and (eval) the ground truth outlined in
 * another colour. Drawing makes a layer of palette indices at any size; the same layer is
 * blended into an RGB picture (snapshot reply, `--save-overlays`) or sent to the live view as a
 * transparent palette PNG that the browser lays over the video (so the overlay can be switched off
 * there without a second picture).
 */
import { encodeIndexedPngAsync } from './encode.js';
import { assertGrayImage, assertRgbImage, type GrayImage, type RgbImage } from './types.js';

/** Palette indices of a layer; later ones are drawn over earlier ones. */
export const LAYER = { none: 0, fill: 1, outline: 2, truth: 3, box: 4 } as const;

/** RGBA per index: red fill at ~45 % opacity, opaque red outline, green truth, yellow boxes. */
export const OVERLAY_COLOURS: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 0, 0],
  [255, 40, 40, 115],
  [255, 40, 40, 255],
  [40, 220, 90, 255],
  [255, 214, 0, 255],
];

/** Inclusive pixel bounds, as a result's component bbox. */
export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface OverlayInput {
  /** The predicted 0/1 mask at the layer's size (modelMaskToFrame draws it at any size). */
  readonly mask: GrayImage;
  /** Component boxes in frame pixels. */
  readonly boxes?: readonly Box[];
  /** The frame the boxes are in, to scale them to the layer (default: the mask's size). */
  readonly frame?: { readonly width: number; readonly height: number };
  /** A ground-truth 0/1 mask at the layer's size, outlined in its own colour. */
  readonly truth?: GrayImage;
}

/**
 * Marks the pixels of a 0/1 mask: `edge` where a 4-neighbour is outside it (or it is on the image
 * border), else `inside` (skipped when 0). One pass, row by row: it runs on the worker's JS thread
 * for every live-view picture.
 */
function mark(mask: GrayImage, layer: Uint8Array, inside: number, edge: number): void {
  const { width: w, height: h, data } = mask;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    const border = y === 0 || y === h - 1;
    for (let x = 0; x < w; x++) {
      const i = row + x;
      if (data[i] === 0) continue;
      if (border || x === 0 || x === w - 1 || data[i - 1] === 0 || data[i + 1] === 0 || data[i - w] === 0 || data[i + w] === 0) layer[i] = edge;
      else if (inside !== 0) layer[i] = inside;
    }
  }
}

/** The overlay layer: palette indices (LAYER), one byte a pixel, at the mask's size. */
export function drawOverlay(input: OverlayInput): GrayImage {
  const { mask, truth } = input;
  assertGrayImage(mask, 'overlay mask');
  const { width: w, height: h } = mask;
  if (truth && (truth.width !== w || truth.height !== h)) throw new RangeError(`overlay: truth is ${truth.width}x${truth.height}, the mask ${w}x${h}`);
  const layer = new Uint8Array(w * h);
  mark(mask, layer, LAYER.fill, LAYER.outline);
  if (truth) mark(truth, layer, LAYER.none, LAYER.truth);
  const frame = input.frame ?? { width: w, height: h };
  const sx = w / frame.width;
  const sy = h / frame.height;
  for (const b of input.boxes ?? []) {
    // Inclusive pixel bounds scaled to the layer, at least one layer pixel wide.
    const x0 = Math.max(0, Math.min(w - 1, Math.floor(b.x * sx)));
    const y0 = Math.max(0, Math.min(h - 1, Math.floor(b.y * sy)));
    const x1 = Math.max(x0, Math.min(w - 1, Math.ceil((b.x + b.width) * sx) - 1));
    const y1 = Math.max(y0, Math.min(h - 1, Math.ceil((b.y + b.height) * sy) - 1));
    for (let x = x0; x <= x1; x++) layer[y0 * w + x] = layer[y1 * w + x] = LAYER.box;
    for (let y = y0; y <= y1; y++) layer[y * w + x0] = layer[y * w + x1] = LAYER.box;
  }
  return { width: w, height: h, data: layer };
}

/** The layer blended over a picture of the same size (alpha from OVERLAY_COLOURS). */
export function composeOverlay(picture: RgbImage, layer: GrayImage): RgbImage {
  assertRgbImage(picture, 'overlay picture');
  if (picture.width !== layer.width || picture.height !== layer.height) {
    throw new RangeError(`overlay: layer is ${layer.width}x${layer.height}, the picture ${picture.width}x${picture.height}`);
  }
  const out = Uint8Array.from(picture.data);
  for (let i = 0; i < layer.data.length; i++) {
    const index = layer.data[i];
    if (index === LAYER.none) continue;
    const [r, g, b, a] = OVERLAY_COLOURS[index];
    const k = i * 3;
    out[k] = Math.round((r * a + out[k] * (255 - a)) / 255);
    out[k + 1] = Math.round((g * a + out[k + 1] * (255 - a)) / 255);
    out[k + 2] = Math.round((b * a + out[k + 2] * (255 - a)) / 255);
  }
  return { width: picture.width, height: picture.height, data: out };
}

const PALETTE = Uint8Array.from(OVERLAY_COLOURS.flatMap(([r, g, b]) => [r, g, b]));
const ALPHA = Uint8Array.from(OVERLAY_COLOURS.map(([, , , a]) => a));

/** The layer as a transparent palette PNG (deflate off the JS thread), for the live view. */
export function encodeOverlayPng(layer: GrayImage): Promise<Buffer> {
  return encodeIndexedPngAsync(layer, PALETTE, ALPHA);
}
