#!/usr/bin/env bash
# Fortieth session: the fine-tune without L_ae on the `cpu-128` benchmark's 10 exploit scenes (one batch, as the
# benchmark learns them), beside the package's recipe by the same command (CORE=1), so that the pair does not depend
# on whether the benchmark's own exploit is reproduced; the benchmark's RGB (s39_card_bench-rgb) gives ours minus RGB.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=1
if [ "${CORE:-0}" = 0 ]; then
  env DATA=data/fg128-bench10 NEX=10 RES=128 OUT=runs/s40 taskset -c 0 scripts/experiments/pkg_exploit.sh shipped-128 \
    bench10_ft-noae --set exploit.finetune.lambda_ae=0
else
  env DATA=data/fg128-bench10 NEX=10 RES=128 OUT=runs/s40 taskset -c 1 scripts/experiments/pkg_exploit.sh shipped-128 \
    bench10_full
fi
