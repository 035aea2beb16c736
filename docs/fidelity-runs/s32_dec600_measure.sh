#!/usr/bin/env bash
# Thirty-second session: the finer-grid render decoder (s31_decren_up2.sh, resumed with STEPS=600) exported with the
# `upscale=2` recipe in the package's config (`export --set`), then new scenes learned with no override on four sets,
# one thread per run, two side by side (as run; the session used absolute paths under /work/main).
cd "$(dirname "$0")/../.."; source .venv/bin/activate
P=$PWD/runs/s32/pkg-decren-up2-600
[ -d $P ] || latentscenes export --run shipped-128 --ae runs/s31/decren-up2/model/shared.safetensors --out $P \
  --set ae.upscale=2 --set data.shift_grid=1 --set render.offset_ensemble=1
export OMP_NUM_THREADS=1 RES=128 OUT=$PWD/runs/s32
( DATA=$PWD/data/flightgear-demo-128 NEX=6 taskset -c 0 bash scripts/experiments/pkg_exploit.sh $P demo128_dec600
  DATA=$PWD/data/fg128-rgb4 NEX=4 taskset -c 0 bash scripts/experiments/pkg_exploit.sh $P rgb4_dec600 ) &
( DATA=$PWD/data/torcs128 NEX=5 taskset -c 1 bash scripts/experiments/pkg_exploit.sh $P torcs_dec600
  DATA=$PWD/data/fg128 NEX=4 taskset -c 1 bash scripts/experiments/pkg_exploit.sh $P fg128_dec600 ) &
wait
