import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_FRACTIONS,
  listPairs,
  readSplitFile,
  selectPairs,
  splitPairs,
  writeSplitFile,
  type Pair,
} from '../../src/data/dataset.js';
import { DATASETS as DATASETS_DIR } from '../helpers/paths.js';

const DATASETS = DATASETS_DIR;
const noData = existsSync(DATASETS) ? false : `datasets not found at ${DATASETS}`;

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-data-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function touch(path: string): void {
  writeFileSync(path, '');
}

function isSorted(stems: readonly string[]): boolean {
  return stems.every((s, i) => i === 0 || stems[i - 1] < s);
}

t.test('listPairs on Kvasir-SEG', { skip: noData }, async (t) => {
  const pairs = listPairs(join(DATASETS, 'kvasir-seg'));
  t.equal(pairs.length, 1000);
  t.ok(isSorted(pairs.map((p) => p.stem)), 'sorted by stem, no duplicates');
  const first = pairs.find((p) => p.stem === 'cju0qkwl35piu0993l0dewei2');
  t.ok(first);
  t.match(first?.image ?? '', /kvasir-seg[\\/]images[\\/]cju0qkwl35piu0993l0dewei2\.jpg$/);
  t.match(first?.mask ?? '', /kvasir-seg[\\/]masks[\\/]cju0qkwl35piu0993l0dewei2\.jpg$/);
  t.ok(pairs.every((p) => existsSync(p.image) && existsSync(p.mask)));
});

t.test('listPairs on BUSI', { skip: noData }, async (t) => {
  const pairs = listPairs(join(DATASETS, 'busi'));
  t.equal(pairs.length, 647);
  t.equal(pairs.filter((p) => p.stem.startsWith('benign')).length, 437);
  t.equal(pairs.filter((p) => p.stem.startsWith('malignant')).length, 210);
  t.ok(pairs.some((p) => p.stem === 'benign (1)'), 'stems with spaces and parentheses');
  t.ok(isSorted(pairs.map((p) => p.stem)));
});

t.test('listPairs: mixed extensions and _mask suffix', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'images'));
  mkdirSync(join(dir, 'masks'));
  for (const f of ['b.jpg', 'a.png', 'c.JPEG', '.DS_Store', 'notes.txt']) touch(join(dir, 'images', f));
  for (const f of ['a.png', 'b_mask.png', 'c.jpg', 'orphan.png']) touch(join(dir, 'masks', f));
  const pairs = listPairs(dir);
  t.same(
    pairs.map((p) => [p.stem, p.image.slice(dir.length + 1), p.mask.slice(dir.length + 1)]),
    [
      ['a', join('images', 'a.png'), join('masks', 'a.png')],
      ['b', join('images', 'b.jpg'), join('masks', 'b_mask.png')],
      ['c', join('images', 'c.JPEG'), join('masks', 'c.jpg')],
    ],
  );
});

t.test('listPairs: a folder of symbolic links is a dataset; dangling links and linked folders are not images', async (t) => {
  const dir = tempDir(t);
  for (const sub of ['real', 'subset/images', 'subset/masks']) mkdirSync(join(dir, sub), { recursive: true });
  touch(join(dir, 'real', 'a.jpg'));
  touch(join(dir, 'real', 'a-mask.png'));
  symlinkSync(join(dir, 'real', 'a.jpg'), join(dir, 'subset', 'images', 'a.jpg'));
  symlinkSync(join(dir, 'real', 'a-mask.png'), join(dir, 'subset', 'masks', 'a.png'));
  symlinkSync(join(dir, 'real', 'gone.jpg'), join(dir, 'subset', 'images', 'gone.jpg'));
  symlinkSync(join(dir, 'real'), join(dir, 'subset', 'images', 'folder.jpg'));
  t.same(listPairs(join(dir, 'subset')).map((p) => p.stem), ['a']);
});

