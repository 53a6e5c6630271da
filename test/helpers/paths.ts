import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Read-only shared material beside the checkout (also present in CI). */
export const SHARED = resolve(REPO_ROOT, '..', 'shared');
export const DATASETS = join(SHARED, 'datasets');
export const KVASIR = join(DATASETS, 'kvasir-seg');
export const BUSI = join(DATASETS, 'busi');
export const WEIGHTS_TSV = join(SHARED, 'reference', 'lvunet-train-weights.tsv');
/** The compiled CLI; `npm test` type-checks first and tests that spawn it build it once. */
export const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
