/**
 * The bundle format: a directory holding manifest.json, manifest.sig (an ed25519 signature over the
 * exact manifest bytes), the model files the manifest lists and, optionally, golden/ frames with the
 * masks the signed model produced on them. Nothing else may be in it: a file the signature does not
 * cover is refused rather than ignored, so nothing unsigned ever reaches a device's disk as "model".
 */
import { isAbsolute } from 'node:path';
import { MANIFEST_FILE, MANIFEST_SCHEMA, type Manifest } from '../../model/manifest.js';
import { BundleError } from './errors.js';

export { MANIFEST_FILE };
export const SIGNATURE_FILE = 'manifest.sig';
export const SIGNATURE_SCHEMA = 'lvunet-edge/manifest-sig@1';
export const GOLDEN_DIR = 'golden';
export const DEFAULT_GOLDEN_THRESHOLD = 0.98;

/** A manifest grows past a few KiB only if something is wrong; the cap bounds what we parse before trusting it. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
export const MAX_SIGNATURE_BYTES = 16 * 1024;

export interface FileRef {
  readonly file: string;
  readonly sha256: string;
  readonly bytes: number;
}

export interface GoldenFrame {
  /** The stored frame (PNG, RGB). */
  readonly image: FileRef;
  /** The mask the signed model produced on it (PNG, 0/255). */
  readonly mask: FileRef;
}

export interface GoldenSection {
  readonly metric: 'mean-dice';
  /** The self-test passes when the mean Dice over the frames is at least this. */
  readonly threshold: number;
  /** The manifest file the expected masks were produced with, and that the self-test runs. */
  readonly model: string;
  readonly frames: readonly GoldenFrame[];
}

/**
 * What the signer says the bundle is for (see policy.ts). Signed with the rest of manifest.json.
 * Unknown keys in it are refused: a restriction an older device does not understand must not be
 * silently ignored.
 */
export interface ReleaseSection {
  /** 1 to 4 dot-separated integers; a device never switches to a lower one except by rollback. */
  readonly version: string;
  /** Only devices whose config device.group equals this may install it. */
  readonly group?: string;
  /** ISO 8601 UTC; refused for install or rollback after this instant. */
  readonly notAfter?: string;
}

export interface BundleManifest extends Manifest {
  readonly golden?: GoldenSection;
  readonly release?: ReleaseSection;
}

/** What a version string looks like: 1 to 4 dot-separated non-negative integers, e.g. 2.1.0. */
export const VERSION_PATTERN = /^(0|[1-9][0-9]{0,8})(\.(0|[1-9][0-9]{0,8})){0,3}$/;
/** Device groups use the device-id alphabet (topics, ACLs, certificate names). */
export const GROUP_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * A date (the end of that day, UTC: "valid through 2027-06-30") or a date-time with Z or an offset;
 * local times without a zone are refused, since the signer's and the device's zones differ.
 */
export function parseIsoTime(text: string): number | undefined {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    const ms = Date.parse(`${text}T23:59:59.999Z`);
    return Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== text ? undefined : ms;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

export interface SignatureFile {
  readonly schema: typeof SIGNATURE_SCHEMA;
  readonly algorithm: 'ed25519';
  readonly keyId: string;
  /** base64 of the 64-byte ed25519 signature over manifest.json's bytes. */
  readonly signature: string;
}

// Plain names only: a manifest is parsed after its signature checks out, but a signing key's owner
// can still make mistakes, and a path like ../../etc must never be written under the state dir.
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const GOLDEN_NAME = /^golden\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Why `name` cannot be a model file name of a bundle (absolute, a `..` or any other path segment,
 * odd characters), or undefined when it is a plain name. One rule for signing and for verifying,
 * so a manifest the signer accepts is one every device accepts, and no name ever leaves its folder.
 */
export function unsafeModelFileName(name: unknown): string | undefined {
  if (typeof name !== 'string') return `${JSON.stringify(name)} is not a string`;
  if (isAbsolute(name) || name.startsWith('/') || name.startsWith('\\')) return `${JSON.stringify(name)} is an absolute path`;
  if (name.split(/[\\/]/).includes('..')) return `${JSON.stringify(name)} contains ".."`;
  if (!MODEL_NAME.test(name) || name.includes('..')) return `${JSON.stringify(name)} is not a plain file name ([A-Za-z0-9._-], no folders)`;
  if (name === MANIFEST_FILE || name === SIGNATURE_FILE) return `${JSON.stringify(name)} is reserved for the bundle itself`;
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fileRef(v: unknown, where: string, name: RegExp, fail: (msg: string) => never): FileRef {
  if (!isObject(v)) fail(`${where} is not an object`);
  const { file, sha256, bytes } = v;
  if (name === MODEL_NAME) {
    const unsafe = unsafeModelFileName(file);
    if (unsafe !== undefined) fail(`${where}.file ${unsafe}`);
  }
  if (typeof file !== 'string' || !name.test(file) || file.includes('..')) {
    fail(`${where}.file ${JSON.stringify(file)} is not a plain file name${name === GOLDEN_NAME ? ' under golden/' : ''}`);
  }
  if (file === MANIFEST_FILE || file === SIGNATURE_FILE) fail(`${where}.file may not be ${file}`);
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) fail(`${where}.sha256 of ${file} is not 64 lowercase hex digits`);
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) fail(`${where}.bytes of ${file} is not a byte count`);
  return { file, sha256, bytes };
}

