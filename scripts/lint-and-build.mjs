// `npm test`'s first step: type-aware ESLint and the TypeScript build at the same time (each keeps
// about one core busy for 15-30 s; one after the other was a sixth of npm test's time on 2 cores).
// Output of each is printed whole when it ends, never interleaved; fails if either fails.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';

// Children's raw V8 coverage (test/helpers/child-coverage.ts) that a killed test process never
// collected would otherwise pile up, node internals and all, run after run. The same path as
// CHILD_COVERAGE_ROOT there: this script runs before the build that compiles it.
rmSync(new URL('../.tap/child-coverage', import.meta.url), { recursive: true, force: true });

const run = (name, command, args) =>
  new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], shell: process.platform === 'win32' });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (err) => resolve({ name, code: 1, out: `${out}${err.message}\n` }));
    child.on('close', (code, signal) => resolve({ name, code: code ?? 1, signal, out }));
  });

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const results = await Promise.all([run('lint', npm, ['run', '--silent', 'lint']), run('build', npm, ['run', '--silent', 'build'])]);
let failed = false;
for (const r of results) {
  if (r.out.trim() !== '') process.stdout.write(`-- ${r.name}\n${r.out}`);
  if (r.code !== 0) {
    failed = true;
    process.stderr.write(`npm test: ${r.name} failed (${r.signal ?? `exit ${r.code}`})\n`);
  }
}
process.exit(failed ? 1 : 0);
