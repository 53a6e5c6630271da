// Shared test data for the fleet tests (no tests of its own).
import { RESULT_SCHEMA, type ResultBody, type ResultMessage } from '../../src/fleet/schemas.js';

export const SHA = 'a'.repeat(64);

export function sampleBody(frameSeq = 0, rleBytes = 0): ResultBody {
  const body: ResultBody = {
    schema: RESULT_SCHEMA,
    frame: { id: `f${frameSeq}`, seq: frameSeq, width: 640, height: 480, format: 'YUYV' },
    model: { sha256: SHA, precision: 'fp32' },
    provider: 'CPUExecutionProvider',
    captureTime: '2026-11-25T23:00:00.000Z',
    completionTime: '2026-11-25T23:00:00.031Z',
    latencyMs: { capture: 1, preprocess: 2, queue: 0.5, inference: 20, postprocess: 3, total: 26.5 },
    coverage: 0.12,
    components: [{ area: 812, areaPercent: 1.24, bbox: { x: 10, y: 20, width: 30, height: 40 }, centroid: { x: 25, y: 40 }, meanProbability: 0.91 }],
    droppedComponents: 0,
  };
  if (rleBytes > 0) body.rle = { size: [480, 640], counts: 'x'.repeat(rleBytes) };
  return body;
}

export function sampleResult(seq = 0): ResultMessage {
  return { ...sampleBody(seq), device: 'cart-001', seq };
}
