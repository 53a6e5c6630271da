/**
 * `lvunet-edge/result@1`: what one processed frame says. The same object is a jsonl line, a stdout
 * line, an IPC message from the worker and (with `device` and `seq`, see fleet.ts) an MQTT result.
 * A change to a field's meaning needs a new version; adding an optional field does not.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Closed, Count, Int, IsoTime, Num, Sha256, Str, compile } from './kit.js';

export const RESULT_SCHEMA = 'lvunet-edge/result@1';

const Ms = (description: string) => Num({ minimum: 0, description });

/** Milliseconds spent in each stage; `total` runs from capture to the end of postprocessing. */
export const StageLatenciesSchema = Closed({
  capture: Ms('Capture to preprocess start (time waiting for the JS thread).'),
  preprocess: Ms('Preprocessing (decode, resize, normalise).'),
  queue: Ms('Preprocess end to inference start (time waiting for the model).'),
  inference: Ms('Model run.'),
  postprocess: Ms('Inference end to postprocess end (waiting plus postprocessing).'),
  total: Ms('Capture to the end of postprocessing.'),
});
export type StageLatencies = Static<typeof StageLatenciesSchema>;

export const BBoxSchema = Closed(
  { x: Count(), y: Count(), width: Count(), height: Count() },
  { description: 'Inclusive pixel bounds: pixels x .. x+width-1, y .. y+height-1.' },
);
export type BBox = Static<typeof BBoxSchema>;

export const ComponentSchema = Closed({
  area: Count('Pixels.'),
  areaPercent: Num({ minimum: 0, maximum: 100, description: '100 * area / (width * height), 4 decimals.' }),
  bbox: BBoxSchema,
  centroid: Closed({ x: Num(), y: Num() }, { description: 'Mean pixel coordinate (pixel (x, y) sits at x, y), 2 decimals.' }),
  meanProbability: Type.Optional(
    Num({ minimum: 0, maximum: 1, description: "Mean probability over the component's pixels, 4 decimals; only when probabilities were given." }),
  ),
});
export type Component = Static<typeof ComponentSchema>;

export const ContourSchema = Closed({
  component: Count('Index into the components array this contour belongs to.'),
  points: Type.Array(Int({ minimum: 0 }), { description: 'Flat [x0, y0, x1, y1, ...] pixel coordinates.' }),
});
export type Contour = Static<typeof ContourSchema>;

const RleSize = Type.Tuple([Int({ minimum: 1 }), Int({ minimum: 1 })], { description: '[height, width], as COCO writes it.' });

/** COCO run-length encoding (pycocotools maskApi): column-major runs, background first. */
export const RleSchema = Closed(
  { size: RleSize, counts: Type.Array(Count(), { description: 'Alternating run lengths, starting with background; they sum to height*width.' }) },
  { description: 'COCO RLE with uncompressed counts.' },
);
export type Rle = Static<typeof RleSchema>;

/** The same runs with counts in COCO's compressed string form (rleToString). */
export const RleStringSchema = Closed(
  { size: RleSize, counts: Type.String({ description: "COCO's compressed counts string (maskApi rleToString)." }) },
  { description: 'COCO RLE with compressed string counts.' },
);
export type RleString = Static<typeof RleStringSchema>;

const FrameSchema = Closed({
  id: Str(256),
  seq: Count("The source's frame counter (restarts with the worker)."),
  stem: Type.Optional(Str(256, { description: 'Source file stem where the frame came from a named file.' })),
  width: Int({ minimum: 1 }),
  height: Int({ minimum: 1 }),
  format: Str(32),
});

/** The model that produced a result, by the sha256 of the file that served. */
export const ModelRefSchema = Closed({ sha256: Sha256(), precision: Str(32) });
export type ModelRef = Static<typeof ModelRefSchema>;

/** The result@1 fields, shared by the local line and the fleet message. */
export const resultProperties = {
  schema: Type.Literal(RESULT_SCHEMA),
  frame: FrameSchema,
  model: ModelRefSchema,
  provider: Str(64, { description: 'The execution provider that ran the model (the first active one).' }),
  captureTime: IsoTime('ISO 8601, UTC.'),
  completionTime: IsoTime('ISO 8601, UTC.'),
  latencyMs: StageLatenciesSchema,
  coverage: Num({ minimum: 0, maximum: 1, description: 'Foreground fraction of the frame-size mask.' }),
  components: Type.Array(ComponentSchema, { description: 'Frame-size connected components, largest first.' }),
  droppedComponents: Count('Components not reported (below min_area or beyond max_components).'),
  contours: Type.Optional(Type.Array(ContourSchema, { description: 'contours[i] outlines components[i], in frame pixels.' })),
  rle: Type.Optional(
    Type.Union([RleSchema, RleStringSchema], {
      description: 'COCO run-length encoding of the frame-size mask: size [height, width], column-major counts.',
    }),
  ),
};

export const ResultV1Schema = Closed(resultProperties, {
  title: RESULT_SCHEMA,
  description: 'One processed frame: a jsonl/stdout line of `lvunet-edge run`.',
});
export type ResultV1 = Static<typeof ResultV1Schema>;
export const resultV1 = compile(ResultV1Schema);

/** Throws a TypeError naming every missing or mistyped field; for consumers and tests. */
export function assertResultV1(value: unknown): asserts value is ResultV1 {
  const errors = resultV1.errors(value);
  if (errors.length > 0) {
    throw new TypeError(`not a ${RESULT_SCHEMA} result: ${errors.slice(0, 10).map((e) => `field '${e.replace(': ', "': ")}`).join('; ')}`);
  }
}
