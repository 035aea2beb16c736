#!/usr/bin/env bash
# Fortieth session, after s40_ft_parts.sh: the fine-tune with the decoder frozen (half the fine-tune's step) on
# another category and at a longer length. CORE=0: 5 TORCS cars (the full recipe's figure there: s38_cars5_gen, the
# same weights and config); CORE=1: set B at 6 epochs instead of 4.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=1
DF=(--set exploit.finetune.lr_decoder=0 --set exploit.finetune.lambda_ae=0)
if [ "${CORE:-0}" = 0 ]; then
  env DATA=data/torcs128 NEX=5 RES=128 OUT=runs/s40 taskset -c 0 scripts/experiments/pkg_exploit.sh shipped-128 \
    cars5_ft-decfrozen "${DF[@]}"
else
  env DATA=data/fg128-xfer5 NEX=5 RES=128 OUT=runs/s40 taskset -c 1 scripts/experiments/pkg_exploit.sh shipped-128 \
    xfer5_ft-decfrozen-6ep "${DF[@]}" --set exploit.finetune.epochs=6
fi
