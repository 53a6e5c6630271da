import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

/**
 * The checkout. Tests run compiled (dist/test/, `npm test`) and helpers are also imported from
 * dist/bench/, so walk up from this file to the directory holding package.json rather than counting
 * levels: files that tsc does not copy (fixtures, .mjs hooks, deploy/) are read from the checkout.
 */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`test/helpers/paths: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

export const REPO_ROOT = repoRoot();
/** Read-only shared material beside the checkout (also present in CI). */
export const SHARED = resolve(REPO_ROOT, '..', 'shared');
export const DATASETS = join(SHARED, 'datasets');
export const KVASIR = join(DATASETS, 'kvasir-seg');
export const BUSI = join(DATASETS, 'busi');
export const WEIGHTS_TSV = join(SHARED, 'reference', 'lvunet-train-weights.tsv');
/** The compiled CLI; `npm test` type-checks first and tests that spawn it build it once. */
export const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
