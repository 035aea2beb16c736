#!/usr/bin/env bash
# Fortieth session: Tri-Planes (RGB) on the 5 scenes of s40_xferdec.sh (the `cpu-128` benchmark's baseline settings:
# tiny-cpu, T = 64, 1,600 steps of 1,024 rays, 128 px), so that `shipped-128`'s full recipe there has its RGB row.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=1
o=runs/s40/xfer5_rgb
[ -f $o/results.json ] || taskset -c 1 latentscenes fit-rgb --data data/fg128-xfer5 --split exploit --out $o --preset tiny-cpu \
  --set resolution=128 --set steps=1600 --set eval_every=0 --resume > $o.log 2>&1
[ -f $o.metrics.json ] || taskset -c 1 latentscenes eval --run $o --data data/fg128-xfer5 --scenes exploit --out $o.metrics.json >> $o.log 2>&1
