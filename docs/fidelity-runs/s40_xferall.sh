#!/usr/bin/env bash
# Fortieth session, after s40_xferdec.sh: the same transfer with set A's MLP and B as well as its decoder (everything
# the benchmark's ours/exploit run saved: decoder, MLP, B, latent background), set B fitted with them, no fine-tune.
# (As first run the manifest kept pkg-xferdec's sha256, and `eval` refused the batch: run again with it fixed.)
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=1
P=runs/s40/pkg-xferall
if [ ! -f $P/manifest.json ]; then
  rm -rf $P.tmp && cp -r runs/s40/pkg-xferdec $P.tmp
  python docs/fidelity-runs/s40_swap_decoder.py latentscenes/pretrained/3daae-airliners-128/model/shared.safetensors \
    runs/bench-cpu-128-gen/runs/ours/exploit/model/shared.safetensors $P.tmp/model/shared.safetensors --all
  # the manifest records the weights' sha256 (an exploit batch checks its source by it): the swapped file's
  python -c "from latentscenes.training import run_format as rf; m = rf.read_manifest('$P.tmp'); \
m['model']['sha256_shared'] = rf.shared_sha256('$P.tmp'); rf.write_manifest('$P.tmp', m)"
  mv $P.tmp $P
fi
env DATA=data/fg128-xfer5 NEX=5 RES=128 OUT=runs/s40 taskset -c 1 scripts/experiments/pkg_exploit.sh $P xfer5_xferall \
  --set exploit.finetune_decoder=false
