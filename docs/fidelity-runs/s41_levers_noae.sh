#!/usr/bin/env bash
# Forty-first session, after shipping the fine-tune on L_Dec alone: two levers on top of it, each against the
# L_Dec-alone runs of the same sets by the same command (`pkg_exploit.sh`), one thread on core CORE:
# 0 = 5 TORCS cars (against s40_cars5_ft-noae), 1 = 5 aircraft outside the benchmark (against s40_xfer5_ft-noae).
#   LEVER=fit8: half the Encode-Scene budget (`exploit.fit.epochs=8.333333333333334`, 200 view-updates per scene;
#     Encode-Scene is now ~56 % of ours' time per scene; thirty-fifth session, with L_ae: level on aircraft, -0.10 on
#     cars).
#   LEVER=ft6: the time saved spent on the fine-tune's length, 6 epochs instead of 4 (`exploit.finetune.epochs=6`;
#     thirty-fourth session, with L_ae: +0.08 [-0.03, +0.19] on 4 small aircraft for 1.57x the fine-tune).
# Forty-second session, after shipping 6 fine-tune epochs: `TAG=ft6 LOGS=s42 LEVER=fit8` measures half the
# Encode-Scene budget on top of them (shipped-128's config now carries the 6 epochs), against s41_*_noae-ft6.
#   LEVER=fit8ft8 (with TAG=ft6): that half budget's time spent on 8 fine-tune epochs instead of 6.
# Forty-third session, with fit8ft8 in the package's config: `TAG=fit8ft8 LOGS=s43 LEVER=dc16|dc16ft16`, L_Dec on a
# random 16 x 16 window of the 32 x 32 latent grid (`exploit.finetune.dec_crop=16`: a quarter of the rays and of the
# decode per view), at the same 8 epochs and at 16, against s42_*_ft6-fit8ft8; `LEVER=ftlocal3`: the fine-tune's
# learning rate of the scenes' own planes T_mic 3x (`exploit.finetune.lr_local=0.003`; ninth session at 64 px: +0.06
# [+0.00, +0.13]), the same time.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=1
CORE=${CORE:-0}; LEVER=${LEVER:-fit8}
case $CORE in 0) DATA=data/torcs128 SET=cars5 ;; *) DATA=data/fg128-xfer5 SET=xfer5 ;; esac
FIT8=(--set exploit.fit.epochs=8.333333333333334)
case $LEVER in fit8) OV=("${FIT8[@]}") ;; ft6) OV=(--set exploit.finetune.epochs=6) ;;
  fit8ft8) OV=("${FIT8[@]}" --set exploit.finetune.epochs=8) ;;
  dc16) OV=(--set exploit.finetune.dec_crop=16) ;;
  dc16ft16) OV=(--set exploit.finetune.dec_crop=16 --set exploit.finetune.epochs=16) ;;
  ftlocal3) OV=(--set exploit.finetune.lr_local=0.003) ;;
  *) echo "LEVER must be fit8, ft6, fit8ft8, dc16, dc16ft16 or ftlocal3" >&2; exit 2 ;; esac
DATA=$DATA NEX=5 RES=128 OUT=runs/${LOGS:-s41} taskset -c "$CORE" scripts/experiments/pkg_exploit.sh shipped-128 \
  "${SET}_${TAG:-noae}-$LEVER" "${OV[@]}"
