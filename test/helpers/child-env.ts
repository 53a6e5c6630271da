import { childCoverageDir } from './child-coverage.js';

const PROCESSINFO_ENV = /^_TAPJS_PROCESSINFO_/;

/**
 * The environment of a child process a test process starts (the CLI, a supervisor's worker, a
 * broker): `env` without tap's process-info hook.
 *
 * tap loads `@tapjs/processinfo` into every test process and, through process-on-spawn, into every
 * process those start. On Node 20 the hook routes each module load through an off-thread loader:
 * a CLI start cost twice the CPU with it (test/cli/run.test.js: 9.9 CPU-s plain, 20.6 with the hook
 * in its children, coverage off). Children get no hook; while tap collects coverage they write
 * V8's own coverage instead (NODE_V8_COVERAGE: the format the hook writes, source maps included)
 * into a directory of this process's, which child-env-hook.ts filters into the one tap reports
 * from when this process exits (child-coverage.ts), so code that runs only in children stays in
 * the figures.
 */
export function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) if (!PROCESSINFO_ENV.test(key)) out[key] = value;
  const options = splitNodeOptions(env.NODE_OPTIONS ?? '').filter((o) => !o.includes('@tapjs/processinfo'));
  if (options.length === 0) delete out.NODE_OPTIONS;
  else out.NODE_OPTIONS = options.join(' ');
  if (env._TAPJS_PROCESSINFO_COVERAGE_ === '1' && out.NODE_V8_COVERAGE === undefined) {
    out.NODE_V8_COVERAGE = childCoverageDir();
  }
  return out;
}

/** NODE_OPTIONS split at spaces outside double quotes (tap quotes its --import=file:// URL). */
function splitNodeOptions(value: string): string[] {
  return value.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}