t.test('listPairs errors', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'images'));
  t.throws(() => listPairs(dir), { message: new RegExp(`${escape(dir)}.*no masks/`) });
  t.throws(() => listPairs(join(dir, 'absent')), { message: /absent.*does not exist/ });

  mkdirSync(join(dir, 'masks'));
  t.throws(() => listPairs(dir), { message: /no \.jpg\/\.jpeg\/\.png images/ });

  for (const f of ['x1.png', 'x2.png', 'x3.png', 'x4.jpg']) touch(join(dir, 'images', f));
  for (const f of ['x1.png', 'x3_mask.png']) touch(join(dir, 'masks', f));
  t.throws(() => listPairs(dir), { message: /2 of 4 images have no mask.*"x2", "x4"/ });

  touch(join(dir, 'masks', 'x1_mask.png'));
  t.throws(() => listPairs(dir), { message: /"x1" has two candidate masks/ });

  const dup = tempDir(t);
  mkdirSync(join(dup, 'images'));
  mkdirSync(join(dup, 'masks'));
  touch(join(dup, 'images', 'y.png'));
  touch(join(dup, 'images', 'y.jpg'));
  t.throws(() => listPairs(dup), { message: /share the stem "y"/ });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function fakePairs(n: number): Pair[] {
  return Array.from({ length: n }, (_, i) => {
    const stem = `img${String(i).padStart(4, '0')}`;
    return { stem, image: `/d/images/${stem}.png`, mask: `/d/masks/${stem}.png` };
  });
}

t.test('splitPairs: sizes, disjointness, determinism', async (t) => {
  const pairs = fakePairs(1000);
  const s = splitPairs(pairs);
  t.same([s.train.length, s.val.length, s.test.length], [640, 160, 200]);
  t.equal(s.seed, 42);
  t.same(s.fractions, DEFAULT_FRACTIONS);
  const all = [...s.train, ...s.val, ...s.test];
  t.equal(new Set(all).size, 1000, 'disjoint and complete');
  t.ok(isSorted(s.train) && isSorted(s.val) && isSorted(s.test), 'each subset sorted');

  t.same(splitPairs(pairs), s, 'same seed, same split');
  t.same(splitPairs([...pairs].reverse()), s, 'independent of input order');
  t.notSame(splitPairs(pairs, DEFAULT_FRACTIONS, 7).test, s.test, 'another seed, another split');

  const odd = splitPairs(fakePairs(647));
  t.same([odd.train.length, odd.val.length, odd.test.length], [414, 104, 129]);

  const noVal = splitPairs(fakePairs(10), { train: 0.8, val: 0, test: 0.2 }, 1);
  t.same([noVal.train.length, noVal.val.length, noVal.test.length], [8, 0, 2]);

  t.throws(() => splitPairs(pairs, { train: 0.7, val: 0.2, test: 0.2 }), /sum to 1/);
  t.throws(() => splitPairs(pairs, { train: 1.2, val: -0.2, test: 0 }), RangeError);
  t.throws(() => splitPairs([...pairs, pairs[0]]), /duplicate stem "img0000"/);
});

t.test('splitPairs on the real datasets', { skip: noData }, async (t) => {
  const kvasir = splitPairs(listPairs(join(DATASETS, 'kvasir-seg')));
  t.same([kvasir.train.length, kvasir.val.length, kvasir.test.length], [640, 160, 200]);
  const busi = splitPairs(listPairs(join(DATASETS, 'busi')));
  t.equal(new Set([...busi.train, ...busi.val, ...busi.test]).size, 647);
});

t.test('split files round-trip and are validated', async (t) => {
  const dir = tempDir(t);
  const pairs = fakePairs(20);
  const split = splitPairs(pairs, { train: 0.6, val: 0.2, test: 0.2 }, 9);
  const path = join(dir, 'split.json');
  writeSplitFile(path, split);
  t.same(readSplitFile(path), split);
  t.same(selectPairs(pairs, split.val).map((p) => p.stem), split.val);
  t.throws(() => selectPairs(pairs, ['nope']), /not in the dataset: nope/);

  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ ...split, test: [...split.test, split.train[0]] }));
  t.throws(() => readSplitFile(bad), { message: new RegExp(`${escape(bad)}.*appears in both train and test`) });
  writeFileSync(bad, '{ not json');
  t.throws(() => readSplitFile(bad), { message: new RegExp(`${escape(bad)}: cannot read split file`) });
  writeFileSync(bad, JSON.stringify({ seed: 1.5, fractions: split.fractions, train: [], val: [], test: [] }));
  t.throws(() => readSplitFile(bad), /seed/);
  writeFileSync(bad, JSON.stringify({ seed: 1, fractions: split.fractions, train: [3], val: [], test: [] }));
  t.throws(() => readSplitFile(bad), /"train" must be an array of strings/);
  t.throws(() => writeSplitFile(join(dir, 'w.json'), { ...split, val: [split.train[0]] }), /appears in both/);
});
