#!/usr/bin/env bash
# Forty-fourth session: `shipped-128`'s run with its joint stage continued from 2,400 to 4,000 steps (the lever the
# issue's plain-AE margin has left: the ablation gains from every exploit change as ours does, the joint stage is
# ours alone; at 64 px package v7 measured +0.22 dB [+0.15, +0.29] for the same 1,600 steps, seventeenth session).
# Step A (two threads, nothing beside it): the run copied without its model/ and manifest.json, resumed to 4,000
#   joint steps, exported: `R=runs/ship3da-gen-128-j4000; cp -r runs/ship3da-gen-128-j2400 $R; rm -rf $R/model
#   $R/manifest.json; AE=shipped-general RES=128 BASE=$R RUN=$R PKG=runs/pkgs/3daae-gen-128-j4000
#   WARM=runs/pkgs/gen-128-warm3000 TRAIN_SET="--set ae.amp=true" STOP_AFTER=export JOINT=4000 OMP_NUM_THREADS=2
#   bash scripts/ship_3daae.sh` (BASE=RUN: the copy's finished warm-up is the one step 2 checks for).
# Step B (this script, STEP=package, two threads): the package's steps 2-3 of ship_3daae_128.sh on that export, each
#   into folders of its own (the shipped package's runs untouched).
# Step C (this script, STEP=sets, one thread per core, side by side): the shipped recipe with the new package on the
#   lever sets of the forty-first to forty-third sessions, against s42_*_ft6-fit8ft8 (the shipped package, the same
#   command): CORE=0 5 TORCS cars, CORE=1 5 aircraft outside the benchmark.
# Step D (one thread per core, side by side): STEP=demo6, the 128 px demo's 6 new scenes on core 0 (against the forty-
#   third session's demo, docs/fidelity-runs/demo-2026-12-08-s43-128/metrics_ours.json: the same scenes, views and
#   recipe; the demo's exploit is this command's, s40's demo reproduced s39_demo6_gen to the last digit); STEP=probe,
#   the consistency probe of the new package on the benchmark's 10 scenes on core 1 (against s39_card_probe-ours.json,
#   the shipped package's, by the command of ship_3daae_128.sh step 4).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
NEW=runs/pkgs/3daae-gen-128-j4000-pkg
mkdir -p runs/s44
case ${STEP:-package} in
  package)
    SRC=runs/pkgs/3daae-gen-128-j4000 PKG=$NEW PKG0=runs/pkgs/gen-128-j4000-t64 DEC=runs/gen128-j4000-decren \
      PKG1=runs/pkgs/gen-128-j4000-dec1200 DEC2=runs/gen128-j4000-decren-up2 STOP_AFTER=package \
      OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} bash scripts/ship_3daae_128.sh ;;
  sets)
    export OMP_NUM_THREADS=1
    CORE=${CORE:-0}
    case $CORE in 0) DATA=data/torcs128 SET=cars5 ;; *) DATA=data/fg128-xfer5 SET=xfer5 ;; esac
    DATA=$DATA NEX=5 RES=128 OUT=runs/s44 taskset -c "$CORE" scripts/experiments/pkg_exploit.sh "$NEW" "${SET}_j4000" ;;
  demo6)
    DATA=data/flightgear-demo-128 NEX=6 RES=128 OUT=runs/s44 OMP_NUM_THREADS=1 taskset -c 0 \
      scripts/experiments/pkg_exploit.sh "$NEW" demo6_j4000 ;;
  probe)
    OMP_NUM_THREADS=1 taskset -c 1 latentscenes probe --run "$NEW" --data data/fg128-bench10 --scenes exploit \
      --n-scenes 10 --out runs/s44/probe_j4000.json > runs/s44/probe_j4000.log 2>&1 ;;
  *) echo "STEP must be package, sets, demo6 or probe" >&2; exit 2 ;;
esac
