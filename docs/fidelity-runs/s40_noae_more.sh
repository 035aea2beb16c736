#!/usr/bin/env bash
# Fortieth session, after s40_ft_parts.sh / s40_ft_noae.sh: the fine-tune without L_ae (L_Dec alone, 0.52x the
# fine-tune's time, level on set B) on two sets whose full-recipe figure this package already has with the same
# command: CORE=0 5 TORCS cars (s38_cars5_gen), CORE=1 the 128 px demo's 6 scenes (s39_demo6_gen, which the demo of
# this session reproduced to the last digit).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=1
if [ "${CORE:-0}" = 0 ]; then
  env DATA=data/torcs128 NEX=5 RES=128 OUT=runs/s40 taskset -c 0 scripts/experiments/pkg_exploit.sh shipped-128 \
    cars5_ft-noae --set exploit.finetune.lambda_ae=0
else
  env DATA=data/flightgear-demo-128 NEX=6 RES=128 OUT=runs/s40 taskset -c 1 scripts/experiments/pkg_exploit.sh \
    shipped-128 demo6_ft-noae --set exploit.finetune.lambda_ae=0
fi
