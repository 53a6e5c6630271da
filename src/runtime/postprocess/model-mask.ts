import type { LetterboxGeometry, Size } from '../../image/preprocess.js';
import type { GrayImage } from '../../image/types.js';

/**
 * The model-size mask drawn at frame size, nearest neighbour (letterbox padding left out): for a
 * picture of a result (the snapshot overlay), made on request from what every result keeps at model
 * size, so that no frame-size mask has to be held per frame. Edges differ by up to one model pixel
 * from the reported frame mask, which thresholds bilinearly resized probabilities.
 */
export function modelMaskToFrame(maskModel: GrayImage, frame: Size, letterbox?: LetterboxGeometry): GrayImage {
  const { width: fw, height: fh } = frame;
  const rect = letterbox ?? { newW: maskModel.width, newH: maskModel.height, ox: 0, oy: 0 };
  const cols = new Int32Array(fw);
  for (let x = 0; x < fw; x++) cols[x] = rect.ox + Math.min(rect.newW - 1, Math.floor(((x + 0.5) * rect.newW) / fw));
  const out = new Uint8Array(fw * fh);
  let previous = -1;
  for (let y = 0; y < fh; y++) {
    const row = (rect.oy + Math.min(rect.newH - 1, Math.floor(((y + 0.5) * rect.newH) / fh))) * maskModel.width;
    // Enlarging: consecutive rows often sample the same model row; copy it rather than sample again.
    if (row === previous) out.copyWithin(y * fw, (y - 1) * fw, y * fw);
    else for (let x = 0; x < fw; x++) out[y * fw + x] = maskModel.data[row + cols[x]];
    previous = row;
  }
  return { width: fw, height: fh, data: out };
}
