/**
 * Verifying a bundle: signature first (over the exact manifest bytes), and only then anything the
 * manifest says, so an unsigned manifest never decides which files are downloaded or where they go.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { sha256 } from '../../util/files.js';
import { BundleError } from './errors.js';
import { DEFAULT_FETCH_LIMITS, openSource, type BundleSource, type FetchLimits } from './fetch.js';
import {
  MANIFEST_FILE,
  MAX_MANIFEST_BYTES,
  MAX_SIGNATURE_BYTES,
  SIGNATURE_FILE,
  bundleFiles,
  parseBundleManifest,
  type BundleManifest,
  type FileRef,
} from './format.js';
import { verifyManifestSignature, type TrustedKey } from './keys.js';

export interface VerifiedBundle {
  /** sha256 of manifest.json's bytes: names the version (versions/<version>/ in a ModelStore). */
  readonly version: string;
  readonly manifest: BundleManifest;
  readonly keyId: string;
  /** Where the source is (a directory or a URL). */
  readonly source: string;
  readonly files: readonly FileRef[];
  /** The staging directory the files were copied to, when one was given. */
  readonly dir: string | undefined;
}

export interface CheckOptions {
  /** Copy the verified files here (created; must not hold any of them). Without it files are only hashed. */
  readonly stagingDir?: string;
  readonly limits?: FetchLimits;
  /**
   * Called with the verified manifest before any model file is fetched: throwing refuses the
   * bundle there (policy: version, group, expiry) without downloading what will not be used.
   */
  readonly accept?: (manifest: BundleManifest) => void;
  /** Test hook: called after each file is fetched, with its relative path. */
  readonly onFile?: (rel: string) => void;
}

/**
 * Reads manifest.json and manifest.sig from `source`, checks the signature against `trusted`, then
 * fetches (or, without a staging dir, hashes) every file the manifest lists, checking size and
 * sha256; a listable source (a directory) must hold exactly those files. Throws BundleError.
 */
export async function checkBundle(source: string | BundleSource, trusted: readonly TrustedKey[], options: CheckOptions = {}): Promise<VerifiedBundle> {
  const limits = options.limits ?? DEFAULT_FETCH_LIMITS;
  const src = typeof source === 'string' ? openSource(source, limits) : source;
  const where = src.locate('');
  const manifestBytes = await src.read(MANIFEST_FILE, MAX_MANIFEST_BYTES);
  let sigBytes: Buffer;
  try {
    sigBytes = await src.read(SIGNATURE_FILE, MAX_SIGNATURE_BYTES);
  } catch (err) {
    // Distinguish "not signed" from a flaky transport: the former is a signature failure.
    if (err instanceof BundleError && err.step === 'fetch' && /ENOENT|HTTP 404/.test(err.reason)) {
      throw new BundleError('signature', `bundle is not signed (${err.reason})`, err.file, { cause: err });
    }
    throw err;
  }
  const key = verifyManifestSignature(manifestBytes, sigBytes, trusted, src.locate(SIGNATURE_FILE));
  const manifest = parseBundleManifest(manifestBytes, src.locate(MANIFEST_FILE));
  options.accept?.(manifest);
  const files = bundleFiles(manifest);

  let total = 0;
  for (const f of files) {
    if (f.bytes > limits.maxFileBytes) throw new BundleError('fetch', `manifest.json lists ${f.bytes} bytes, over the limit of ${limits.maxFileBytes}`, f.file);
    total += f.bytes;
  }
  if (total > limits.maxTotalBytes) throw new BundleError('fetch', `bundle is ${total} bytes, over the limit of ${limits.maxTotalBytes}`, where);

  if (src.list) {
    const present = await src.list();
    const expected = new Set([MANIFEST_FILE, SIGNATURE_FILE, ...files.map((f) => f.file)]);
    const extra = present.filter((p) => !expected.has(p));
    if (extra.length > 0) throw new BundleError('hash', `not covered by manifest.json: ${extra.join(', ')}`, extra[0]);
    const have = new Set(present);
    const missing = files.filter((f) => !have.has(f.file)).map((f) => f.file);
    if (missing.length > 0) throw new BundleError('hash', `listed in manifest.json but missing from the bundle: ${missing.join(', ')}`, missing[0]);
  }

  const staging = options.stagingDir;
  if (staging !== undefined) await mkdir(staging, { recursive: true });
  for (const f of files) {
    let dest: string | undefined;
    if (staging !== undefined) {
      dest = join(staging, f.file);
      await mkdir(dirname(dest), { recursive: true });
    }
    await src.fetch(f.file, { bytes: f.bytes, sha256: f.sha256, limit: limits.maxFileBytes }, dest);
    options.onFile?.(f.file);
  }
  if (staging !== undefined) {
    // The signature and manifest go in last: a staging dir with a manifest is a complete one.
    await writeFile(join(staging, SIGNATURE_FILE), sigBytes);
    await writeFile(join(staging, MANIFEST_FILE), manifestBytes);
  }
  return { version: sha256(manifestBytes), manifest, keyId: key.keyId, source: where, files, dir: staging };
}
