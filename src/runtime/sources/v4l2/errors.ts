/**
 * Errors of the V4L2 capture path. Native failures arrive as plain Errors carrying `code`, `path`,
 * `syscall` and `errno` (native/core/v4l2_device.h); V4l2Error gives them a class and a JS stack so
 * callers can `instanceof`-test them and see where the call was made.
 */

/** Shared with native/core/v4l2_device.h (lvunet::codes), plus the TypeScript-side codes. */
export type V4l2ErrorCode =
  | 'ERR_V4L2_OPEN'
  | 'ERR_V4L2_NOT_V4L2'
  | 'ERR_V4L2_IOCTL'
  | 'ERR_V4L2_MMAP'
  | 'ERR_V4L2_POLL'
  | 'ERR_V4L2_STATE'
  | 'ERR_V4L2_NOT_CAPTURE'
  | 'ERR_V4L2_NEGOTIATION'
  | 'ERR_V4L2_CONTROL'
  | 'ERR_V4L2_REOPEN'
  | 'ERR_V4L2_CLOSED'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_NATIVE';

export interface V4l2ErrorDetails {
  readonly path?: string;
  /** The system call or ioctl that failed: "open", "VIDIOC_DQBUF". */
  readonly syscall?: string;
  /** Symbolic errno: "ENODEV". */
  readonly errno?: string;
  readonly cause?: unknown;
}

export class V4l2Error extends Error {
  readonly code: V4l2ErrorCode;
  readonly path?: string;
  readonly syscall?: string;
  readonly errno?: string;

  constructor(code: V4l2ErrorCode, message: string, details: V4l2ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'V4l2Error';
    this.code = code;
    this.path = details.path;
    this.syscall = details.syscall;
    this.errno = details.errno;
  }
}

interface NativeErrorShape {
  message: string;
  code?: unknown;
  path?: unknown;
  syscall?: unknown;
  errno?: unknown;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * Re-raises a native failure as a V4l2Error whose stack is `site`'s (captured before the native
 * call, as sharp does), keeping the native message and context.
 */
export function fromNative(err: unknown, site: Error): V4l2Error {
  if (err instanceof V4l2Error) return err;
  const e: NativeErrorShape = err instanceof Error ? (err as Error & NativeErrorShape) : { message: String(err) };
  const out = new V4l2Error((str(e.code) as V4l2ErrorCode | undefined) ?? 'ERR_NATIVE', e.message, {
    path: str(e.path),
    syscall: str(e.syscall),
    errno: str(e.errno),
    cause: err,
  });
  if (site.stack) out.stack = `V4l2Error: ${e.message}\n${site.stack.split('\n').slice(1).join('\n')}`;
  return out;
}

/**
 * errnos after which the open file descriptor is useless and the node must be reopened: the USB
 * device went away (ENODEV, ENXIO), or the transfer failed hard (EIO, EPIPE: UVC stalls that need
 * a fresh open to recover).
 */
const LOST_DEVICE_ERRNOS = new Set(['ENODEV', 'ENXIO', 'EIO', 'EPIPE', 'ENOLINK', 'EBADF']);

export function isDeviceLost(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const errno = (err as { errno?: unknown }).errno;
  return typeof errno === 'string' && LOST_DEVICE_ERRNOS.has(errno);
}
