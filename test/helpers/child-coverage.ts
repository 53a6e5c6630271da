/**
 * V8 coverage of the processes a test process starts, filtered the way tap filters its own.
 *
 * Children run without tap's process-info hook (child-env.ts says why) and write V8's own coverage
 * (NODE_V8_COVERAGE) instead. That file holds every script the child ran: node's internals,
 * node_modules, test helpers. tap applies `coverage-exclude` when its hook records, not when it
 * reports, so written as they are those files put test helpers into the figures and about 200 MB
 * into `.tap/coverage`. Each test process therefore gives its children a directory of their own
 * and, when it exits, keeps of each file only the repository's covered scripts (with their source
 * maps) and moves that into `.tap/coverage`, where tap reports from.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { REPO_ROOT } from './paths.js';

/** Where tap reads coverage from. */
export const TAP_COVERAGE_DIR = join(REPO_ROOT, '.tap', 'coverage');

/** Where every test process's children write raw V8 coverage; emptied before each `npm test`. */
export const CHILD_COVERAGE_ROOT = join(REPO_ROOT, '.tap', 'child-coverage');

// Pids are reused: a directory a killed test process never collected must not be taken for this one's.
const PROCESS_TAG = `${process.pid}-${Date.now().toString(36)}-${Math.floor(Math.random() * 0x1000000).toString(36)}`;

/** The directory the children of this test process write their raw V8 coverage to. */
export function childCoverageDir(): string {
  return join(CHILD_COVERAGE_ROOT, PROCESS_TAG);
}

interface ScriptCoverage {
  readonly url: string;
}

interface V8CoverageFile {
  result: ScriptCoverage[];
  'source-map-cache'?: Record<string, unknown>;
}

const list = (value: string | undefined): string[] => (value ?? '').trim().split('\n').filter((f) => f !== '');

/** A `/source/flags` string as @tapjs/processinfo writes its exclusion patterns, or undefined. */
function parsePattern(value: string | undefined): RegExp | undefined {
  const parsed = value?.match(/^\/(.*)\/([a-z]*)$/);
  if (!parsed) return undefined;
  try {
    return new RegExp(parsed[1], parsed[2]);
  } catch {
    return undefined;
  }
}

/**
 * tap's own rule for one test process (the variables @tapjs/run sets, read as
 * @tapjs/processinfo's register-coverage reads them): a script outside the project is never
 * covered; with a coverage map (_TAPJS_PROCESSINFO_COV_FILES_) only the files it lists are;
 * otherwise every file except those `coverage-exclude` and the test list expand to
 * (_TAPJS_PROCESSINFO_COV_EXCLUDE_FILES_) and those the exclusion pattern matches
 * (_TAPJS_PROCESSINFO_COV_EXCLUDE_, by default node_modules).
 */
export function coveredByTap(env: NodeJS.ProcessEnv): (path: string) => boolean {
  const only = new Set(list(env._TAPJS_PROCESSINFO_COV_FILES_));
  const excluded = new Set(list(env._TAPJS_PROCESSINFO_COV_EXCLUDE_FILES_));
  const pattern = parsePattern(env._TAPJS_PROCESSINFO_COV_EXCLUDE_) ?? /[\\/]node_modules[\\/]/;
  return (path) => {
    if (!path.startsWith(REPO_ROOT + sep)) return false;
    if (only.size > 0) return only.has(path);
    return !excluded.has(path) && !pattern.test(path);
  };
}

/**
 * Moves the children's coverage from `dir` into `outDir`, keeping only scripts `covered` accepts,
 * and removes `dir`. It runs in an exit listener, where a throw would fail a test process whose
 * tests passed: a file a child is still writing (it outlived this process, so not valid JSON yet),
 * one that is not V8 coverage, or one that cannot be written (a full disk) is left out and counted.
 */
export function collectChildCoverage(dir: string, outDir: string, covered: (path: string) => boolean): { files: number; scripts: number; skipped: number } {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return { files: 0, scripts: 0, skipped: 0 };
  }
  let files = 0;
  let scripts = 0;
  let skipped = 0;
  const keep = (url: string): boolean => url.startsWith('file:') && covered(fileURLToPath(url));
  for (const name of names) {
    try {
      const cov = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Partial<V8CoverageFile>;
      if (!Array.isArray(cov.result)) throw new Error('not V8 coverage');
      const result = cov.result.filter((s) => keep(s.url));
      if (result.length === 0) continue;
      const maps = cov['source-map-cache'] ?? {};
      const kept: V8CoverageFile = { result, 'source-map-cache': Object.fromEntries(Object.entries(maps).filter(([url]) => keep(url))) };
      mkdirSync(outDir, { recursive: true });
      writeFileSync(join(outDir, `child-${name}`), JSON.stringify(kept));
      files++;
      scripts += result.length;
    } catch {
      skipped++;
    }
  }
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // Left for the next `npm test`, which empties CHILD_COVERAGE_ROOT before tap starts.
  }
  return { files, scripts, skipped };
}
