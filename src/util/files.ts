import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open as openAsync, rename as renameAsync, rm as rmAsync } from 'node:fs/promises';
import { dirname } from 'node:path';

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface AtomicWriteOptions {
  /** Permission bits of the file (and of a directory created for it: mode with x bits added). Default 0o644. */
  mode?: number;
  /** Permission bits of the parent directory when it has to be created; default from `mode`. */
  dirMode?: number;
  /**
   * Default true. false skips both fsyncs: the file is still never seen half-written, but a power
   * cut may leave the old version (or none) behind. For callers that batch durability themselves.
   */
  durable?: boolean;
}

/**
 * The one way this project replaces a file: write a temporary file beside it, fsync it, rename it
 * over the target, fsync the directory. A crash or power cut at any point leaves either the old
 * file or the new one, never a mix, and once this returns the new one survives a power cut (the
 * directory fsync makes the rename itself durable). The temporary name is unique per call, so two
 * writers never share one; on failure it is removed and the error names the target.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): void {
  const mode = options.mode ?? 0o644;
  const durable = options.durable ?? true;
  const dir = dirname(path);
  // r -> rx on the directory, so a 0600 file gets a 0700 directory and a 0644 one a 0755 directory.
  mkdirSync(dir, { recursive: true, mode: options.dirMode ?? (mode | ((mode & 0o444) >> 2)) });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw Object.assign(new Error(`writing ${path}: ${(err as Error).message}`, { cause: err }), { code: (err as NodeJS.ErrnoException).code });
  }
  if (durable) fsyncDir(dir);
}

/**
 * writeFileAtomic on the libuv thread pool, for writers that must not stall the JS thread on a slow
 * SD card. `stillWanted` is asked just before the rename: false (a newer version was written
 * meanwhile) removes the temporary file instead, and the promise resolves false.
 */
export async function writeFileAtomicAsync(
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions & { stillWanted?: () => boolean } = {},
): Promise<boolean> {
  const mode = options.mode ?? 0o644;
  const durable = options.durable ?? true;
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const fh = await openAsync(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    if (options.stillWanted && !options.stillWanted()) {
      await rmAsync(tmp, { force: true });
      return false;
    }
    await renameAsync(tmp, path);
  } catch (err) {
    await rmAsync(tmp, { force: true });
    throw Object.assign(new Error(`writing ${path}: ${(err as Error).message}`, { cause: err }), { code: (err as NodeJS.ErrnoException).code });
  }
  if (durable) {
    const dir = await openAsync(dirname(path), 'r').catch(() => undefined);
    if (dir) await dir.sync().catch(() => undefined).finally(() => dir.close());
  }
  return true;
}

/** Makes renames and unlinks in `dir` durable. Some filesystems refuse fsync on a directory (EINVAL/EISDIR/EPERM): nothing more can be done there. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') throw err;
  } finally {
    closeSync(fd);
  }
}

/** Temporary files writeFileAtomic leaves behind if the process dies between write and rename. */
export const ATOMIC_TEMP = /\.tmp-\d+-[0-9a-f]{8}$/;
