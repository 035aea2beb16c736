#!/usr/bin/env bash
# Fortieth session, with s40_ft_parts.sh: (f) the package's fine-tune without its L_ae term (Alg. 2 as the paper
# writes it: L_Dec alone, the decoder trainable), on s40_xferdec.sh's 5 scenes. One thread on core 1.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=1
env DATA=data/fg128-xfer5 NEX=5 RES=128 OUT=runs/s40 taskset -c 1 scripts/experiments/pkg_exploit.sh shipped-128 \
  xfer5_ft-noae --set exploit.finetune.lambda_ae=0
