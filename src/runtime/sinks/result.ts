/**
 * Writing result lines. What a line says (`lvunet-edge/result@1`) is defined in src/schemas/result.ts;
 * consumers (jsonl files, the fleet's MQTT results) parse exactly that.
 */
import { RESULT_SCHEMA, type ResultV1 } from '../../schemas/result.js';

// Defined once in src/schemas/result.ts (type, validator, published docs/schemas/result.json).
export { RESULT_SCHEMA, assertResultV1, resultV1, type ResultV1, type StageLatencies } from '../../schemas/result.js';

/** Fixed key order, so equal results serialise to identical lines. */
export function resultLine(r: ResultV1): string {
  const out: ResultV1 = {
    schema: RESULT_SCHEMA,
    frame: r.frame,
    model: r.model,
    provider: r.provider,
    captureTime: r.captureTime,
    completionTime: r.completionTime,
    latencyMs: r.latencyMs,
    coverage: r.coverage,
    components: r.components,
    droppedComponents: r.droppedComponents,
  };
  if (r.contours) out.contours = r.contours;
  if (r.rle) out.rle = r.rle;
  return JSON.stringify(out);
}
