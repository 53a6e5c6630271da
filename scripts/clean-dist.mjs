// Before `tsc`: removes compiled files in dist/ whose TypeScript source no longer exists. tsc never
// deletes the output of a moved or removed source, and `npm test` runs every dist/test/**/*.test.js,
// so a stale compiled test would still run (a test moved to the soak tier would run in the fast one
// too). Only orphans go: wiping dist/ would pull files from under a process running from it (a
// trainer, a soak run).
import { readdirSync, rmSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

function walk(dir) {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      walk(path);
      continue;
    }
    const m = /^(.*)\.js(\.map)?$/.exec(e.name);
    if (!m) continue;
    const source = join(root, relative(dist, dir), `${m[1]}.ts`);
    if (!existsSync(source)) rmSync(path, { force: true });
  }
}

walk(dist);
