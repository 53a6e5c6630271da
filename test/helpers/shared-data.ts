/**
 * Tests that read `../shared` (datasets, the paper code's weight names) skip, with the reason, when it
 * is not beside the checkout: a missing dataset must never read as a failure of the code, nor as a pass.
 */
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import t from 'tap';

import { REPO_ROOT } from './paths.js';

/**
 * Call at the top of a test file, before anything reads the paths: skips the whole file when one is
 * missing. tap's output goes to a pipe, which Node writes synchronously on Linux, so the skip is on
 * record before the exit, and nothing after this call runs.
 */
export function requireShared(...paths: string[]): void {
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length === 0) return;
  const names = missing.map((p) => relative(REPO_ROOT, p)).join(', ');
  t.plan(0, `skipped: ${names} not found (the read-only shared data beside the checkout; README "Tests")`);
  process.exit(0);
}

/**
 * For files where only some tests read `../shared`: the `skip` option of those tests, false when
 * everything is there (`t.test(name, { skip: sharedSkip(WEIGHTS_TSV) }, fn)`).
 */
export function sharedSkip(...paths: string[]): string | false {
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length === 0) return false;
  return `${missing.map((p) => relative(REPO_ROOT, p)).join(', ')} not found (the read-only shared data beside the checkout)`;
}
