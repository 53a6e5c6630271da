/**
 * Where bundle files come from: a local directory or an http(s) base URL. Every read is bounded (size
 * and time) and streamed, so a hostile or broken server can neither fill the disk nor hang an update.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, type FileHandle } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isAbsolute, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BundleError, reasonOf } from './errors.js';

export interface FetchLimits {
  /** Largest single file accepted, whatever the manifest says. */
  readonly maxFileBytes: number;
  /** Largest bundle accepted (all files together). */
  readonly maxTotalBytes: number;
  /** A request that has not finished by then is aborted. */
  readonly requestTimeoutMs: number;
  /** A connection that sends nothing for this long is aborted (a stalled server). */
  readonly idleTimeoutMs: number;
  readonly maxRedirects: number;
}

export const DEFAULT_FETCH_LIMITS: FetchLimits = {
  maxFileBytes: 512 * 1024 * 1024,
  maxTotalBytes: 1024 * 1024 * 1024,
  requestTimeoutMs: 10 * 60_000,
  idleTimeoutMs: 30_000,
  maxRedirects: 5,
};

export interface Expected {
  /** Exact size when known (from the signed manifest), otherwise only `limit` applies. */
  readonly bytes?: number;
  readonly sha256?: string;
  readonly limit: number;
}

export interface Fetched {
  readonly bytes: number;
  readonly sha256: string;
}

export interface BundleSource {
  /** What to print for a file: its URL or path. */
  locate(rel: string): string;
  /** Streams `rel` to `dest` (or only hashes it when dest is undefined), checking size and hash on the way. */
  fetch(rel: string, expected: Expected, dest?: string): Promise<Fetched & { data?: Buffer }>;
  /** Reads a small file (manifest, signature) into memory. */
  read(rel: string, limit: number): Promise<Buffer>;
  /** Every regular file's relative path (posix), when the source can be listed (a directory can, HTTP cannot). */
  list?(): Promise<string[]>;
}

function isHttpUrl(spec: string): boolean {
  return /^https?:\/\//i.test(spec);
}

export function openSource(spec: string, limits: FetchLimits = DEFAULT_FETCH_LIMITS): BundleSource {
  if (isHttpUrl(spec)) return new HttpSource(spec, limits);
  const dir = spec.startsWith('file:') ? fileURLToPath(spec) : isAbsolute(spec) ? spec : resolve(spec);
  return new DirSource(dir);
}

/**
 * Consumes chunks, counting and hashing them, writing them to `sink` when given. Oversize and
 * hash/size mismatches are step 'hash' for `rel` (the signed manifest disagrees with the bytes);
 * read errors are step 'fetch' for `where` (the transport failed).
 */
async function consume(
  chunks: AsyncIterable<Buffer>,
  rel: string,
  where: string,
  expected: Expected,
  sink: ((chunk: Buffer) => Promise<void>) | undefined,
  keep: boolean,
): Promise<Fetched & { data?: Buffer }> {
  const hash = createHash('sha256');
  const kept: Buffer[] = [];
  let n = 0;
  const max = Math.min(expected.limit, expected.bytes ?? Infinity);
  try {
    for await (const chunk of chunks) {
      n += chunk.length;
      if (n > max) {
        if (expected.bytes !== undefined && n > expected.bytes && expected.bytes <= expected.limit) {
          throw new BundleError('hash', `larger than the ${expected.bytes} bytes manifest.json lists`, rel);
        }
        throw new BundleError('fetch', `larger than the limit of ${expected.limit} bytes`, where);
      }
      hash.update(chunk);
      if (keep) kept.push(chunk);
      if (sink) await sink(chunk);
    }
  } catch (err) {
    if (err instanceof BundleError) throw err;
    throw new BundleError('fetch', `read failed after ${n} bytes: ${reasonOf(err)}`, where, { cause: err });
  }
  const digest = hash.digest('hex');
  if (expected.bytes !== undefined && n !== expected.bytes) {
    throw new BundleError('hash', `${n} bytes, manifest.json lists ${expected.bytes}`, rel);
  }
  if (expected.sha256 !== undefined && digest !== expected.sha256) {
    throw new BundleError('hash', `sha256 ${digest} does not match manifest.json (${expected.sha256})`, rel);
  }
  return keep ? { bytes: n, sha256: digest, data: Buffer.concat(kept) } : { bytes: n, sha256: digest };
}

async function withSink<T>(dest: string | undefined, body: (sink: ((c: Buffer) => Promise<void>) | undefined) => Promise<T>): Promise<T> {
  if (dest === undefined) return body(undefined);
  let handle: FileHandle;
  try {
    // 'wx': a staging file that already exists means two installs share a staging dir; never merge them.
    handle = await open(dest, 'wx', 0o644);
  } catch (err) {
    throw new BundleError('fetch', `cannot create staging file: ${reasonOf(err)}`, dest, { cause: err });
  }
  try {
    const result = await body(async (chunk) => {
      await handle.write(chunk);
    });
    // A model file that is not on disk when `current` flips is exactly the half-installed state we refuse.
    await handle.sync();
    return result;
  } finally {
    await handle.close();
  }
}

class DirSource implements BundleSource {
  constructor(readonly dir: string) {}

  locate(rel: string): string {
    return join(this.dir, rel);
  }

