import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Write via a temporary file and rename, so a crash never leaves a half-written model behind.
 * `mode` applies from the first byte (the temporary file is created with it), for files that may
 * hold secrets.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, options: { mode?: number } = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, options.mode === undefined ? undefined : { mode: options.mode });
  renameSync(tmp, path);
}
