/**
 * manifest.json: what a model directory holds and how to feed it. The runtime reads it to size and
 * normalise its input, every result cites a file's sha256 from it, and model updates verify files
 * against it. Defined once, with its validator, in src/schemas/manifest.ts (published as
 * docs/schemas/manifest.json).
 */
export { MANIFEST_SCHEMA, manifest, type Manifest, type ManifestFile, type Precision } from '../schemas/manifest.js';

export const MANIFEST_FILE = 'manifest.json';
