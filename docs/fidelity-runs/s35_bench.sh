#!/bin/bash
# The cpu-128 benchmark of the half-fit candidate (runs/s35/pkg-fit8 = shipped-128 + exploit.fit.epochs=8.33), in parts,
# each alone on its core: B (plain-ae) on core 1 after torcs_ship; A (rgb reused from the s33 bench + ours) on core 0
# after demo6_fit8; then torcs_fit8 on core 1 and the tables on core 0.
cd /work/main && source .venv/bin/activate
export OMP_NUM_THREADS=1
Y=runs/s35/bench-cpu-128-fit8
COMMON="--preset cpu-128 --data data/fg128 --out $Y --set pretrained=runs/s35/pkg-fit8 --resume"
S=runs/s35/bench_status.txt
# a benchmark folder (its mark) that starts with the s33 benchmark's finished parts that the recipe does not change
mkdir -p $Y; [ -f $Y/latentscenes.json ] || cp runs/s33/bench-cpu-128-up2-300-amp/latentscenes.json $Y/
(
  while [ ! -f runs/s35/torcs_ship.metrics.json ]; do sleep 15; done
  # the plain-AE warm-up does not read the exploit recipe: reused from the s33 benchmark (its finished train/ folder)
  mkdir -p $Y/runs/plain-ae; [ -d $Y/runs/plain-ae/train ] || cp -r runs/s33/bench-cpu-128-up2-300-amp/runs/plain-ae/train $Y/runs/plain-ae/train
  echo "B start $(date)" >> $S
  taskset -c 1 latentscenes bench $COMMON --only plain-ae > runs/s35/bench_partB.log 2>&1
  echo "B done rc=$? $(date)" >> $S
  DATA=data/torcs128 NEX=5 RES=128 OUT=runs/s35 taskset -c 1 bash scripts/experiments/pkg_exploit.sh shipped-128 torcs_fit8 --set exploit.fit.epochs=8.333333333333334
  echo "torcs_fit8 done $(date)" >> $S
) &
while [ ! -f runs/s35/demo6_fit8.metrics.json ]; do sleep 15; done
mkdir -p $Y/runs; [ -d $Y/runs/rgb ] || cp -r runs/s33/bench-cpu-128-up2-300-amp/runs/rgb $Y/runs/rgb
echo "A start $(date)" >> $S
taskset -c 0 latentscenes bench $COMMON --only rgb --only ours > runs/s35/bench_partA.log 2>&1
echo "A done rc=$? $(date)" >> $S
while pgrep -f "only plain-ae" > /dev/null; do sleep 20; done
taskset -c 0 latentscenes bench --resume --data data/fg128 --out $Y > runs/s35/bench_tables.log 2>&1
echo "tables done rc=$? $(date)" >> $S
wait
