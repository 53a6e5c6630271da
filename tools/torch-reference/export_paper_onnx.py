"""The paper code's own deployment export, for the latency comparison in `npm run bench` (issue 2).

Loads a state_dict (safetensors) into the paper-style PyTorch LV-UNet (lvunet_torch.py), sets λ = 1,
switches to deploy mode exactly as the paper code does before exporting, and writes what
`torch.onnx.export` produces with the paper's arguments (opset 17, batch 1, no dynamic axes): the
file the brief's 5.85 ms was measured on. The bench times it against our lvunet.fp32.onnx built from
the same weights, interleaved in one process, after checking that both give the same logits.

usage: /usr/bin/python3 tools/torch-reference/export_paper_onnx.py --state-dict FILE --out FILE.onnx
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lvunet_torch import LVUNet, load_weights, read_safetensors  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--state-dict', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--size', type=int, default=256)
    args = ap.parse_args()

    model = LVUNet()
    tensors, _ = read_safetensors(args.state_dict)
    load_weights(model, tensors)
    model.set_lambda(1.0)
    model.eval()
    model.switch_to_deploy()
    x = torch.randn(1, 3, args.size, args.size)
    torch.onnx.export(model, x, args.out, opset_version=17, input_names=['image'], output_names=['logits'])
    data = Path(args.out).read_bytes()
    info = {
        'file': Path(args.out).name,
        'sha256': hashlib.sha256(data).hexdigest(),
        'stateDictSha256': hashlib.sha256(Path(args.state_dict).read_bytes()).hexdigest(),
        'torch': torch.__version__,
        'export': {'opset_version': 17, 'input_names': ['image'], 'output_names': ['logits'], 'dynamic_axes': None,
                   'input': [1, 3, args.size, args.size]},
    }
    Path(args.out).with_suffix('.json').write_text(json.dumps(info, indent=2) + '\n')
    print(f'wrote {args.out} ({len(data)} bytes, torch {torch.__version__})')


if __name__ == '__main__':
    main()
