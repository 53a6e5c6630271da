/**
 * `lvunet-edge/manifest@1` (manifest.json): what a model directory or signed bundle holds and how to
 * feed it. The runtime reads it to size and normalise its input, every result cites a file's sha256
 * from it, and model updates verify files against it. Objects are open: the toolchain adds
 * provenance (a file's `source`, `fp16`, `quantization`, `agreement`) that readers may ignore.
 * The bundle's own sections (`golden`, `release`) and their install-time rules live in
 * src/fleet/bundles/format.ts.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Count, Int, Num, OneOf, Sha256, Str, compile, type Immutable } from './kit.js';

export const MANIFEST_SCHEMA = 'lvunet-edge/manifest@1';

export const PRECISIONS = ['fp32', 'fp16', 'int8'] as const;
export type Precision = (typeof PRECISIONS)[number];

const Rgb = (description: string) => Type.Tuple([Num(), Num(), Num()], { description });

/** The one definition of LV-UNet input preprocessing as written into manifests (values: src/model/preprocessing.ts). */
export const PreprocessingSchema = Type.Object({
  colorOrder: Type.Literal('RGB', { description: 'Channel order of the model input.' }),
  layout: Type.Literal('NCHW', { description: 'Memory layout of the model input tensor.' }),
  scale: Num({ exclusiveMinimum: 0, description: 'Pixel values are divided by this before normalisation (8-bit input -> [0, 1]).' }),
  mean: Rgb('Per-channel mean, RGB, subtracted after scaling.'),
  std: Rgb('Per-channel standard deviation, RGB.'),
  resize: Type.Literal('bilinear', { description: 'How a frame of another size reaches the model size.' }),
});
export type Preprocessing = Immutable<Static<typeof PreprocessingSchema>>;

const Dims = () => Type.Array(Type.Union([Int({ minimum: 0 }), Str(64)]), { description: 'Tensor shape; a string names a symbolic dimension.' });

export const ManifestFileSchema = Type.Object({
  file: Str(128, { description: 'A plain file name in the same directory.' }),
  mode: OneOf(['training', 'deployment'] as const),
  precision: OneOf(PRECISIONS),
  sha256: Sha256(),
  bytes: Count(),
  opset: Int({ minimum: 1 }),
  params: Count(),
  macs: Count(),
});
export type ManifestFile = Immutable<Static<typeof ManifestFileSchema>>;

const Section = (description?: string) => Type.Record(Type.String(), Type.Unknown(), description ? { description } : {});

export const ManifestSchema = Type.Object(
  {
    schema: Type.Literal(MANIFEST_SCHEMA),
    name: Str(256),
    created: Type.String({ description: 'ISO 8601 time the directory was produced.' }),
    producer: Str(256),
    architecture: Type.String(),
    input: Type.Object({
      name: Str(256),
      shape: Dims(),
      dtype: Type.Literal('float32'),
      layout: Type.Literal('NCHW'),
      preprocessing: PreprocessingSchema,
    }),
    output: Type.Object({
      name: Str(256),
      shape: Dims(),
      meaning: Type.String(),
      threshold: Num({ minimum: 0, maximum: 1, description: 'Foreground is sigmoid(logit) > threshold.' }),
    }),
    lambda: Num({ description: 'Deep-training slope the deployment graph was fused with.' }),
    weights: Type.Object({ source: Type.String(), sha256: Type.Union([Sha256(), Type.Null()]) }),
    files: Type.Array(ManifestFileSchema, { minItems: 1 }),
    training: Type.Optional(Section('How the weights were trained (written by `model release`; absent for built or seeded models).')),
    evaluation: Type.Optional(Section("Metric table on the run's held-out test split (written by `model release`).")),
    rejected: Type.Optional(Type.Array(Section(), { description: 'Precisions that were produced but failed their agreement gate, with their figures.' })),
  },
  { title: MANIFEST_SCHEMA, description: 'manifest.json of a model directory or bundle.' },
);
export type Manifest = Immutable<Static<typeof ManifestSchema>>;
export const manifest = compile(ManifestSchema);
