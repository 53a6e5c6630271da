/**
 * better-sqlite3 is an optional dependency (it compiles from source when its prebuilt binary cannot
 * be downloaded, which needs Node's headers): tests that need SQLite skip, naming why, without it.
 */
import { createRequire } from 'node:module';

export function sqliteSkipReason(): string | undefined {
  try {
    // Loading it (not only resolving it) also catches a package whose native build failed.
    createRequire(import.meta.url)('better-sqlite3');
    return undefined;
  } catch (err) {
    return `better-sqlite3 is not usable (${(err as Error).message.split('\n')[0]}); npm_config_nodedir=/usr npm install builds it with Debian's nodejs`;
  }
}
