/**
 * The one definition of what a result line says: `lvunet-edge/result@1`. Consumers (jsonl files, the
 * fleet's MQTT results) parse exactly this; a change to a field's meaning needs a new version.
 */
import type { Component, Contour, Rle, RleString } from '../postprocess/index.js';

export const RESULT_SCHEMA = 'lvunet-edge/result@1';

/** Milliseconds spent in each stage; `total` runs from capture to the end of postprocessing. */
export interface StageLatencies {
  /** Capture to preprocess start (time waiting for the JS thread). */
  capture: number;
  preprocess: number;
  /** Preprocess end to inference start (time waiting for the model). */
  queue: number;
  inference: number;
  /** Inference end to postprocess end (waiting plus postprocessing). */
  postprocess: number;
  total: number;
}

export interface ResultV1 {
  schema: typeof RESULT_SCHEMA;
  frame: {
    id: string;
    seq: number;
    /** Source file stem where the frame came from a named file. */
    stem?: string;
    width: number;
    height: number;
    format: string;
  };
  model: { sha256: string; precision: string };
  /** The execution provider that ran the model (the first active one). */
  provider: string;
  /** ISO 8601, UTC. */
  captureTime: string;
  completionTime: string;
  latencyMs: StageLatencies;
  /** Foreground fraction of the frame-size mask. */
  coverage: number;
  /** Frame-size connected components, largest first. */
  components: Component[];
  droppedComponents: number;
  contours?: Contour[];
  /** COCO run-length encoding of the frame-size mask: size [height, width], column-major counts (postprocess/rle.ts). */
  rle?: Rle | RleString;
}

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

/** Throws a TypeError naming the first missing or mistyped field; for consumers and tests. */
export function assertResultV1(value: unknown): asserts value is ResultV1 {
  const v = value as Record<string, unknown> | null;
  const fail = (field: string): never => {
    throw new TypeError(`not a ${RESULT_SCHEMA} result: field '${field}' is missing or has the wrong type`);
  };
  if (typeof v !== 'object' || v === null) fail('(root)');
  const r = v as Record<string, unknown>;
  if (r.schema !== RESULT_SCHEMA) fail('schema');
  const frame = r.frame as Record<string, unknown> | undefined;
  if (typeof frame?.id !== 'string' || typeof frame.seq !== 'number') fail('frame');
  const model = r.model as Record<string, unknown> | undefined;
  if (typeof model?.sha256 !== 'string' || typeof model.precision !== 'string') fail('model');
  if (typeof r.provider !== 'string') fail('provider');
  for (const k of ['captureTime', 'completionTime']) {
    if (typeof r[k] !== 'string' || Number.isNaN(Date.parse(r[k] as string))) fail(k);
  }
  const lat = r.latencyMs as Record<string, unknown> | undefined;
  for (const k of ['capture', 'preprocess', 'queue', 'inference', 'postprocess', 'total']) {
    if (typeof lat?.[k] !== 'number') fail(`latencyMs.${k}`);
  }
  if (typeof r.coverage !== 'number') fail('coverage');
  if (!Array.isArray(r.components)) fail('components');
}
