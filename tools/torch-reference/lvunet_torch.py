"""LV-UNet in PyTorch, built the way the paper's code builds it (../shared/BRIEF.md §1).

An independent reference for lvunet-edge: written from the brief and from
../shared/reference/lvunet-train-weights.tsv only, not from the TypeScript architecture.

- Encoder: torchvision MobileNetV3-Large ``features[0..9]`` (BN eps 1e-3, torchvision's own
  hardswish / hardsigmoid / SE): firstconv = features[0], encoder1 = features[1:3],
  encoder2 = features[3:6], encoder3 = features[6:10] (re-numbered from 0, as the TSV names them).
- Fusible ``Block``: 1x1 conv (bias) + BN(eps 1e-6) -> LeakyReLU(act_learn = λ) -> 1x1 conv (bias)
  + BN(eps 1e-6) -> resample (2x2 max-pool or bilinear x2, align_corners=False) -> series
  activation ``Activation``: ReLU, depthwise 3x3 conv without bias, BN(eps 1e-6).
- Body: e3 -> stages (80->160->240->480, pooling); decoder up_stages1 (480->240->160->80) and
  up_stages2 (80->40->24->16) with skips ADDED; final = Block 16->16 (upsampling) + 1x1 conv 16->1.
- ``switch_to_deploy()``: the paper code's deployment fusion (valid only at λ = 1): each block's BNs
  folded into their convs, the two 1x1 convs merged into one, the activation BN folded into the
  depthwise conv (which gains a bias). Like the paper code, the encoder's BNs stay unfolded unless
  ``fold_encoder=True``.

Only torch, torchvision and numpy; runs on torch 1.13 (Debian) and torch 2.x. Without torchvision
(or with LVUNET_NO_TORCHVISION=1) a stand-in encoder with the same names and function is used.
"""
from __future__ import annotations

import json
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:  # the paper code takes its encoder from torchvision; a same-named stand-in is used without it
    if os.environ.get('LVUNET_NO_TORCHVISION') == '1':
        raise ImportError('LVUNET_NO_TORCHVISION=1')
    import torchvision
except ImportError:  # pragma: no cover - exercised with LVUNET_NO_TORCHVISION=1
    torchvision = None

BLOCK_BN_EPS = 1e-6


