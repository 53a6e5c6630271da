/**
 * Making a bundle from a `model build` directory: check the model files against their manifest
 * (never sign a file that is already corrupt), copy them, record golden frames with the masks this
 * model produces on them, then sign the exact bytes of the manifest that is written.
 */
import { copyFile, mkdir, readdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { extname, isAbsolute, join, relative } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { decodeImage } from '../../image/decode.js';
import { encodeMaskPng, encodePngRgb } from '../../image/encode.js';
import type { Manifest } from '../../model/manifest.js';
import { sha256 } from '../../util/files.js';
import { reasonOf } from './errors.js';
import {
  DEFAULT_GOLDEN_THRESHOLD,
  GOLDEN_DIR,
  MANIFEST_FILE,
  SIGNATURE_FILE,
  parseBundleManifest,
  unsafeModelFileName,
  type BundleManifest,
  type FileRef,
  type GoldenFrame,
} from './format.js';
import { modelInfo, type RunModel } from './golden.js';
import { encodeSignatureFile, signManifest } from './keys.js';
import { makeReleaseSection } from './policy.js';

export interface SignOptions {
  /** A directory with manifest.json and the files it lists (what `model build` writes). */
  readonly modelDir: string;
  readonly privateKey: KeyObject;
  readonly outDir: string;
  /** A directory of JPEG/PNG frames; the first `goldenCount` by name become golden frames. */
  readonly goldenDir?: string;
  readonly goldenCount?: number;
  readonly threshold?: number;
  /** The file the self-test runs; default the first fp32 deployment file. */
  readonly modelFile?: string;
  /**
   * The signed release section (policy.ts): version (required with any of them), device group,
   * expiry (ISO 8601 date or time with a zone). Without all three the bundle is an unversioned,
   * fleet-wide, non-expiring one, as bundles were before these fields existed.
   */
  readonly release?: { readonly version?: string; readonly group?: string; readonly notAfter?: string };
  /** The clock an expiry must lie after (tests inject one). */
  readonly now?: Date;
  /** Needed when goldenDir is given. */
  readonly runModel?: RunModel;
  readonly log?: (line: string) => void;
}

export interface SignResult {
  readonly dir: string;
  readonly version: string;
  readonly keyId: string;
  readonly manifest: BundleManifest;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

async function ensureEmptyDir(dir: string): Promise<void> {
  const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  // A leftover file would be "not covered by manifest.json" and every device would refuse the bundle.
  if (entries.length > 0) throw new Error(`${dir} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); give a new directory`);
  await mkdir(dir, { recursive: true });
}

function pickModelFile(manifest: Manifest, wanted: string | undefined, manifestPath: string): string {
  if (wanted !== undefined) {
    if (!manifest.files.some((f) => f.file === wanted)) throw new Error(`${manifestPath} does not list ${wanted}`);
    return wanted;
  }
  const deployment = manifest.files.filter((f) => f.mode === 'deployment');
  const pick = deployment.find((f) => f.precision === 'fp32') ?? deployment[0];
  if (!pick) throw new Error(`${manifestPath} lists no deployment-mode model file`);
  return pick.file;
}

export async function signBundle(options: SignOptions): Promise<SignResult> {
  const log = options.log ?? (() => {});
  const manifestPath = join(options.modelDir, MANIFEST_FILE);
  let source: Manifest;
  try {
    source = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  } catch (err) {
    throw new Error(`${manifestPath}: cannot read the model manifest: ${reasonOf(err)}`);
  }
  if (!Array.isArray(source.files) || source.files.length === 0) throw new Error(`${manifestPath} lists no files`);
  // Checked before anything is written: a typo in --version must not leave a half-made bundle.
  const release = makeReleaseSection(options.release ?? {}, options.now ?? new Date());
  // Every name is checked before anything is read or written: a `../` name would otherwise be read
  // from outside the model folder and written outside --out.
  const realModelDir = await realpath(options.modelDir);
  const sources: string[] = [];
  for (const [i, f] of source.files.entries()) {
    const unsafe = unsafeModelFileName((f as { file?: unknown } | null)?.file);
    if (unsafe !== undefined) throw new Error(`${manifestPath}: files[${i}].file ${unsafe}; refusing to sign`);
    const from = join(options.modelDir, f.file);
    let real: string;
    let st;
    try {
      real = await realpath(from);
      st = await stat(real);
    } catch (err) {
      throw new Error(`${from}: cannot read the model file: ${reasonOf(err)}`);
    }
    // A symlink to a file elsewhere would put that file (a key, another model) into a signed bundle.
    if (relative(realModelDir, real).startsWith('..') || isAbsolute(relative(realModelDir, real))) {
      throw new Error(`${from} resolves to ${real}, outside the model folder ${realModelDir}; refusing to sign`);
    }
    if (!st.isFile()) throw new Error(`${from} is not a regular file; refusing to sign`);
    sources.push(real);
  }
  await ensureEmptyDir(options.outDir);

  for (const [i, f] of source.files.entries()) {
    const from = sources[i];
    const bytes = await readFile(from);
    const digest = sha256(bytes);
    if (digest !== f.sha256 || bytes.length !== f.bytes) {
      throw new Error(`${from}: sha256 ${digest} / ${bytes.length} bytes does not match ${manifestPath} (${f.sha256} / ${f.bytes} bytes); refusing to sign it`);
    }
    await copyFile(from, join(options.outDir, f.file));
    log(`copied ${f.file} (${f.sha256.slice(0, 12)}, ${f.bytes} bytes)`);
  }

  let manifest: BundleManifest = { ...source };
  delete (manifest as { golden?: unknown }).golden;
  // A model folder's own manifest never decides a release: only this signing does.
  delete (manifest as { release?: unknown }).release;
  if (release) manifest = { ...manifest, release };
  if (options.goldenDir !== undefined) {
    if (!options.runModel) throw new Error('golden frames need a model runner');
    const count = options.goldenCount ?? 4;
    if (!Number.isInteger(count) || count < 1) throw new Error(`golden count ${count} is not a positive integer`);
    const threshold = options.threshold ?? DEFAULT_GOLDEN_THRESHOLD;
    if (!(threshold > 0 && threshold <= 1)) throw new Error(`golden threshold ${threshold} is not in (0, 1]`);
    const names = (await readdir(options.goldenDir)).filter((n) => IMAGE_EXT.has(extname(n).toLowerCase())).sort();
    if (names.length < count) throw new Error(`${options.goldenDir} has ${names.length} JPEG/PNG images, ${count} golden frames wanted`);
    const model = pickModelFile(source, options.modelFile, manifestPath);
    const frames = [];
    for (const name of names.slice(0, count)) {
      const path = join(options.goldenDir, name);
      if (!(await stat(path)).isFile()) throw new Error(`${path} is not a file`);
      frames.push(decodeImage(await readFile(path), path));
    }
    const masks = await options.runModel(join(options.outDir, model), frames, modelInfo(source));
    if (masks.length !== frames.length) throw new Error(`the runner returned ${masks.length} masks for ${frames.length} frames`);
    await mkdir(join(options.outDir, GOLDEN_DIR), { recursive: true });
    const golden: GoldenFrame[] = [];
    const write = async (file: string, bytes: Uint8Array): Promise<FileRef> => {
      await writeFile(join(options.outDir, file), bytes);
      return { file, sha256: sha256(bytes), bytes: bytes.length };
    };
    for (let i = 0; i < frames.length; i++) {
      const stem = `${GOLDEN_DIR}/frame-${String(i).padStart(2, '0')}`;
      // Frames are re-encoded as PNG so the device decodes exactly the pixels the signer ran.
      golden.push({ image: await write(`${stem}.png`, encodePngRgb(frames[i])), mask: await write(`${stem}.mask.png`, encodeMaskPng(masks[i])) });
      log(`golden ${stem}.png from ${names[i]} (${frames[i].width}x${frames[i].height})`);
    }
    manifest = { ...manifest, golden: { metric: 'mean-dice', threshold, model, frames: golden } };
  }

  const bytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
  // Whatever a device will parse must parse here first; a bundle no device accepts is worse than none.
  parseBundleManifest(bytes, join(options.outDir, MANIFEST_FILE));
  const sig = signManifest(bytes, options.privateKey);
  await writeFile(join(options.outDir, MANIFEST_FILE), bytes);
  await writeFile(join(options.outDir, SIGNATURE_FILE), encodeSignatureFile(sig));
  log(`signed ${join(options.outDir, MANIFEST_FILE)} with key ${sig.keyId}`);
  return { dir: options.outDir, version: sha256(bytes), keyId: sig.keyId, manifest };
}
