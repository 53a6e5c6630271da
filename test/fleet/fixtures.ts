// Shared test data for the fleet tests (no tests of its own).
import { RESULT_SCHEMA, type ResultBody, type ResultMessage } from '../../src/fleet/schemas.js';

export const SHA = 'a'.repeat(64);

export function sampleBody(frameSeq = 0, rleBytes = 0): ResultBody {
  const body: ResultBody = {
    frame: { id: `f${frameSeq}`, seq: frameSeq },
    capture_time: '2026-11-25T23:00:00.000Z',
    completion_time: '2026-11-25T23:00:00.031Z',
    model: { sha256: SHA, precision: 'fp32' },
    provider: 'cpu',
    latency_ms: { capture: 1, preprocess: 2, inference: 20, postprocess: 3, total: 26 },
    coverage: 0.12,
    components: [{ area_px: 812, area_pct: 1.24, bbox: [10, 20, 30, 40], centroid: [25, 40], mean_prob: 0.91 }],
  };
  if (rleBytes > 0) body.rle = 'x'.repeat(rleBytes);
  return body;
}

export function sampleResult(seq = 0): ResultMessage {
  return { schema: RESULT_SCHEMA, device: 'cart-001', seq, ...sampleBody(seq) };
}