class Activation(nn.ReLU):
    """Series activation: ReLU, then a depthwise 3x3 conv (no bias) and BN (eps 1e-6).

    The parameter lives on the module itself (``act.weight``) and the BN is ``act.bn``, as in the
    paper code's VanillaNet-style ``activation(nn.ReLU)``.
    """

    def __init__(self, dim: int, act_num: int = 1, deploy: bool = False):
        super().__init__()
        self.deploy = deploy
        self.dim = dim
        self.act_num = act_num
        k = act_num * 2 + 1
        self.weight = nn.Parameter(torch.empty(dim, 1, k, k))
        nn.init.trunc_normal_(self.weight, std=0.02)
        if deploy:
            self.bias = nn.Parameter(torch.zeros(dim))
        else:
            self.bias = None
            self.bn = nn.BatchNorm2d(dim, eps=BLOCK_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = F.conv2d(F.relu(x), self.weight, self.bias, padding=self.act_num, groups=self.dim)
        return y if self.deploy else self.bn(y)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        bn = self.bn
        std = (bn.running_var + bn.eps).sqrt()
        t = (bn.weight / std).reshape(-1, 1, 1, 1)
        self.weight.data = self.weight.data * t
        self.bias = nn.Parameter(bn.bias - bn.running_mean * bn.weight / std)
        del self.bn
        self.deploy = True


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> Tuple[torch.Tensor, torch.Tensor]:
    """Returns (W', b') with conv'(x) == bn(conv(x)) in eval mode."""
    std = (bn.running_var + bn.eps).sqrt()
    t = (bn.weight / std).reshape(-1, 1, 1, 1)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    return conv.weight * t, bn.bias + (bias - bn.running_mean) * bn.weight / std


class Block(nn.Module):
    """Fusible block. ``resample`` is 'pool' (2x2 max-pool) or 'up' (bilinear x2)."""

    def __init__(self, dim: int, dim_out: int, resample: str, deploy: bool = False):
        super().__init__()
        self.act_learn = 1.0
        self.deploy = deploy
        if deploy:
            self.conv = nn.Conv2d(dim, dim_out, kernel_size=1)
        else:
            self.conv1 = nn.Sequential(nn.Conv2d(dim, dim, kernel_size=1), nn.BatchNorm2d(dim, eps=BLOCK_BN_EPS))
            self.conv2 = nn.Sequential(nn.Conv2d(dim, dim_out, kernel_size=1), nn.BatchNorm2d(dim_out, eps=BLOCK_BN_EPS))
        if resample == 'pool':
            self.resample = nn.MaxPool2d(2)
        elif resample == 'up':
            self.resample = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)
        else:
            raise ValueError(resample)
        self.act = Activation(dim_out, act_num=1, deploy=deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            x = self.conv(x)
        else:
            x = self.conv1(x)
            x = F.leaky_relu(x, self.act_learn)
            x = self.conv2(x)
        x = self.resample(x)
        return self.act(x)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        if self.act_learn != 1:
            raise ValueError(f'cannot fuse a block whose LeakyReLU slope is {self.act_learn}, not 1')
        w1, b1 = fuse_conv_bn(self.conv1[0], self.conv1[1])  # dim x dim x 1 x 1
        w2, b2 = fuse_conv_bn(self.conv2[0], self.conv2[1])  # dim_out x dim x 1 x 1
        w1m = w1[:, :, 0, 0]
        w2m = w2[:, :, 0, 0]
        conv = nn.Conv2d(w1m.shape[1], w2m.shape[0], kernel_size=1)
        conv.weight.data = (w2m @ w1m)[:, :, None, None].contiguous()
        conv.bias.data = b2 + w2m @ b1
        self.conv = conv
        del self.conv1
        del self.conv2
        self.act.switch_to_deploy()
        self.deploy = True


# --- MobileNetV3-Large features[0..9] without torchvision ------------------------------------------
# Only for machines without torchvision: same module tree, parameter names, BN eps/momentum and
# forward as torchvision's (BRIEF §1 table); `python3 lvunet_torch.py` checks it equal to torchvision's.
_MBV3_LARGE_0_9 = [  # in, kernel, expanded, out, SE, activation, stride
    (16, 3, 16, 16, False, 'RE', 1), (16, 3, 64, 24, False, 'RE', 2), (24, 3, 72, 24, False, 'RE', 1),
    (24, 5, 72, 40, True, 'RE', 2), (40, 5, 120, 40, True, 'RE', 1), (40, 5, 120, 40, True, 'RE', 1),
    (40, 3, 240, 80, False, 'HS', 2), (80, 3, 200, 80, False, 'HS', 1), (80, 3, 184, 80, False, 'HS', 1)]


def _make_divisible(v: float, d: int = 8) -> int:
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


def _conv_bn_act(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act=None) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=0.001, momentum=0.01)]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class _SqueezeExcitation(nn.Module):
    def __init__(self, c: int, squeeze: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return s * x


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, k: int, exp: int, cout: int, se: bool, act: str, stride: int):
        super().__init__()
        a = nn.Hardswish if act == 'HS' else nn.ReLU
        self.use_res_connect = stride == 1 and cin == cout
        layers = []
        if exp != cin:
            layers.append(_conv_bn_act(cin, exp, 1, act=a))
        layers.append(_conv_bn_act(exp, exp, k, stride, groups=exp, act=a))
        if se:
            layers.append(_SqueezeExcitation(exp, _make_divisible(exp // 4, 8)))
        layers.append(_conv_bn_act(exp, cout, 1))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.use_res_connect else y


def mobilenet_v3_large_features_0_9(standin: bool = False) -> nn.Sequential:
    """features[0..9] of MobileNetV3-Large: torchvision's when available, else the stand-in."""
    if torchvision is not None and not standin:
        return torchvision.models.mobilenet_v3_large(weights=None).features[:10]
    mods = [_conv_bn_act(3, 16, 3, 2, act=nn.Hardswish)] + [_InvertedResidual(*c) for c in _MBV3_LARGE_0_9]
    for m in nn.Sequential(*mods).modules():  # torchvision's initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return nn.Sequential(*mods)


def _renumbered(modules: Iterable[nn.Module]) -> nn.Sequential:
    # nn.Sequential slicing keeps the original keys ('1', '2'); the paper's names start at 0.
    return nn.Sequential(*list(modules))


class LVUNet(nn.Module):
    def __init__(self, deploy: bool = False, standin_encoder: bool = False):
        super().__init__()
        features = mobilenet_v3_large_features_0_9(standin_encoder)
        self.firstconv = features[0]
        self.encoder1 = _renumbered(features[1:3])   # e1: 24 @ 1/4
        self.encoder2 = _renumbered(features[3:6])   # e2: 40 @ 1/8
        self.encoder3 = _renumbered(features[6:10])  # e3: 80 @ 1/16
        self.stages = nn.ModuleList([
            Block(80, 160, 'pool', deploy), Block(160, 240, 'pool', deploy), Block(240, 480, 'pool', deploy)])
        self.up_stages1 = nn.ModuleList([
            Block(480, 240, 'up', deploy), Block(240, 160, 'up', deploy), Block(160, 80, 'up', deploy)])
        self.up_stages2 = nn.ModuleList([
            Block(80, 40, 'up', deploy), Block(40, 24, 'up', deploy), Block(24, 16, 'up', deploy)])
        self.final = nn.Sequential(Block(16, 16, 'up', deploy), nn.Conv2d(16, 1, kernel_size=1))

    def blocks(self) -> List[Block]:
        return [m for m in self.modules() if isinstance(m, Block)]

    def set_lambda(self, lam: float) -> None:
        for b in self.blocks():
            b.act_learn = float(lam)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.firstconv(x)
        e1 = self.encoder1(x)
        e2 = self.encoder2(e1)
        e3 = self.encoder3(e2)
        s1 = self.stages[0](e3)   # 160 @ 1/32
        s2 = self.stages[1](s1)   # 240 @ 1/64
        x = self.stages[2](s2)    # 480 @ 1/128
        x = self.up_stages1[0](x) + s2
        x = self.up_stages1[1](x) + s1
        x = self.up_stages1[2](x) + e3
        x = self.up_stages2[0](x) + e2
        x = self.up_stages2[1](x) + e1
        x = self.up_stages2[2](x)  # 16 @ 1/2
        return self.final(x)       # 1 @ 1/1

    def named_taps(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """Every intermediate map of forward(), by a readable name, for layer-by-layer bisection."""
        out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        x = self.firstconv(x); out['firstconv'] = x
        for i, m in enumerate(self.encoder1):
            x = m(x); out[f'encoder1.{i}'] = x
        e1 = x
        for i, m in enumerate(self.encoder2):
            x = m(x); out[f'encoder2.{i}'] = x
        e2 = x
        for i, m in enumerate(self.encoder3):
            x = m(x); out[f'encoder3.{i}'] = x
        e3 = x
        skips = []
        for i, m in enumerate(self.stages):
            x = m(x); out[f'stages.{i}'] = x; skips.append(x)
        for i, add in enumerate([skips[1], skips[0], e3]):
            x = self.up_stages1[i](x) + add; out[f'up_stages1.{i}+skip'] = x
        for i, add in enumerate([e2, e1, None]):
            x = self.up_stages2[i](x)
            if add is not None:
                x = x + add
            out[f'up_stages2.{i}' + ('+skip' if add is not None else '')] = x
        x = self.final[0](x); out['final.0'] = x
        x = self.final[1](x); out['final.1'] = x
        return out

    @torch.no_grad()
    def switch_to_deploy(self, fold_encoder: bool = False) -> 'LVUNet':
        for b in self.blocks():
            b.switch_to_deploy()
        if fold_encoder:
            fold_encoder_bns(self)
        return self


@torch.no_grad()
def fold_encoder_bns(model: nn.Module) -> None:
    """Folds every Conv2d -> BatchNorm2d pair inside the torchvision encoder (not in the paper code)."""
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        keys = list(seq._modules.keys())
        for a, b in zip(keys, keys[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                w, bias = fuse_conv_bn(conv, bn)
                conv.weight.data = w
                conv.bias = nn.Parameter(bias)
                seq._modules[b] = nn.Identity()


# --- the reference parameter list ---------------------------------------------------------------

def read_tsv(path: str) -> "OrderedDict[str, Tuple[int, ...]]":
    out: "OrderedDict[str, Tuple[int, ...]]" = OrderedDict()
    lines = Path(path).read_text().splitlines()
    assert lines[0].split('\t')[:2] == ['name', 'shape'], lines[0]
    for line in lines[1:]:
        if not line.strip():
            continue
        name, shape, _kind = line.split('\t')
        out[name] = () if shape == 'scalar' else tuple(int(d) for d in shape.split('x'))
    return out


def assert_matches_tsv(model: nn.Module, tsv: str) -> int:
    """Asserts state_dict names and shapes equal the paper code's list exactly (order included)."""
    want = read_tsv(tsv)
    got = OrderedDict((k, tuple(v.shape)) for k, v in model.state_dict().items())
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    shape = [(k, got[k], want[k]) for k in want if k in got and got[k] != want[k]]
    if missing or extra or shape:
        raise AssertionError(f'state_dict differs from {tsv}: missing {missing}, unexpected {extra}, shape {shape}')
    if list(got.keys()) != list(want.keys()):
        raise AssertionError('same names, different order')
    return len(want)


# --- safetensors by hand ------------------------------------------------------------------------

_DTYPES = {'F32': (np.float32, torch.float32), 'F64': (np.float64, torch.float64), 'F16': (np.float16, torch.float16),
           'I64': (np.int64, torch.int64), 'I32': (np.int32, torch.int32)}


def read_safetensors(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    data = Path(path).read_bytes()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n].decode('utf-8'))
    meta = header.pop('__metadata__', {}) or {}
    base = 8 + n
    out: Dict[str, torch.Tensor] = {}
    for name, info in header.items():
        np_dtype, _ = _DTYPES[info['dtype']]
        a, b = info['data_offsets']
        arr = np.frombuffer(data[base + a:base + b], dtype=np.dtype(np_dtype).newbyteorder('<'))
        out[name] = torch.from_numpy(arr.astype(np_dtype).reshape(info['shape']).copy())
    return out, meta


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> None:
    rev = {v[1]: k for k, v in _DTYPES.items()}
    header: Dict[str, object] = {}
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        dt = rev[t.dtype]
        raw = t.numpy().astype(np.dtype(_DTYPES[dt][0]).newbyteorder('<')).tobytes()
        header[name] = {'dtype': dt, 'shape': list(t.shape), 'data_offsets': [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    js = json.dumps(header, separators=(',', ':')).encode('utf-8')
    js += b' ' * ((8 - len(js) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


def load_weights(model: nn.Module, tensors: Dict[str, torch.Tensor]) -> None:
    """Loads a training-mode weights file with strict=True. Files from lvunet-edge omit the BN
    ``num_batches_tracked`` counters (unused in eval mode); those keep the model's own."""
    sd = model.state_dict()
    extra = sorted(set(tensors) - set(sd))
    missing = sorted(k for k in set(sd) - set(tensors) if not k.endswith('num_batches_tracked'))
    if extra or missing:
        raise KeyError(f'weights file: unexpected {extra}, missing {missing}')
    full = OrderedDict()
    for k, v in sd.items():
        full[k] = tensors[k].to(v.dtype) if k in tensors else v
    model.load_state_dict(full, strict=True)


if __name__ == '__main__':
    import sys
    tsv = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[3] / 'shared/reference/lvunet-train-weights.tsv')
    m = LVUNet().eval()
    n = assert_matches_tsv(m, tsv)
    params = sum(p.numel() for p in m.parameters())
    print(f'{n} state_dict entries match {tsv}; {params} parameters (training mode)')
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        y = m(x)
        d = LVUNet().eval()
        d.load_state_dict(m.state_dict())
        d.switch_to_deploy()
        print('deploy params (encoder BNs unfolded, as the paper):', sum(p.numel() for p in d.parameters()))
        print('output', tuple(y.shape), 'deploy vs train max |Δ|', (d(x) - y).abs().max().item())
        if torchvision is not None:
            s = LVUNet(standin_encoder=True).eval()
            assert_matches_tsv(s, tsv)
            for bn in [b for b in m.modules() if isinstance(b, nn.BatchNorm2d)]:  # random BN statistics
                bn.running_mean.normal_(0, 0.2)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.data.uniform_(0.5, 1.5)
                bn.bias.data.normal_(0, 0.2)
            s.load_state_dict(m.state_dict(), strict=True)
            mom = {(type(a).__name__, a.momentum, b.momentum) for a, b in zip(m.modules(), s.modules()) if isinstance(a, nn.BatchNorm2d)}
            assert all(a == b for _, a, b in mom), mom
            print('stand-in encoder (no torchvision) vs torchvision: same names/shapes/BN momenta; max |Δ logit|',
                  (s(x) - m(x)).abs().max().item())
