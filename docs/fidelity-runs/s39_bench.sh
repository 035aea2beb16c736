#!/bin/bash
# The cpu-128 benchmark of the general-base candidate (candidates/3daae-gen-128), in two parts, each alone on its
# core at one thread: A (rgb + ours) on core 0; B (plain-ae) then the demo's 6 scenes on core 1; then the tables.
cd /work/main && source .venv/bin/activate
export OMP_NUM_THREADS=1
Y=runs/bench-cpu-128-gen
COMMON="--preset cpu-128 --data data/fg128 --out $Y --set pretrained=candidates/3daae-gen-128 --resume"
S=runs/s39/bench_status.txt
(
  echo "B start $(date)" >> $S
  taskset -c 1 latentscenes bench $COMMON --only plain-ae > runs/s39/bench_partB.log 2>&1
  echo "B done rc=$? $(date)" >> $S
  DATA=data/flightgear-demo-128 NEX=6 RES=128 OUT=runs/s39 taskset -c 1 bash scripts/experiments/pkg_exploit.sh candidates/3daae-gen-128 demo6_gen > runs/s39/demo6_gen.out 2>&1
  echo "demo6_gen done rc=$? $(date)" >> $S
) &
echo "A start $(date)" >> $S
taskset -c 0 latentscenes bench $COMMON --only rgb --only ours > runs/s39/bench_partA.log 2>&1
echo "A done rc=$? $(date)" >> $S
wait
taskset -c 0 latentscenes bench --resume --data data/fg128 --out $Y > runs/s39/bench_tables.log 2>&1
echo "tables done rc=$? $(date)" >> $S
