"""The LV-UNet paper's training recipe in PyTorch (BRIEF §1), with lvunet-edge's fixes, from scratch.

- model: lvunet_torch.LVUNet (paper-code names), PyTorch/torchvision default initialisation, no
  pretrained weights (none exist here)
- 256x256 (the packed size), batch 8, drop-last; Adam lr 1e-3, weight decay 1e-4 (torch's coupled
  L2, as the paper code's torch.optim.Adam); cosine per epoch to 1e-5 (CosineAnnealingLR, T_max = E-1)
- loss 0.5 * BCE-with-logits + (1 - soft Dice per image, smooth 1e-5, averaged over the batch)
- augmentation (as src/train/data.ts): RandomRotate90 (k in 0..3), horizontal and vertical flips
  (p 0.5 each), brightness/contrast jitter (p 0.5): v' = clamp(a*v + b, 0, 1) on [0,1] pixels,
  a in 1 +- 0.2, b in +- 0.2; then ImageNet mean/std normalisation (RGB, once)
- deep training: λ(e) = 1 - cos(π/2 · e/R) with R = min(floor(0.9 E), E - 1), exactly 1 from epoch R
  on (as src/train/schedule.ts); every Block's LeakyReLU slope is λ
- evaluation every --eval-every epochs and at the end on val and test: per-image Dice at sigmoid 0.5
  (logit > 0), empty truth and empty prediction = 1; the best-val epoch among λ = 1 epochs is kept
  (as lvunet-edge's trainer), fused with the paper's deployment fusion and evaluated too.

All data is decoded once, put on the device as uint8 and augmented there.

GPU:   python3 tools/torch-reference/train_recipe.py --data .devdata/kvasir-256.npz \
          --split .devdata/kvasir-256.split.json --out $OUT/kvasir --device cuda
CPU smoke test:  /usr/bin/python3 tools/torch-reference/train_recipe.py --data .devdata/kvasir-256.npz \
          --split .devdata/kvasir-256.split.json --out /tmp/tr-smoke --device cpu --epochs 1 --limit 16

Writes to --out: summary.json, log.csv (one line per epoch), lvunet-best.safetensors (best λ = 1
val epoch, metadata lambda = 1; usable with `lvunet-edge model build --weights`) and
lvunet-last.safetensors.
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lvunet_torch import LVUNet, torchvision, write_safetensors  # noqa: E402

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SUBSETS = ('train', 'val', 'test')
T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f'[{time.perf_counter() - T0:7.1f}s] {msg}', flush=True)


# --- schedules (same formulas as src/train/schedule.ts) ------------------------------------------

def lambda_at(epoch: int, epochs: int, ramp_fraction: float = 0.9) -> float:
    ramp = min(math.floor(ramp_fraction * epochs), epochs - 1)
    p = 1.0 if ramp <= 0 else min(1.0, epoch / ramp)
    return 1.0 if p >= 1 else 1 - math.cos(math.pi / 2 * p)


def lr_at(epoch: int, epochs: int, lr: float, min_lr: float) -> float:
    if epochs == 1:
        return lr
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * epoch / (epochs - 1))) / 2


# --- data ---------------------------------------------------------------------------------------

def decode_jpegs(blob: np.ndarray, off: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """uint8 [n, 3, S, S] from the packed JPEGs (torchvision.io if present, else Pillow)."""
    out = []
    decoder = None
    if torchvision is not None:
        try:
            from torchvision.io import decode_jpeg
            decoder = 'torchvision.io'
        except ImportError:
            decoder = None
    if decoder is None:
        try:
            from PIL import Image
            decoder = 'PIL'
        except ImportError as e:
            raise SystemExit('cannot decode the packed JPEGs: install torchvision or Pillow') from e
    for i in idx:
        b = blob[off[i]:off[i + 1]]
        if decoder == 'torchvision.io':
            t = decode_jpeg(torch.from_numpy(b.copy()))
            out.append(t.numpy())
        else:
            out.append(np.asarray(Image.open(io.BytesIO(b.tobytes())).convert('RGB')).transpose(2, 0, 1))
    log(f'decoded {len(idx)} JPEGs with {decoder}')
    return np.stack(out)


def load_data(path: str, split_path: str, limit: int | None, device: torch.device):
    z = np.load(path, allow_pickle=False)
    meta = json.loads(str(z['meta']))
    ids = [str(s) for s in z['ids']]
    pos = {s: i for i, s in enumerate(ids)}
    split = json.loads(Path(split_path).read_text())
    size = int(meta['size'])
    data = {}
    for name in SUBSETS:
        stems = list(split[name])[: limit if limit else None]
        missing = [s for s in stems if s not in pos]
        if missing:
            raise SystemExit(f'{path} lacks {len(missing)} {name} ids of {split_path}, e.g. {missing[:3]}')
        idx = np.array([pos[s] for s in stems], dtype=np.int64)
        x = decode_jpegs(z['jpeg'], z['jpeg_off'], idx)
        m = np.unpackbits(z['masks'][idx], axis=1)[:, : size * size].reshape(len(idx), 1, size, size)
        data[name] = (torch.from_numpy(x).to(device), torch.from_numpy(m).to(device), stems)
    return data, meta, size


class Augmenter:
    """Batched rot90 / flips / brightness-contrast on the device, from one seeded generator."""

    def __init__(self, device: torch.device, seed: int, p: float = 0.5, brightness: float = 0.2, contrast: float = 0.2):
        self.g = torch.Generator(device=device)
        self.g.manual_seed(seed)
        self.device, self.p, self.brightness, self.contrast = device, p, brightness, contrast

    def _u(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.g, device=self.device)

    def geometry(self, x: torch.Tensor, y: torch.Tensor):
        n = x.shape[0]
        k = torch.floor(self._u(n) * 4).long()
        fh = (self._u(n) < self.p).view(n, 1, 1, 1)
        fv = (self._u(n) < self.p).view(n, 1, 1, 1)
        x = torch.where(fh, x.flip(3), x)
        y = torch.where(fh, y.flip(3), y)
        x = torch.where(fv, x.flip(2), x)
        y = torch.where(fv, y.flip(2), y)
        x, y = x.clone(), y.clone()
        for r in (1, 2, 3):
            sel = (k == r).nonzero().flatten()
            if sel.numel():
                x[sel] = torch.rot90(x[sel], r, dims=(2, 3))
                y[sel] = torch.rot90(y[sel], r, dims=(2, 3))
        return x, y

    def photometric(self, v: torch.Tensor) -> torch.Tensor:
        """v: float [n,3,H,W] in [0,1]."""
        n = v.shape[0]
        jitter = (self._u(n) < self.p).view(n, 1, 1, 1)
        a = (1 + (self._u(n) * 2 - 1) * self.contrast).view(n, 1, 1, 1)
        b = ((self._u(n) * 2 - 1) * self.brightness).view(n, 1, 1, 1)
        return torch.where(jitter, (a * v + b).clamp(0, 1), v)


_NORM: dict = {}


def normalise(v: torch.Tensor) -> torch.Tensor:
    # Constants made once per device: a host-to-device copy per step would stall the GPU queue.
    if v.device not in _NORM:
        _NORM[v.device] = (torch.tensor(MEAN, device=v.device).view(1, 3, 1, 1),
                           torch.tensor(STD, device=v.device).view(1, 3, 1, 1))
    mean, std = _NORM[v.device]
    return (v - mean) / std


# --- loss and metrics ---------------------------------------------------------------------------

def bce_dice_loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(z, y)
    p = torch.sigmoid(z).flatten(1)
    t = y.flatten(1)
    dice = (2 * (p * t).sum(1) + 1e-5) / (p.sum(1) + t.sum(1) + 1e-5)
    return 0.5 * bce + (1 - dice.mean())


@torch.no_grad()
def evaluate(model, x_u8: torch.Tensor, m_u8: torch.Tensor, batch: int = 32, amp=None):
    """Per-image Dice at logit > 0 (empty truth and prediction = 1); also returns the logits."""
    model.eval()
    dices, logits = [], []
    for i in range(0, x_u8.shape[0], batch):
        x = normalise(x_u8[i:i + batch].float() / 255)
        with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
            z = model(x).float()
        logits.append(z)
        pred = (z > 0).flatten(1).float()
        t = (m_u8[i:i + batch] > 0).flatten(1).float()
        s = pred.sum(1) + t.sum(1)
        d = torch.where(s == 0, torch.ones_like(s), 2 * (pred * t).sum(1) / s.clamp_min(1))
        dices.append(d)
    d = torch.cat(dices).cpu().numpy().astype(np.float64)
    return d, torch.cat(logits)


def stats(d: np.ndarray) -> dict:
    return {'mean': float(d.mean()) if d.size else float('nan'), 'std': float(d.std()) if d.size else float('nan'), 'n': int(d.size)}


# --- main ---------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True, help='packed data (pack-data.py)')
    ap.add_argument('--split', required=True, help='split.json with train/val/test stems')
    ap.add_argument('--out', required=True)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--epochs', type=int, default=300)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--min-lr', type=float, default=1e-5)
    ap.add_argument('--weight-decay', type=float, default=1e-4)
    ap.add_argument('--ramp-fraction', type=float, default=0.9)
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--eval-every', type=int, default=10, help='val + test Dice every N epochs (and at the end)')
    ap.add_argument('--time-budget-s', type=float, default=420,
                    help='stop before an epoch that would not leave time for the final evaluation (wall time since start)')
    ap.add_argument('--no-fit-budget', action='store_true',
                    help='keep --epochs even if it cannot fit --time-budget-s (by default, after epoch 2 the '
                         'epoch count is reduced, and the λ / lr schedules re-planned, so the run finishes '
                         'within the budget with λ = 1 for its last 10%%)')
    ap.add_argument('--limit', type=int, default=None, help='first N ids of each subset (smoke tests)')
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default 2 on cpu)')
    ap.add_argument('--amp', choices=['off', 'bf16'], default='off', help='autocast bf16 (default fp32)')
    ap.add_argument('--channels-last', action='store_true')
    ap.add_argument('--compile', action='store_true', help='torch.compile the model (torch 2.x)')
    ap.add_argument('--no-tf32', action='store_true', help='disable TF32 in cuDNN convolutions (on by default in torch)')
    args = ap.parse_args()

    device = torch.device(args.device)
    if device.type == 'cpu':
        torch.set_num_threads(args.threads or 2)
    elif args.threads:
        torch.set_num_threads(args.threads)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
        if args.no_tf32:
            torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    amp = torch.bfloat16 if args.amp == 'bf16' else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    env = {'torch': torch.__version__, 'torchvision': getattr(torchvision, '__version__', 'absent (stand-in encoder)'),
           'python': platform.python_version(), 'device': str(device),
           'device_name': torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine(),
           'threads': torch.get_num_threads(),
           'cudnn_tf32': bool(torch.backends.cudnn.allow_tf32) if device.type == 'cuda' else None}
    log(f'env {env}')
    data, meta, size = load_data(args.data, args.split, args.limit, device)
    xtr, mtr, _ = data['train']
    log(f"data {args.data}: {', '.join(f'{k} {len(v[2])}' for k, v in data.items())} at {size}x{size}")

    model = LVUNet().to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    fwd = torch.compile(model) if args.compile else model
    try:  # fused CUDA Adam (torch >= 2.0): same update, far fewer kernel launches
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay, fused=device.type == 'cuda')
    except (TypeError, RuntimeError):
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    env['adam'] = 'fused' if opt.defaults.get('fused') else 'default'
    aug = Augmenter(device, args.seed)
    gen = torch.Generator(device='cpu')
    gen.manual_seed(args.seed)
    n = xtr.shape[0]
    steps = max(1, n // args.batch)
    log(f'model: {sum(p.numel() for p in model.parameters())} params; {args.epochs} epochs x {steps} steps of {args.batch}')

    csv = open(out / 'log.csv', 'w')
    csv.write('epoch,lambda,lr,train_loss,seconds,elapsed_s,val_dice,val_dice_std,test_dice,test_dice_std\n')
    history, evals = [], []
    best = {'epoch': -1, 'val_dice': -1.0, 'state': None}
    epoch_s, eval_s = None, None
    stopped_early = False
    last_epoch = 0
    epochs_planned = args.epochs
    epochs = args.epochs

    def run_eval(epoch: int, lam: float) -> dict:
        nonlocal eval_s, best
        t = time.perf_counter()
        res = {'epoch': epoch, 'lambda': lam}
        for name in ('val', 'test'):
            x, m, _ = data[name]
            d, _ = evaluate(fwd, x, m, amp=amp)
            res[name] = stats(d)
        eval_s = time.perf_counter() - t
        if lam == 1.0 and (res['val']['n'] == 0 or res['val']['mean'] > best['val_dice']):
            best = {'epoch': epoch, 'val_dice': res['val']['mean'], 'state': copy.deepcopy(model.state_dict())}
            res['best'] = True
        evals.append(res)
        return res

    epoch = 0
    while epoch < epochs:
        elapsed = time.perf_counter() - T0
        reserve = 2 * (eval_s or 5.0) + 10.0  # final val+test, fused test, saving
        if epoch_s is not None and elapsed + epoch_s + reserve > args.time_budget_s:
            log(f'time budget {args.time_budget_s:.0f} s: stopping before epoch {epoch + 1} '
                f'(elapsed {elapsed:.0f} s, epoch {epoch_s:.1f} s, reserve {reserve:.0f} s)')
            stopped_early = True
            break
        lam = lambda_at(epoch, epochs, args.ramp_fraction)
        lr = lr_at(epoch, epochs, args.lr, args.min_lr)
        model.set_lambda(lam)
        for g in opt.param_groups:
            g['lr'] = lr
        model.train()
        t = time.perf_counter()
        order = torch.randperm(n, generator=gen).to(device)
        xe, me = aug.geometry(xtr[order], mtr[order])
        loss_sum = torch.zeros((), device=device)
        for s in range(steps):
            xb = normalise(aug.photometric(xe[s * args.batch:(s + 1) * args.batch].float() / 255))
            yb = me[s * args.batch:(s + 1) * args.batch].float()
            if args.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                z = fwd(xb)
            loss = bce_dice_loss(z.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
        train_loss = float(loss_sum) / steps  # one sync per epoch
        if not math.isfinite(train_loss):
            raise SystemExit(f'epoch {epoch + 1}: loss is {train_loss}')
        epoch_s = time.perf_counter() - t
        last_epoch = epoch + 1
        row = {'epoch': epoch + 1, 'lambda': lam, 'lr': lr, 'train_loss': train_loss, 'seconds': epoch_s}
        ev = None
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == epochs:
            ev = run_eval(epoch + 1, lam)
            row['val_dice'] = ev['val']['mean']
            row['test_dice'] = ev['test']['mean']
        row['elapsed_s'] = time.perf_counter() - T0
        history.append(row)
        csv.write(f"{epoch + 1},{lam:.6g},{lr:.6g},{train_loss:.6g},{epoch_s:.3f},{row['elapsed_s']:.1f},"
                  + (f"{ev['val']['mean']:.6g},{ev['val']['std']:.6g},{ev['test']['mean']:.6g},{ev['test']['std']:.6g}" if ev else ',,,')
                  + '\n')
        csv.flush()
        msg = f'epoch {epoch + 1}/{epochs} λ {lam:.4f} lr {lr:.2e} loss {train_loss:.4f} {epoch_s:.2f} s ({steps * args.batch / epoch_s:.0f} img/s)'
        if ev:
            msg += f" | val Dice {ev['val']['mean']:.4f} ± {ev['val']['std']:.4f} test Dice {ev['test']['mean']:.4f} ± {ev['test']['std']:.4f}"
            msg += ' (best λ=1)' if ev.get('best') else ''
        log(msg)
        epoch += 1
        if epoch == 2 and epochs > 2 and not args.no_fit_budget:
            # Epoch 2 is the first without warm-up costs; time an evaluation too, then shrink the plan
            # if it cannot finish in the budget (re-planning this early barely moves λ and lr).
            if ev is None:
                run_eval(epoch, lam)
            per_epoch = min(h['seconds'] for h in history)
            reserve = 2 * eval_s + 10.0
            fit = epochs
            while fit > epoch + 1:
                n_evals = fit // args.eval_every - epoch // args.eval_every + 1
                need = time.perf_counter() - T0 + (fit - epoch) * per_epoch + n_evals * eval_s + reserve
                if need <= args.time_budget_s:
                    break
                fit -= 1
            if fit < epochs:
                log(f'time budget {args.time_budget_s:.0f} s: {per_epoch:.2f} s/epoch, {eval_s:.2f} s/eval -> '
                    f're-planned to {fit} epochs (from {epochs}); λ reaches 1 at epoch '
                    f'{min(math.floor(args.ramp_fraction * fit), fit - 1) + 1}')
                epochs = fit

    # Final evaluation of the last epoch, unless it was just evaluated.
    lam_last = lambda_at(last_epoch - 1, epochs, args.ramp_fraction) if last_epoch else 0.0
    if last_epoch and (not evals or evals[-1]['epoch'] != last_epoch):
        ev = run_eval(last_epoch, lam_last)
        log(f"final eval (epoch {last_epoch}, λ {lam_last:.4f}): val Dice {ev['val']['mean']:.4f} ± {ev['val']['std']:.4f}, "
            f"test Dice {ev['test']['mean']:.4f} ± {ev['test']['std']:.4f}")
    last = evals[-1] if evals else None
    write_safetensors(str(out / 'lvunet-last.safetensors'), dict(model.state_dict()),
                      {'lambda': repr(lam_last), 'epoch': str(last_epoch), 'producer': f'train_recipe.py torch {torch.__version__}'})

    summary = {
        'recipe': {k: getattr(args, k) for k in ('epochs', 'batch', 'lr', 'min_lr', 'weight_decay', 'ramp_fraction', 'seed',
                                                   'eval_every', 'time_budget_s', 'limit', 'amp', 'channels_last', 'compile')},
        'data': {'file': args.data, 'split': args.split, 'meta': meta, 'counts': {k: len(v[2]) for k, v in data.items()}},
        'env': env,
        'epochs_planned': epochs_planned,
        'epochs_after_budget_fit': epochs,
        'epochs_done': last_epoch,
        'stopped_early': stopped_early,
        'lambda_final': lam_last,
        'seconds_per_epoch_median': float(np.median([h['seconds'] for h in history])) if history else None,
        'history': history,
        'evaluations': evals,
        'final': {'epoch': last_epoch, 'lambda': lam_last, 'val_dice': last['val'] if last else None,
                  'test_dice': last['test'] if last else None},
    }

    if best['state'] is not None:
        model.load_state_dict(best['state'])
        write_safetensors(str(out / 'lvunet-best.safetensors'), dict(model.state_dict()),
                          {'lambda': '1', 'epoch': str(best['epoch']), 'val_dice': repr(best['val_dice']),
                           'producer': f'train_recipe.py torch {torch.__version__}'})
        xt, mt, _ = data['test']
        d_train, z_train = evaluate(model, xt, mt, amp=amp)
        deployed = copy.deepcopy(model).switch_to_deploy()
        d_dep, z_dep = evaluate(deployed, xt, mt, amp=amp)
        summary['best_lambda1'] = {
            'epoch': best['epoch'], 'val_dice': best['val_dice'], 'test_dice': stats(d_train),
            'test_dice_deployed': stats(d_dep),
            'deployed_vs_training_max_abs_logit_diff': float((z_dep - z_train).abs().max()) if z_train.numel() else None,
            'weights': str(out / 'lvunet-best.safetensors'),
        }
        log(f"best λ=1 epoch {best['epoch']}: val Dice {best['val_dice']:.4f}; test Dice {stats(d_train)['mean']:.4f} ± "
            f"{stats(d_train)['std']:.4f}; fused: {stats(d_dep)['mean']:.4f} (max |Δ logit| fused vs unfused "
            f"{summary['best_lambda1']['deployed_vs_training_max_abs_logit_diff']:.2e})")
    else:
        summary['best_lambda1'] = None
        log('no evaluated epoch had λ = 1: no lvunet-best.safetensors (the run stopped before λ reached 1)')

    summary['wall_s'] = time.perf_counter() - T0
    (out / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    csv.close()
    log(f"done in {summary['wall_s']:.1f} s: {last_epoch} epochs; final test Dice "
        f"{summary['final']['test_dice']['mean'] if last else float('nan'):.4f}; summary {out / 'summary.json'}")


if __name__ == '__main__':
    main()
