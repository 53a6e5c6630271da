import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { mulberry32, shuffleInPlace } from './random.js';

export interface Pair {
  /** File name without extension (and without a `_mask` suffix on the mask side). */
  stem: string;
  /** Absolute path of the image. */
  image: string;
  /** Absolute path of the mask. */
  mask: string;
}

export interface SplitFractions {
  train: number;
  val: number;
  test: number;
}

/** A dataset split as stored on disk: stems per subset, each subset sorted. */
export interface SplitFile {
  seed: number;
  fractions: SplitFractions;
  train: string[];
  val: string[];
  test: string[];
}

/** BRIEF §1: BUSI, CVC-ClinicDB, CVC-ColonDB and Kvasir-SEG use 64/16/20 train/val/test. */
export const DEFAULT_FRACTIONS: SplitFractions = Object.freeze({ train: 0.64, val: 0.16, test: 0.2 });
export const DEFAULT_SEED = 42;

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);
/** The Kaggle BUSI release names masks `<stem>_mask.png`; the staged copy here uses the bare stem. */
const MASK_SUFFIX = '_mask';

/** Plain code-unit order, so listings and splits do not depend on the machine's locale. */
function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Image files of a folder by stem; hidden files and other extensions are ignored. */
function filesByStem(folder: string): Map<string, string> {
  const byStem = new Map<string, string>();
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    // A folder of symbolic links (a subset of a dataset, made without copying it) is a dataset too.
    if (!(entry.isFile() || (entry.isSymbolicLink() && isFile(join(folder, entry.name))))) continue;
    const ext = extname(entry.name);
    if (!IMAGE_EXTENSIONS.has(ext.toLowerCase())) continue;
    const stem = entry.name.slice(0, -ext.length);
    const prior = byStem.get(stem);
    if (prior !== undefined) {
      throw new Error(`${folder}: two files share the stem "${stem}" (${prior} and ${entry.name})`);
    }
    byStem.set(stem, entry.name);
  }
  return byStem;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Pairs `dir/images/*` with `dir/masks/*` by file stem, sorted by stem. A mask may be named
 * `<stem>.<ext>` or `<stem>_mask.<ext>`, with any of .jpg/.jpeg/.png independent of the image's.
 * Throws naming the folder when images/ or masks/ is missing, and listing every image stem that has
 * no mask. Masks without an image are ignored.
 */
export function listPairs(dir: string): Pair[] {
  const root = resolve(dir);
  const imagesDir = join(root, 'images');
  const masksDir = join(root, 'masks');
  if (!isDir(root)) throw new Error(`${root}: dataset folder does not exist or is not a directory`);
  for (const [sub, path] of [['images', imagesDir], ['masks', masksDir]] as const) {
    if (!isDir(path)) throw new Error(`${root}: not a dataset folder, it has no ${sub}/ subfolder`);
  }

  const images = filesByStem(imagesDir);
  const masks = filesByStem(masksDir);
  if (images.size === 0) throw new Error(`${imagesDir}: no .jpg/.jpeg/.png images`);

  const pairs: Pair[] = [];
  const missing: string[] = [];
  for (const [stem, imageFile] of images) {
    const plain = masks.get(stem);
    const suffixed = masks.get(stem + MASK_SUFFIX);
    if (plain !== undefined && suffixed !== undefined) {
      throw new Error(`${masksDir}: image "${stem}" has two candidate masks, ${plain} and ${suffixed}`);
    }
    const maskFile = plain ?? suffixed;
    if (maskFile === undefined) {
      missing.push(stem);
      continue;
    }
    pairs.push({ stem, image: join(imagesDir, imageFile), mask: join(masksDir, maskFile) });
  }
  if (missing.length > 0) {
    missing.sort(byCodeUnit);
    throw new Error(
      `${root}: ${missing.length} of ${images.size} images have no mask in masks/ ` +
        `(looked for <stem>.{jpg,jpeg,png} and <stem>${MASK_SUFFIX}.*): ${missing.map((s) => JSON.stringify(s)).join(', ')}`,
    );
  }
  return pairs.sort((a, b) => byCodeUnit(a.stem, b.stem));
}

