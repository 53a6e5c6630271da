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

/** The directory the children of test process `pid` write their raw V8 coverage to. */
export function childCoverageDir(pid: number): string {
  return join(REPO_ROOT, '.tap', 'child-coverage', String(pid));
}

interface ScriptCoverage {
  readonly url: string;
}

interface V8CoverageFile {
  result: ScriptCoverage[];
  'source-map-cache'?: Record<string, unknown>;
}

/**
 * tap's own rule for one test process (@tapjs/run sets these variables for it): a script is
 * covered when it is in the project, not under its node_modules, and not one of the files
 * `coverage-exclude` (and the test files) expand to.
 */
export function coveredByTap(env: NodeJS.ProcessEnv): (path: string) => boolean {
  const excluded = new Set((env._TAPJS_PROCESSINFO_COV_EXCLUDE_FILES_ ?? '').split('\n').filter((f) => f !== ''));
  const nodeModules = join(REPO_ROOT, 'node_modules') + sep;
  return (path) => path.startsWith(REPO_ROOT + sep) && !path.startsWith(nodeModules) && !excluded.has(path);
}

/**
 * Moves the children's coverage from `dir` into `outDir`, keeping only scripts `covered` accepts,
 * and removes `dir`. A file a child is still writing (it outlived this process) is not valid JSON
 * yet: it is left out rather than failing the test process at exit.
 */
export function collectChildCoverage(dir: string, outDir: string, covered: (path: string) => boolean): { files: number; scripts: number } {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return { files: 0, scripts: 0 };
  }
  let files = 0;
  let scripts = 0;
  for (const name of names) {
    let cov: V8CoverageFile;
    try {
      cov = JSON.parse(readFileSync(join(dir, name), 'utf8')) as V8CoverageFile;
    } catch {
      continue;
    }
    const keep = (url: string): boolean => url.startsWith('file:') && covered(fileURLToPath(url));
    const result = cov.result.filter((s) => keep(s.url));
    if (result.length === 0) continue;
    const maps = cov['source-map-cache'] ?? {};
    const kept: V8CoverageFile = { result, 'source-map-cache': Object.fromEntries(Object.entries(maps).filter(([url]) => keep(url))) };
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, `child-${name}`), JSON.stringify(kept));
    files++;
    scripts += result.length;
  }
  rmSync(dir, { recursive: true, force: true });
  return { files, scripts };
}
