#!/usr/bin/env bash
# Continue the shipped base autoencoder (optionally grown) on a pre-training mix, then measure it on the three
# categories (issue 15; docs/autoencoder.md, "Three categories"): airliners (data/fg128 exploit), TORCS cars
# (data/torcs128 exploit, never in any mix) and Sweet Home 3D furniture (data/sh3d128, unseen unless the mix
# has furniture). Resumable: rerun the same command after an interruption.
#
#   scripts/experiments/ae_mix_run.sh NAME MIX MINUTES [GROW_ARGS...]
#     NAME      run folder runs/ae/NAME (+ NAME.eval-*.json, NAME.log)
#     MIX       dataset for `ae pretrain --data` (e.g. data/pretrain-mix-l)
#     MINUTES   wall-clock budget of the pre-training (the cosine tail ends with it)
#     GROW_ARGS e.g. --extra-layers 1 or --width 2 (none: the shipped size)
# env: CORE (taskset core, default 0), OMP_NUM_THREADS (default 1), START (weights to continue: default the
#      shipped ones; an autoencoder file, e.g. an earlier run's ae.safetensors), PRETRAIN_ARGS (extra arguments
#      of the first `ae pretrain` call, e.g. "--set downscale_prob=0.75")
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # this checkout's code (a snapshot's), not the editable install's
NAME=$1; MIX=$2; MINUTES=$3; shift 3
OUT=runs/ae; mkdir -p $OUT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
RUN="taskset -c ${CORE:-0} .venv/bin/latentscenes"
START=${START:-shipped}
if [ $# -gt 0 ]; then
  GROWN=$OUT/$NAME.start.safetensors
  [ -f $GROWN ] || $RUN ae grow --ae $START --out $GROWN "$@"
  START=$GROWN
fi
if [ -f $OUT/$NAME/checkpoint.safetensors ] && [ ! -f $OUT/$NAME/ae.safetensors ]; then
  $RUN ae pretrain --out $OUT/$NAME --resume
elif [ ! -f $OUT/$NAME/ae.safetensors ]; then
  $RUN ae pretrain --preset finetune --ae $START --data $MIX --out $OUT/$NAME --steps 0 --minutes $MINUTES ${PRETRAIN_ARGS:-}
fi
[ -d data/sh3d128 ] || $RUN data build sweethome3d --out data/sh3d128 --num-instances 100 --views 2 --test-views 8 --workers 1
for spec in "fg128 exploit" "torcs128 exploit" "sh3d128 all"; do
  set -- $spec
  [ -f $OUT/$NAME.eval-$1.json ] || $RUN ae eval --ae $OUT/$NAME/ae.safetensors --data data/$1 --scenes $2 --views test \
      --resolution 64 --resolution 128 $( [ $1 = sh3d128 ] && echo --max-scenes 40 ) --out $OUT/$NAME.eval-$1.json
done
