#!/usr/bin/env bash
# Forty-first session, after shipping the fine-tune on L_Dec alone: Encode-Scene is now ~56 % of ours' time per new
# scene. Half its budget (`exploit.fit.epochs=8.333333333333334`, 200 view-updates per scene; thirty-fifth session:
# level on aircraft, -0.10 on cars, with L_ae) on two sets whose L_Dec-alone figure the package has by the same
# command, one thread on core CORE: 0 = 5 TORCS cars (against s40_cars5_ft-noae), 1 = 5 aircraft outside the
# benchmark (against s40_xfer5_ft-noae).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=1
CORE=${CORE:-0}
case $CORE in 0) DATA=data/torcs128 NAME=cars5_noae-fit8 ;; *) DATA=data/fg128-xfer5 NAME=xfer5_noae-fit8 ;; esac
DATA=$DATA NEX=5 RES=128 OUT=runs/s41 taskset -c "$CORE" scripts/experiments/pkg_exploit.sh shipped-128 "$NAME" \
  --set exploit.fit.epochs=8.333333333333334
