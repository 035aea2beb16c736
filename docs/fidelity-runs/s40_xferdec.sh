#!/usr/bin/env bash
# Fortieth session: does a decoder fine-tuned on some new scenes serve other new scenes without a fine-tune of its own?
# (At N_exploit = 1000 the fine-tune's decodes are most of ours' time per scene; if one fine-tune on a subset served
# the rest, its cost would spread over every scene.) One thread on core 1, beside the demo on core 0. As run, the
# swap was a python snippet (now s40_swap_decoder.py) and the first arm was named xfer5_nofit (files renamed since).
# Set A: the cpu-128 benchmark's 10 exploit scenes (docs/bench-cpu-128-s39-gen), whose ours/exploit run fine-tuned
# its decoder (4 epochs, L_Dec + L_ae). Set B: 5 other exploit scenes of data/fg128, disjoint from A.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=1
latentscenes data view --out data/fg128-xfer5 --take data/fg128:exploit:339-Delta,A321-EasyJet,Centrair-101-F-CHGR,F-4,dr400-ai
# the package with its decoder replaced by set A's fine-tuned one (encoder, MLP and B the package's); the exploit run
# stores only the decoder, so the file is the package's shared.safetensors with vae.decoder/post_quant_conv swapped
mkdir -p runs/s40
[ -f runs/s40/xferdec_shared.safetensors ] || python docs/fidelity-runs/s40_swap_decoder.py \
  latentscenes/pretrained/3daae-airliners-128/model/shared.safetensors \
  runs/bench-cpu-128-gen/runs/ours/exploit/model/shared.safetensors runs/s40/xferdec_shared.safetensors
[ -d runs/s40/pkg-xferdec ] || latentscenes export --run shipped-128 --ae runs/s40/xferdec_shared.safetensors --out runs/s40/pkg-xferdec
R="env DATA=data/fg128-xfer5 NEX=5 RES=128 OUT=runs/s40 taskset -c 1 scripts/experiments/pkg_exploit.sh"
$R shipped-128 xfer5_noft --set exploit.finetune_decoder=false       # (c) the package, no fine-tune
$R runs/s40/pkg-xferdec xfer5_xferdec --set exploit.finetune_decoder=false  # (b) set A's decoder, no fine-tune
$R shipped-128 xfer5_full                                            # (a) the package's recipe (4-epoch fine-tune)
