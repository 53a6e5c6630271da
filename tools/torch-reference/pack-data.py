"""Packs a segmentation data set's split into one compact file for train_recipe.py on a machine
without the data (see README.md).

For every id in split.json (train, val, test): the image is decoded, resized to SIZE x SIZE with
bilinear interpolation (half-pixel centres, no antialiasing: the same sampling as lvunet-edge's
src/image/preprocess.ts) to uint8 RGB and re-encoded as JPEG (quality 95); the mask is decoded to
8-bit luma (PIL convert('L'), as lvunet-edge's binarizeMask), resized bilinearly and thresholded at
128, and stored bit-packed. The output is an .npz (numpy only, no pickle):
  ids        <U..  [N]          file stems
  subset     int8  [N]          0 train, 1 val, 2 test (as in the split file)
  jpeg       uint8 [total]      the JPEG files, concatenated
  jpeg_off   int64 [N+1]        offsets into jpeg
  masks      uint8 [N, S*S/8]   np.packbits of the 0/1 mask, row-major
  meta       <U..  []           JSON: size, dataset, split file, quality, counts
(np.savez_compressed: the masks compress well; the JPEGs do not)

usage: /usr/bin/python3 tools/torch-reference/pack-data.py --data ../shared/datasets/kvasir-seg \
          --split runs/kvasir/split.json --out .devdata/kvasir-256.npz [--size 256] [--quality 95]
Also writes a copy of the split next to the output (.devdata/kvasir-256.split.json).
Needs numpy and Pillow (here only; the training machine needs neither Pillow nor the data set).
"""
from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

SUBSETS = ('train', 'val', 'test')


def bilinear_axis(src_n: int, dst_n: int):
    k = np.arange(dst_n, dtype=np.float64)
    s = np.clip((k + 0.5) * src_n / dst_n - 0.5, 0, src_n - 1)
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, src_n - 1)
    return i0, i1, s - i0


def resize_bilinear(a: np.ndarray, w: int, h: int) -> np.ndarray:
    """a: HxW or HxWxC, any numeric dtype -> float64 h x w (x C), half-pixel centres, no antialias."""
    a = a.astype(np.float64)
    y0, y1, fy = bilinear_axis(a.shape[0], h)
    x0, x1, fx = bilinear_axis(a.shape[1], w)
    if a.ndim == 3:
        fy = fy[:, None, None]
        fx = fx[None, :, None]
    else:
        fy = fy[:, None]
        fx = fx[None, :]
    top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
    bot = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
    return top * (1 - fy) + bot * fy


def find(folder: Path, stem: str) -> Path:
    for ext in ('.jpg', '.jpeg', '.png', '.JPG', '.PNG'):
        p = folder / f'{stem}{ext}'
        if p.exists():
            return p
    for p in (folder / f'{stem}_mask.png',):
        if p.exists():
            return p
    raise FileNotFoundError(f'{folder}: no file for {stem}')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', required=True, help='dataset folder with images/ and masks/')
    ap.add_argument('--split', required=True, help='split.json (train/val/test stems)')
    ap.add_argument('--out', required=True)
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--quality', type=int, default=95)
    args = ap.parse_args()

    data = Path(args.data)
    split = json.loads(Path(args.split).read_text())
    size = args.size
    ids, subset, blobs, masks = [], [], [], []
    for si, name in enumerate(SUBSETS):
        for stem in split[name]:
            img = np.asarray(Image.open(find(data / 'images', stem)).convert('RGB'))
            rgb = np.clip(np.rint(resize_bilinear(img, size, size)), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, 'JPEG', quality=args.quality)
            luma = np.asarray(Image.open(find(data / 'masks', stem)).convert('L'))
            m = resize_bilinear(luma, size, size) >= 128
            ids.append(stem)
            subset.append(si)
            blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
            masks.append(np.packbits(m.reshape(-1)))
        print(f'{name}: {len(split[name])} images', flush=True)
    off = np.zeros(len(blobs) + 1, dtype=np.int64)
    off[1:] = np.cumsum([len(b) for b in blobs])
    meta = {
        'dataset': os.path.basename(os.path.normpath(args.data)),
        'size': size,
        'quality': args.quality,
        'split_file': str(args.split),
        'split_seed': split.get('seed'),
        'counts': {n: len(split[n]) for n in SUBSETS},
        'image_resize': 'bilinear, half-pixel centres, no antialias, rounded to uint8, JPEG',
        'mask_resize': "luma (PIL convert('L')), bilinear, >= 128, np.packbits row-major",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, ids=np.array(ids), subset=np.array(subset, dtype=np.int8), jpeg=np.concatenate(blobs),
             jpeg_off=off, masks=np.stack(masks), meta=np.array(json.dumps(meta)))
    print(f'wrote {args.out}: {len(ids)} images, {os.path.getsize(args.out) / 1e6:.1f} MB')
    # The split travels with the data (train_recipe.py --split), so nothing under runs/ is needed.
    split_copy = Path(str(args.out)[: -len('.npz')] if str(args.out).endswith('.npz') else str(args.out)).with_suffix('.split.json')
    split_copy.write_text(json.dumps({n: split[n] for n in ('seed', 'fractions', *SUBSETS) if n in split}, indent=2) + '\n')
    print(f'wrote {split_copy} (copy of {args.split})')


if __name__ == '__main__':
    main()
