// Shared by the `lvunet-edge run` process tests (no tests of its own): the compiled CLI as a live
// child process whose output can be awaited line by line.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertResultV1, type ResultV1 } from '../../src/runtime/sinks/index.js';
import { CLI, REPO_ROOT } from '../helpers/paths.js';

export interface RunProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match in stderr (so far or later); rejects after timeoutMs. */
  waitStderr(pattern: RegExp, timeoutMs?: number, from?: number): Promise<RegExpExecArray>;
  /** Exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>;
}

export function startRun(args: readonly string[], env: NodeJS.ProcessEnv = {}): RunProcess {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first`);
  // tap's NODE_OPTIONS (its process-info hook) would load into the worker too and slow every restart.
  const { NODE_OPTIONS: _hooks, ...inherited } = process.env;
  const child = spawn(process.execPath, [CLI, 'run', ...args], { cwd: REPO_ROOT, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const checks = new Set<() => void>();
  child.stdout?.on('data', (b: Buffer) => {
    out += b.toString('utf8');
  });
  child.stderr?.on('data', (b: Buffer) => {
    err += b.toString('utf8');
    for (const c of [...checks]) c();
  });
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitStderr(pattern, timeoutMs = 30_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = pattern.exec(err.slice(from));
          if (!m) return;
          clearTimeout(timer);
          checks.delete(check);
          resolve(m);
        };
        const timer = setTimeout(() => {
          checks.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} on stderr:\n${err.slice(-3000)}`));
        }, timeoutMs);
        checks.add(check);
        check();
      });
    },
  };
}

/** A state folder (demo model, MQTT queue, seq file) for one test; removed at teardown. */
export function stateDir(t: { teardown(fn: () => unknown): void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Stops a run that is still going (SIGKILL after 20 s): a failed test must not leave it behind. */
export async function ensureStopped(p: RunProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
  await p.exited;
  clearTimeout(timer);
}

/** Result lines as `run --sink stdout` prints them, each checked against the result@1 schema. */
export function resultLines(text: string): ResultV1[] {
  return text
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => {
      const v: unknown = JSON.parse(l);
      assertResultV1(v);
      return v;
    });
}
