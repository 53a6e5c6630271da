/**
 * A RunModel on onnxruntime-node for the CLI (signing computes golden masks, verify --self-test
 * checks them). The device runtime injects its own runner; this one follows the reference
 * preprocessing (stretch to the model size) and sigmoid(logit) > threshold at the model's resolution.
 */
import ort from 'onnxruntime-node';
import { preprocessRgb } from '../../image/preprocess.js';
import type { GrayImage, RgbImage } from '../../image/types.js';
import { logitsToMask, type ModelInfo, type RunModel } from './golden.js';

export function createOrtRunner(options: { threads?: number } = {}): RunModel {
  return async (modelPath: string, frames: readonly RgbImage[], info: ModelInfo): Promise<GrayImage[]> => {
    const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: options.threads ?? 1 });
    try {
      const masks: GrayImage[] = [];
      for (const frame of frames) {
        const input = preprocessRgb(frame, { width: info.width, height: info.height });
        const out = await session.run({ [info.inputName]: new ort.Tensor('float32', input, [1, 3, info.height, info.width]) });
        const logits = out[info.outputName];
        if (!logits) throw new Error(`${modelPath} has no output ${info.outputName} (outputs: ${session.outputNames.join(', ')})`);
        masks.push(logitsToMask(logits.data as Float32Array, info.width, info.height, info.threshold));
      }
      return masks;
    } finally {
      await session.release();
    }
  };
}
