#!/usr/bin/env bash
# Fortieth session: where the exploit's decoder fine-tune gains (+1.95 dB on s40_xferdec.sh's 5 scenes, scene by
# scene: a decoder fine-tuned on other scenes does not carry it). The package's recipe with one side frozen:
# (d) the decoder frozen (L_Dec refines planes, W, MLP and B through it; L_ae off, it has nothing to train);
# (e) the planes, W, MLP and B frozen (the decoder alone learns, L_Dec + L_ae). One thread on core 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=1
R="env DATA=data/fg128-xfer5 NEX=5 RES=128 OUT=runs/s40 taskset -c 0 scripts/experiments/pkg_exploit.sh"
$R shipped-128 xfer5_ft-decfrozen --set exploit.finetune.lr_decoder=0 --set exploit.finetune.lambda_ae=0
$R shipped-128 xfer5_ft-deconly --set exploit.finetune.lr_local=0 --set exploit.finetune.lr_coefs=0 \
  --set exploit.finetune.lr_global=0 --set exploit.finetune.lr_mlp=0
