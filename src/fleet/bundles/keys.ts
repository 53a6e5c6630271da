/**
 * ed25519 keys for signing bundles. A key id is the first 16 hex digits of the sha256 of the public
 * key's SPKI DER, so a device can say which key a bundle claims without trusting anything else in it.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readRegularFileSync } from '../../util/read-file.js';
import { BundleError, reasonOf } from './errors.js';
import { SIGNATURE_SCHEMA, parseSignatureFile, type SignatureFile } from './format.js';

export const PRIVATE_KEY_FILE = 'private.pem';
export const PUBLIC_KEY_FILE = 'public.pem';
/** A PEM ed25519 key is ~120 bytes; the supervisor re-reads bundle-keys/*.pem for every update. */
const MAX_KEY_BYTES = 64 * 1024;

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

export interface GeneratedKeys {
  readonly privatePath: string;
  readonly publicPath: string;
  readonly keyId: string;
}

/** Writes DIR/private.pem (PKCS#8, mode 0600) and DIR/public.pem (SPKI); refuses to replace either. */
export function generateKeys(dir: string): GeneratedKeys {
  const privatePath = join(dir, PRIVATE_KEY_FILE);
  const publicPath = join(dir, PUBLIC_KEY_FILE);
  for (const p of [privatePath, publicPath]) {
    // Overwriting a signing key would orphan every device that trusts the old one.
    if (existsSync(p)) throw new Error(`${p} already exists; refusing to overwrite a key`);
  }
  mkdirSync(dir, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  // flag 'wx' plus mode: the private key is never readable by others, not even for an instant.
  writeFileSync(privatePath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  writeFileSync(publicPath, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644, flag: 'wx' });
  return { privatePath, publicPath, keyId: keyIdOf(publicKey) };
}

export function loadPrivateKey(path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(readRegularFileSync(path, MAX_KEY_BYTES));
  } catch (err) {
    throw new Error(`${path}: not a usable private key: ${reasonOf(err)}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${path}: a ${key.asymmetricKeyType} key, expected ed25519`);
  return key;
}

export interface TrustedKey {
  readonly keyId: string;
  readonly key: KeyObject;
  /** Where it came from, for messages. */
  readonly source: string;
}

/** Public keys from PEM files (a private key PEM is accepted too: its public half is used). */
export function loadTrustedKeys(paths: readonly string[]): TrustedKey[] {
  return paths.map((path) => {
    let key: KeyObject;
    try {
      key = createPublicKey(readRegularFileSync(path, MAX_KEY_BYTES));
    } catch (err) {
      throw new Error(`${path}: not a usable public key: ${reasonOf(err)}`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${path}: a ${key.asymmetricKeyType} key, expected ed25519`);
    return { keyId: keyIdOf(key), key, source: path };
  });
}

export function signManifest(manifestBytes: Uint8Array, privateKey: KeyObject): SignatureFile {
  const publicKey = createPublicKey(privateKey);
  return {
    schema: SIGNATURE_SCHEMA,
    algorithm: 'ed25519',
    keyId: keyIdOf(publicKey),
    signature: sign(null, manifestBytes, privateKey).toString('base64'),
  };
}

export function encodeSignatureFile(sig: SignatureFile): string {
  return `${JSON.stringify(sig, null, 2)}\n`;
}

/**
 * Checks manifest.sig against the trusted keys; returns the key that signed. Throws BundleError
 * step 'signature' naming the key id when it is unknown or the signature does not match.
 */
export function verifyManifestSignature(
  manifestBytes: Uint8Array,
  signatureBytes: Uint8Array,
  trusted: readonly TrustedKey[],
  sigName = 'manifest.sig',
): TrustedKey {
  if (trusted.length === 0) throw new BundleError('signature', 'no trusted public keys are configured', sigName);
  const sig = parseSignatureFile(signatureBytes, sigName);
  const key = trusted.find((k) => k.keyId === sig.keyId);
  if (!key) {
    throw new BundleError(
      'signature',
      `signed by key ${sig.keyId}, which is not trusted (trusted: ${trusted.map((k) => `${k.keyId} from ${k.source}`).join(', ')})`,
      sigName,
    );
  }
  const raw = Buffer.from(sig.signature, 'base64');
  // A key id is only a hint: the signature itself must verify against that key over these exact bytes.
  if (raw.length !== 64 || !verify(null, manifestBytes, key.key, raw)) {
    throw new BundleError('signature', `signature does not match manifest.json for key ${key.keyId} (${key.source})`, sigName);
  }
  return key;
}
