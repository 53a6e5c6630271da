// `npm run build` starts from an empty dist/: tsc never deletes the output of a source that was moved
// or removed, and `npm test` runs every dist/test/**/*.test.js, so a stale compiled test would run
// (a test moved to the soak tier would still run in the fast one).
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

rmSync(fileURLToPath(new URL('../dist/', import.meta.url)), { recursive: true, force: true });
