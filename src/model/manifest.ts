/**
 * manifest.json: what a model directory holds and how to feed it. The runtime reads it to size and
 * normalise its input, every result cites a file's sha256 from it, and model updates verify files
 * against it.
 */
import type { Preprocessing } from './preprocessing.js';

export const MANIFEST_SCHEMA = 'lvunet-edge/manifest@1';
export const MANIFEST_FILE = 'manifest.json';

export type Precision = 'fp32' | 'fp16' | 'int8';

export interface ManifestFile {
  readonly file: string;
  readonly mode: 'training' | 'deployment';
  readonly precision: Precision;
  readonly sha256: string;
  readonly bytes: number;
  readonly opset: number;
  readonly params: number;
  readonly macs: number;
}

export interface Manifest {
  readonly schema: typeof MANIFEST_SCHEMA;
  readonly name: string;
  readonly created: string;
  readonly producer: string;
  readonly architecture: string;
  readonly input: {
    readonly name: string;
    readonly shape: readonly (number | string)[];
    readonly dtype: 'float32';
    readonly layout: 'NCHW';
    readonly preprocessing: Preprocessing;
  };
  readonly output: {
    readonly name: string;
    readonly shape: readonly (number | string)[];
    readonly meaning: string;
    readonly threshold: number;
  };
  readonly lambda: number;
  readonly weights: { readonly source: string; readonly sha256: string | null };
  readonly files: readonly ManifestFile[];
  /** How the weights were trained (written by `model release`; absent for built or seeded models). */
  readonly training?: Readonly<Record<string, unknown>>;
  /** Metric table on the run's held-out test split (written by `model release`). */
  readonly evaluation?: Readonly<Record<string, unknown>>;
  /** Precisions that were produced but failed their agreement gate, with their figures. */
  readonly rejected?: readonly Readonly<Record<string, unknown>>[];
}
