"""How sharp is the 1e-4 torch cross-check? Applies plausible implementation mistakes to the PyTorch
reference one at a time and prints how far each moves the logits from the fixture (the unmutated
model's logits). A mistake the check catches moves them by far more than 1e-4.

usage: /usr/bin/python3 tools/torch-reference/sensitivity.py --work .devdata/torch-reference
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lvunet_torch import LVUNet, load_weights, read_safetensors  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def bns(model: nn.Module, encoder: bool):
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d) and (name.startswith(('firstconv', 'encoder')) == encoder):
            yield m


def mut_align_corners(m):
    for b in m.blocks():
        if isinstance(b.resample, nn.Upsample):
            b.resample.align_corners = True


def mut_nearest(m):
    for b in m.blocks():
        if isinstance(b.resample, nn.Upsample):
            b.resample.mode = 'nearest'
            b.resample.align_corners = None


def mut_block_eps(m):
    for bn in bns(m, encoder=False):
        bn.eps = 1e-5


def mut_encoder_eps(m):
    for bn in bns(m, encoder=True):
        bn.eps = 1e-5


def mut_hardsigmoid(m):
    for se in m.modules():
        if isinstance(getattr(se, 'scale_activation', None), nn.Hardsigmoid):
            se.scale_activation = nn.Sigmoid()


def mut_hardswish(m):
    for mod in m.modules():
        for k, c in list(mod._modules.items()):
            if isinstance(c, nn.Hardswish):
                mod._modules[k] = nn.SiLU()


def mut_lambda_9948(m):
    m.set_lambda(0.9948)


def mut_act_no_relu(m):
    for b in m.blocks():
        b.act.forward = (lambda a: (lambda x: a.bn(F.conv2d(x, a.weight, None, padding=a.act_num, groups=a.dim))))(b.act)


MUTATIONS = {
    'bilinear align_corners=True': mut_align_corners,
    'nearest upsampling': mut_nearest,
    'block/activation BN eps 1e-5 (instead of 1e-6)': mut_block_eps,
    'encoder BN eps 1e-5 (instead of 1e-3)': mut_encoder_eps,
    'SE hardsigmoid -> sigmoid': mut_hardsigmoid,
    'hardswish -> SiLU': mut_hardswish,
    'λ = 0.9948 instead of 1': mut_lambda_9948,
    'series activation without its ReLU': mut_act_no_relu,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--work', required=True)
    ap.add_argument('--fixture', default=str(ROOT / 'test' / 'fixtures' / 'torch-reference'))
    args = ap.parse_args()
    torch.set_num_threads(1)
    meta = json.loads((Path(args.fixture) / 'meta.json').read_text())
    tensors, _ = read_safetensors(str(Path(args.work) / 'weights.safetensors'))
    size = meta['size']
    xs = {img['dataset']: torch.from_numpy(np.fromfile(Path(args.work) / f"{img['dataset']}.input.f32", dtype='<f4').reshape(1, 3, size, size).copy())
          for img in meta['images']}
    refs = {d: torch.from_numpy(np.fromfile(Path(args.fixture) / meta['files'][d]['train-l1'], dtype='<f4').reshape(1, 1, size, size).copy()) for d in xs}
    extra = {'BGR input': lambda x: x.flip(1)}
    with torch.no_grad():
        for name, fn in list(MUTATIONS.items()) + [(k, None) for k in extra]:
            m = LVUNet().eval()
            load_weights(m, tensors)
            m.set_lambda(1.0)
            if fn is not None:
                fn(m)
            diffs = []
            for d, x in xs.items():
                xin = extra[name](x) if name in extra else x
                diffs.append(f'{d} {float((m(xin) - refs[d]).abs().max()):.2e}')
            print(f'{name:48s} max |Δ logit|: ' + ', '.join(diffs))


if __name__ == '__main__':
    main()
