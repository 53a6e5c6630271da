"""PyTorch half of the torch cross-check (see README.md).

Reads what export-inputs.mjs wrote (weights.safetensors, <dataset>.input.f32, inputs.json), loads the
weights into the paper-style PyTorch LV-UNet (lvunet_torch.py) with strict=True, and writes the
logits of
  - the training-mode module in eval mode at λ = 1        -> <dataset>.train-l1.f32
  - the training-mode module in eval mode at λ = LAMBDA   -> <dataset>.train-l<LAMBDA>.f32
  - the deploy-mode module (paper fusion) at λ = 1         -> <dataset>.deploy-l1.f32
(1x1xSxS float32 little-endian) and meta.json into --out. It also writes the loaded model's own
state_dict (num_batches_tracked included, as torch keeps it) to --state-dict, to check that a file
written from the PyTorch model goes through `lvunet-edge model build`.

usage: /usr/bin/python3 tools/torch-reference/run_reference.py --work DIR --out FIXTURE_DIR
          [--lambda 0.37] [--state-dict FILE] [--tsv ../shared/reference/lvunet-train-weights.tsv]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lvunet_torch import (LVUNet, torchvision, assert_matches_tsv, load_weights, read_safetensors,  # noqa: E402
                          write_safetensors)

ROOT = Path(__file__).resolve().parents[2]


def lam_tag(lam: float) -> str:
    return f'l{lam:g}'


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--work', required=True, help='folder written by export-inputs.mjs')
    ap.add_argument('--out', required=True, help='fixture folder for logits + meta.json')
    ap.add_argument('--lambda', dest='lam', type=float, default=0.37)
    ap.add_argument('--state-dict', default=None, help='also write the torch state_dict here (safetensors)')
    ap.add_argument('--tsv', default=str(ROOT.parent / 'shared' / 'reference' / 'lvunet-train-weights.tsv'))
    args = ap.parse_args()

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    work = Path(args.work)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inputs = json.loads((work / 'inputs.json').read_text())
    size = inputs['size']

    tensors, meta = read_safetensors(str(work / 'weights.safetensors'))
    model = LVUNet().eval()
    n = assert_matches_tsv(model, args.tsv)
    load_weights(model, tensors)
    # Loaded exactly: every tensor of the file is bit-identical in the module.
    sd = model.state_dict()
    for k, v in tensors.items():
        assert torch.equal(sd[k], v), k
    if args.state_dict:
        write_safetensors(args.state_dict, dict(sd), {'lambda': '1', 'producer': f'torch {torch.__version__} state_dict'})

    deploy = LVUNet().eval()
    load_weights(deploy, tensors)
    deploy.set_lambda(1.0)
    deploy.switch_to_deploy()

    files = {}
    max_abs = {}
    with torch.no_grad():
        for img in inputs['images']:
            stem = img['stem']
            x = np.fromfile(work / f'{img["dataset"]}.input.f32', dtype='<f4').reshape(1, 3, size, size)
            xt = torch.from_numpy(x.astype(np.float32))
            results = {}
            for lam in (1.0, args.lam):
                model.set_lambda(lam)
                results[f'train-{lam_tag(lam)}'] = model(xt)
            results['deploy-l1'] = deploy(xt)
            for mode, y in results.items():
                assert tuple(y.shape) == (1, 1, size, size), y.shape
                name = f'{img["dataset"]}.{mode}.f32'
                y.numpy().astype('<f4').tofile(out / name)
                files.setdefault(img['dataset'], {})[mode] = name
                max_abs.setdefault(img['dataset'], {})[mode] = float(y.abs().max())
            d = float((results['deploy-l1'] - results['train-l1']).abs().max())
            print(f'{img["dataset"]} {stem}: max |logit| {max_abs[img["dataset"]]}; torch deploy vs torch train (λ=1) max |Δ| {d:.3e}')
            max_abs[img['dataset']]['torch_deploy_vs_train_l1'] = d

    meta_out = {
        'what': 'logits of the paper-style PyTorch LV-UNet (tools/torch-reference/lvunet_torch.py) on lvunet-edge seeded weights',
        'seed': inputs['seed'],
        'gain': inputs['gain'],
        'randomBatchNorm': inputs['randomBatchNorm'],
        'size': size,
        'weightsSha256': inputs['weightsSha256'],
        'lambdas': [1.0, args.lam],
        'images': inputs['images'],
        'files': files,
        'dtype': 'float32 little-endian, NCHW 1x1xSxS',
        'max_abs_logit': max_abs,
        'state_dict_entries': n,
        'weights_metadata': meta,
        'torch': torch.__version__,
        'torchvision': torchvision.__version__ if torchvision is not None else 'absent (stand-in encoder)',
        'numpy': np.__version__,
        'python': platform.python_version(),
        'threads': torch.get_num_threads(),
    }
    (out / 'meta.json').write_text(json.dumps(meta_out, indent=2) + '\n')
    print(f'wrote {out}/meta.json (torch {torch.__version__}, torchvision {meta_out["torchvision"]})')


if __name__ == '__main__':
    main()
