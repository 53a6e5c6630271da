#!/usr/bin/env bash
# Regenerates test/fixtures/torch-reference/ (see README.md in this folder) and checks, on the
# way, that a safetensors file written from the PyTorch model's own state_dict goes through
# `lvunet-edge model build` and reproduces the PyTorch logits.
#
# Needs: a built checkout (npm run build), ../shared/datasets, and a python with torch + torchvision
# + numpy (default /usr/bin/python3, Debian's torch 1.13; override with PYTHON=...).
# usage: tools/torch-reference/make-fixture.sh [--seed 2024] [--gain 2] [--lambda 0.37]
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/usr/bin/python3}
SEED=2024 GAIN=2 LAMBDA=0.37
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) SEED=$2; shift 2 ;;
    --gain) GAIN=$2; shift 2 ;;
    --lambda) LAMBDA=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
WORK=.devdata/torch-reference
FIXTURE=test/fixtures/torch-reference
[ -f dist/src/cli/main.js ] || { echo "build first: npm run build" >&2; exit 1; }
rm -rf "$WORK" "$FIXTURE"
mkdir -p "$WORK" "$FIXTURE"

echo "== 1. weights and inputs from lvunet-edge (seed $SEED, gain $GAIN, random BN statistics)"
node tools/torch-reference/export-inputs.mjs --out "$WORK" --seed "$SEED" --gain "$GAIN"

echo "== 2. PyTorch reference logits (λ = 1, λ = $LAMBDA, deploy at λ = 1)"
"$PYTHON" tools/torch-reference/run_reference.py --work "$WORK" --out "$FIXTURE" --lambda "$LAMBDA" \
  --state-dict "$WORK/torch-state-dict.safetensors"

echo "== 3. the torch-written state_dict through 'lvunet-edge model build', vs the PyTorch logits"
node dist/src/cli/main.js model build --weights "$WORK/torch-state-dict.safetensors" --out "$WORK/model-from-torch"
node tools/torch-reference/compare-onnx.mjs --model "$WORK/model-from-torch" --work "$WORK" --fixture "$FIXTURE"

echo "== 4. the CI test on the new fixture"
npx tap test/model/torch-reference.test.ts
du -sh "$FIXTURE"

echo "== 5. sensitivity: how far plausible mistakes move the PyTorch logits (all must exceed 1e-4)"
"$PYTHON" tools/torch-reference/sensitivity.py --work "$WORK" --fixture "$FIXTURE"

echo "== 6. the paper code's own deployment export (torch.onnx.export), timed against ours by npm run bench"
"$PYTHON" tools/torch-reference/export_paper_onnx.py --state-dict "$WORK/torch-state-dict.safetensors" \
  --out "$FIXTURE/paper-deploy.onnx"
npx tap test/model/torch-reference.test.ts
