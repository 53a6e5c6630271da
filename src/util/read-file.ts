/**
 * Reading a file the process depends on (a model, the config, a trusted key) without letting the
 * file decide how long that takes or how much memory it costs: only a regular file is read (a
 * FIFO would block the whole process, SIGTERM handling included, until a writer came; /dev/zero
 * would be read until memory ran out), and its size is checked before a byte is read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

export class FileReadError extends Error {
  override readonly name = 'FileReadError';
  /** ENOENT and the like from open(2); 'ENOTREG' (not a regular file) or 'EFBIG' (over the limit). */
  readonly code: string;
  /** Why, without the path: callers put it in their own error that names the file. */
  readonly reason: string;

  constructor(
    readonly path: string,
    code: string,
    reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.code = code;
    this.reason = reason;
  }
}

/** What kind of file `st` is, for messages ("a FIFO", "a character device", ...). */
export function fileKind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return 'not a regular file';
}

/**
 * The whole of `path`, a regular file of at most `maxBytes`. Opened non-blocking (so opening a
 * FIFO returns at once) and checked on the open descriptor, so a rename in between cannot slip
 * another file in. Throws FileReadError.
 */
export function readRegularFileSync(path: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new FileReadError(path, e.code ?? 'EIO', e.code === 'ENOENT' ? 'not found' : `cannot open: ${e.message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileReadError(path, 'ENOTREG', `is ${fileKind(st)}, not a regular file; refusing to read it`);
    if (st.size > maxBytes) throw new FileReadError(path, 'EFBIG', `is ${st.size} bytes, over the limit of ${maxBytes} bytes`);
    const bytes = Buffer.allocUnsafe(st.size);
    let at = 0;
    while (at < st.size) {
      const n = readSync(fd, bytes, at, st.size - at, at);
      if (n === 0) throw new FileReadError(path, 'EIO', `shrank while being read (${at} of ${st.size} bytes)`);
      at += n;
    }
    return bytes;
  } catch (err) {
    if (err instanceof FileReadError) throw err;
    throw new FileReadError(path, (err as NodeJS.ErrnoException).code ?? 'EIO', `cannot read: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}