function checkFractions(f: SplitFractions, what: string): void {
  for (const k of ['train', 'val', 'test'] as const) {
    const v = f[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) {
      throw new RangeError(`${what}: fraction ${k} must be a number in [0, 1], got ${String(v)}`);
    }
  }
  const sum = f.train + f.val + f.test;
  if (Math.abs(sum - 1) > 1e-9) throw new RangeError(`${what}: fractions must sum to 1, got ${sum}`);
}

/**
 * Deterministic random split by stem. Stems are sorted before shuffling so that the result depends
 * only on the set of stems, the fractions and the seed, never on listing order. After a Fisher–Yates
 * shuffle with mulberry32(seed) the first stems go to train, the next to val, the rest to test, with
 * test = round(n*test), val = round(n*val), train = the remainder (1000 pairs give 640/160/200).
 * Each subset is returned sorted, so split files diff cleanly.
 */
export function splitPairs(
  pairs: readonly { stem: string }[],
  fractions: SplitFractions = DEFAULT_FRACTIONS,
  seed: number = DEFAULT_SEED,
): SplitFile {
  checkFractions(fractions, 'splitPairs');
  const stems = pairs.map((p) => p.stem).sort(byCodeUnit);
  for (let i = 1; i < stems.length; i++) {
    if (stems[i] === stems[i - 1]) throw new Error(`splitPairs: duplicate stem "${stems[i]}"`);
  }
  const n = stems.length;
  const nTest = Math.round(n * fractions.test);
  const nVal = Math.min(Math.round(n * fractions.val), n - nTest);
  const nTrain = n - nTest - nVal;
  shuffleInPlace(stems, mulberry32(seed));
  return {
    seed,
    fractions: { train: fractions.train, val: fractions.val, test: fractions.test },
    train: stems.slice(0, nTrain).sort(byCodeUnit),
    val: stems.slice(nTrain, nTrain + nVal).sort(byCodeUnit),
    test: stems.slice(nTrain + nVal).sort(byCodeUnit),
  };
}

/** The pairs of one subset, in the subset's order; throws naming any stem absent from `pairs`. */
export function selectPairs(pairs: readonly Pair[], stems: readonly string[]): Pair[] {
  const byStem = new Map(pairs.map((p) => [p.stem, p] as const));
  const unknown = stems.filter((s) => !byStem.has(s));
  if (unknown.length > 0) {
    throw new Error(`selectPairs: ${unknown.length} stems are not in the dataset: ${unknown.join(', ')}`);
  }
  return stems.map((s) => byStem.get(s) as Pair);
}

export function writeSplitFile(path: string, split: SplitFile): void {
  validateSplit(split, path);
  const ordered: SplitFile = {
    seed: split.seed,
    fractions: { train: split.fractions.train, val: split.fractions.val, test: split.fractions.test },
    train: split.train,
    val: split.val,
    test: split.test,
  };
  writeFileSync(path, JSON.stringify(ordered, null, 2) + '\n');
}

export function readSplitFile(path: string): SplitFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`${path}: cannot read split file: ${reason}`, { cause: err });
  }
  validateSplit(parsed, path);
  return parsed;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function validateSplit(v: unknown, path: string): asserts v is SplitFile {
  const bad = (why: string): never => {
    throw new Error(`${path}: invalid split file: ${why}`);
  };
  if (typeof v !== 'object' || v === null) bad('not a JSON object');
  const o = v as Record<string, unknown>;
  if (typeof o.seed !== 'number' || !Number.isInteger(o.seed)) bad('"seed" must be an integer');
  const f = o.fractions;
  if (typeof f !== 'object' || f === null) bad('"fractions" must be an object {train, val, test}');
  try {
    checkFractions(f as SplitFractions, 'fractions');
  } catch (err) {
    bad(err instanceof Error ? err.message : String(err));
  }
  const seen = new Map<string, string>();
  for (const k of ['train', 'val', 'test'] as const) {
    const list = o[k];
    if (!isStringArray(list)) return bad(`"${k}" must be an array of strings`);
    for (const s of list) {
      const prior = seen.get(s);
      if (prior !== undefined) bad(`stem "${s}" appears in both ${prior} and ${k}`);
      seen.set(s, k);
    }
  }
}