  async fetch(rel: string, expected: Expected, dest?: string): Promise<Fetched & { data?: Buffer }> {
    const path = this.locate(rel);
    const st = await lstat(path).catch((err: unknown) => {
      throw new BundleError('fetch', `cannot read: ${reasonOf(err)}`, path, { cause: err });
    });
    if (!st.isFile()) throw new BundleError('hash', 'not a regular file', rel);
    return withSink(dest, (sink) => consume(createReadStream(path), rel, path, expected, sink, false));
  }

  async read(rel: string, limit: number): Promise<Buffer> {
    const path = this.locate(rel);
    const st = await lstat(path).catch((err: unknown) => {
      throw new BundleError('fetch', `cannot read: ${reasonOf(err)}`, path, { cause: err });
    });
    if (!st.isFile()) throw new BundleError('fetch', 'not a regular file', path);
    const r = await consume(createReadStream(path), rel, path, { limit }, undefined, true);
    return r.data!;
  }

  async list(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.dir, rel), { withFileTypes: true });
      } catch (err) {
        throw new BundleError('fetch', `cannot list bundle directory: ${reasonOf(err)}`, join(this.dir, rel), { cause: err });
      }
      for (const e of entries) {
        const p = rel === '' ? e.name : posix.join(rel, e.name);
        if (e.isDirectory()) await walk(p);
        else out.push(e.isFile() ? p : `${p} (not a regular file)`);
      }
    };
    await walk('');
    return out.sort();
  }
}

class HttpSource implements BundleSource {
  private readonly base: URL;

  constructor(
    base: string,
    private readonly limits: FetchLimits,
  ) {
    // new URL('x', 'http://h/a/b') drops 'b'; the bundle URL names a directory, so keep it.
    this.base = new URL(base.endsWith('/') ? base : `${base}/`);
  }

  locate(rel: string): string {
    return new URL(rel.split('/').map(encodeURIComponent).join('/'), this.base).href;
  }

  async fetch(rel: string, expected: Expected, dest?: string): Promise<Fetched & { data?: Buffer }> {
    const url = this.locate(rel);
    return this.get(url, expected, (res) => withSink(dest, (sink) => consume(res, rel, url, expected, sink, false)));
  }

  async read(rel: string, limit: number): Promise<Buffer> {
    const url = this.locate(rel);
    const r = await this.get(url, { limit }, (res) => consume(res, rel, url, { limit }, undefined, true));
    return r.data!;
  }

  private async get<T>(url: string, expected: Expected, body: (res: IncomingMessage) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.limits.requestTimeoutMs;
    let current = url;
    for (let hop = 0; ; hop++) {
      const { res, stopped } = await this.request(current, deadline);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (hop >= this.limits.maxRedirects) throw new BundleError('fetch', `more than ${this.limits.maxRedirects} redirects`, url);
        const next = new URL(res.headers.location, current);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw new BundleError('fetch', `redirected to ${next.href}, which is not http(s)`, url);
        }
        current = next.href;
        continue;
      }
      const where = current === url ? url : `${url} (redirected to ${current})`;
      if (status !== 200) {
        res.resume();
        throw new BundleError('fetch', `HTTP ${status} ${res.statusMessage ?? ''}`.trim(), where);
      }
      const length = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length']);
      // Refuse before reading a byte: a declared size over the limit cannot become acceptable.
      if (length !== undefined && length > expected.limit) {
        res.destroy();
        throw new BundleError('fetch', `Content-Length ${length} is over the limit of ${expected.limit} bytes`, where);
      }
      try {
        const result = await body(res);
        if (length !== undefined && res.readableAborted) throw new BundleError('fetch', 'connection closed before the body ended', where);
        return result;
      } catch (err) {
        res.destroy();
        // Our own timers abort the request; the stream only says "aborted", so say which limit hit.
        const why = stopped();
        if (err instanceof BundleError && err.step === 'fetch' && (why !== undefined || where !== url)) {
          throw new BundleError('fetch', why === undefined ? err.reason : `${why} (${err.reason})`, where, { cause: err });
        }
        throw err;
      } finally {
        res.socket?.setTimeout(0);
      }
    }
  }

  private request(url: string, deadline: number): Promise<{ res: IncomingMessage; stopped: () => string | undefined }> {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    let why: string | undefined;
    return new Promise((resolvePromise, reject) => {
      const remaining = Math.max(1, deadline - Date.now());
      const req = mod.get(u, { timeout: this.limits.idleTimeoutMs, headers: { accept: '*/*' } });
      const stop = (reason: string): void => {
        why ??= reason;
        req.destroy(new Error(reason));
      };
      const total = setTimeout(() => stop(`no complete answer within ${this.limits.requestTimeoutMs} ms`), remaining);
      total.unref();
      req.on('timeout', () => stop(`nothing received for ${this.limits.idleTimeoutMs} ms`));
      req.on('error', (err) => {
        clearTimeout(total);
        reject(new BundleError('fetch', reasonOf(err), url, { cause: err }));
      });
      req.on('response', (res) => {
        // The overall deadline keeps applying while the body streams; it fires as a stream error.
        res.on('close', () => clearTimeout(total));
        resolvePromise({ res, stopped: () => why });
      });
    });
  }
}
