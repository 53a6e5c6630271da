/** Calibration and check images, preprocessed exactly as the runtime does (stretch, ImageNet norm). */
import { readdirSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { readImageFile } from '../../image/decode.js';
import { preprocessRgb } from '../../image/preprocess.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);

export interface CalibrationSet {
  /** The folder the images were read from (absolute). */
  readonly dir: string;
  readonly stems: readonly string[];
  readonly inputs: readonly Float32Array[];
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Image files of DIR/images (a dataset folder) or of DIR itself, sorted by name. */
export function listImages(dir: string): string[] {
  const root = resolve(dir);
  const folder = isDir(join(root, 'images')) ? join(root, 'images') : root;
  if (!isDir(folder)) throw new Error(`${root}: calibration folder does not exist or is not a directory`);
  const files = readdirSync(folder)
    .filter((f) => !f.startsWith('.') && IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((f) => join(folder, f));
  if (files.length === 0) throw new Error(`${folder}: no .jpg/.jpeg/.png images to calibrate on`);
  return files;
}

/**
 * `count` images spread evenly over the sorted listing (not the first `count`, which in a folder
 * sorted by class or date would calibrate on one kind of image), deterministic for a given folder.
 */
export function spreadSample<T>(items: readonly T[], count: number): T[] {
  if (count >= items.length) return [...items];
  return Array.from({ length: count }, (_, i) => items[Math.floor((i * items.length) / count)]);
}

export async function loadCalibrationSet(
  dir: string,
  count: number,
  size: { width: number; height: number },
  log: (line: string) => void = () => {},
): Promise<CalibrationSet> {
  if (!Number.isInteger(count) || count < 1) throw new Error(`calibration count must be a positive integer, got ${count}`);
  const files = spreadSample(listImages(dir), count);
  const inputs: Float32Array[] = [];
  for (const [i, f] of files.entries()) {
    inputs.push(preprocessRgb(await readImageFile(f), size, 'stretch'));
    if ((i + 1) % 16 === 0 || i + 1 === files.length) log(`calibration: read ${i + 1}/${files.length} images from ${dir}`);
  }
  const stems = files.map((f) => f.slice(f.lastIndexOf('/') + 1, f.length - extname(f).length));
  return { dir: resolve(dir), stems, inputs };
}