/**
 * Parses and checks the parts of a manifest that installation depends on: the schema, every file
 * entry (safe name, sha256, size, no duplicates) and the golden section. Errors are step 'signature'
 * because they are only reached for a manifest whose signature verified, i.e. the signer's mistake.
 */
export function parseBundleManifest(bytes: Uint8Array, what = MANIFEST_FILE): BundleManifest {
  const fail = (msg: string): never => {
    throw new BundleError('signature', `signed manifest is not usable: ${msg}`, what);
  };
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    fail(`not JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) return fail('not a JSON object');
  if (value.schema !== MANIFEST_SCHEMA) fail(`schema is ${JSON.stringify(value.schema)}, expected ${MANIFEST_SCHEMA}`);
  if (!Array.isArray(value.files) || value.files.length === 0) fail('files is missing or empty');
  const seen = new Set<string>();
  const files = value.files as unknown[];
  files.forEach((f, i) => {
    const ref = fileRef(f, `files[${i}]`, MODEL_NAME, fail);
    if (seen.has(ref.file)) fail(`${ref.file} is listed twice`);
    seen.add(ref.file);
  });
  if (!isObject(value.input) || !Array.isArray(value.input.shape) || typeof value.input.name !== 'string') {
    fail('input {name, shape} is missing');
  }
  if (!isObject(value.output) || typeof value.output.name !== 'string' || typeof value.output.threshold !== 'number') {
    fail('output {name, threshold} is missing');
  }
  if (value.golden !== undefined) {
    const g = value.golden;
    if (!isObject(g)) return fail('golden is not an object');
    if (g.metric !== 'mean-dice') fail(`golden.metric ${JSON.stringify(g.metric)} is not mean-dice`);
    if (typeof g.threshold !== 'number' || !(g.threshold > 0 && g.threshold <= 1)) fail('golden.threshold is not in (0, 1]');
    if (typeof g.model !== 'string' || !seen.has(g.model)) fail(`golden.model ${JSON.stringify(g.model)} is not one of files[]`);
    if (!Array.isArray(g.frames) || g.frames.length === 0) fail('golden.frames is missing or empty');
    (g.frames as unknown[]).forEach((fr, i) => {
      if (!isObject(fr)) fail(`golden.frames[${i}] is not an object`);
      const frame = fr as Record<string, unknown>;
      for (const part of ['image', 'mask'] as const) {
        const ref = fileRef(frame[part], `golden.frames[${i}].${part}`, GOLDEN_NAME, fail);
        if (seen.has(ref.file)) fail(`${ref.file} is listed twice`);
        seen.add(ref.file);
      }
    });
  }
  if (value.release !== undefined) {
    const r = value.release;
    if (!isObject(r)) return fail('release is not an object');
    const extra = Object.keys(r).filter((k) => k !== 'version' && k !== 'group' && k !== 'notAfter');
    if (extra.length > 0) fail(`release has unknown field(s) ${extra.join(', ')} (a newer signer? this device cannot honour them)`);
    if (typeof r.version !== 'string' || !VERSION_PATTERN.test(r.version)) fail(`release.version ${JSON.stringify(r.version)} is not 1 to 4 dot-separated integers`);
    if (r.group !== undefined && (typeof r.group !== 'string' || !GROUP_PATTERN.test(r.group))) fail(`release.group ${JSON.stringify(r.group)} is not 1 to 64 of [A-Za-z0-9._-]`);
    if (r.notAfter !== undefined && (typeof r.notAfter !== 'string' || parseIsoTime(r.notAfter) === undefined)) {
      fail(`release.notAfter ${JSON.stringify(r.notAfter)} is not an ISO 8601 time with a zone`);
    }
  }
  return value as unknown as BundleManifest;
}

/** Every file the manifest covers, model files first, in manifest order. */
export function bundleFiles(manifest: BundleManifest): FileRef[] {
  const refs: FileRef[] = manifest.files.map((f) => ({ file: f.file, sha256: f.sha256, bytes: f.bytes }));
  for (const frame of manifest.golden?.frames ?? []) refs.push(frame.image, frame.mask);
  return refs;
}

export function parseSignatureFile(bytes: Uint8Array, what = SIGNATURE_FILE): SignatureFile {
  const fail = (msg: string): never => {
    throw new BundleError('signature', msg, what);
  };
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    fail(`not JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) return fail('not a JSON object');
  if (value.schema !== SIGNATURE_SCHEMA) fail(`schema is ${JSON.stringify(value.schema)}, expected ${SIGNATURE_SCHEMA}`);
  if (value.algorithm !== 'ed25519') fail(`algorithm ${JSON.stringify(value.algorithm)} is not ed25519`);
  if (typeof value.keyId !== 'string' || !/^[0-9a-f]{16,64}$/.test(value.keyId)) fail('keyId is not a hex key id');
  if (typeof value.signature !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(value.signature)) fail('signature is not base64');
  return value as unknown as SignatureFile;
}
