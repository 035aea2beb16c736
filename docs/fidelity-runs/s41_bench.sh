#!/bin/bash
# The cpu-128 benchmark of `shipped-128` with the exploit's decoder fine-tune on L_Dec alone
# (`exploit.finetune.lambda_ae=0`), in two parts, each alone on its core at one thread: A (rgb + ours) on core 0;
# B (plain-ae) then the 128 px demo on core 1 (with the package of the working tree, its config changed the same way);
# then the tables. The package measured: `latentscenes export --run shipped-128 --out runs/pkgs/noae --set
# exploit.finetune.lambda_ae=0` (its config.json and weights byte for byte those shipped since the forty-first session;
# its manifest differs only in `derived_from`).
# As run in the forty-first session, parts A and B were started by hand with the commands below and this script's
# second half (WAIT=1) waited for them (their logs then went to /work/logs/bench-noae-{a,b}.log).
# The forty-second session ran it again for 6 fine-tune epochs: `latentscenes export --run shipped-128 --out
# runs/pkgs/ft6 --set exploit.finetune.epochs=6`, then `NAME=ft6 LOGS=s42 bash docs/fidelity-runs/s41_bench.sh` with the
# package's config in the working tree already changed the same way (the demo reads it).
cd "$(dirname "$0")/../.." && source .venv/bin/activate
export OMP_NUM_THREADS=1
NAME=${NAME:-noae}; L=runs/${LOGS:-s41}
Y=runs/bench-cpu-128-$NAME
COMMON="--preset cpu-128 --data data/fg128 --out $Y --set pretrained=runs/pkgs/$NAME --resume"
S=$L/bench_status.txt; mkdir -p $L
if [ -z "${WAIT:-}" ]; then
  taskset -c 0 latentscenes bench $COMMON --only rgb --only ours > $L/bench_partA.log 2>&1 &
  sleep 20
  taskset -c 1 latentscenes bench $COMMON --only plain-ae > $L/bench_partB.log 2>&1 &
fi
pa=$(pgrep -f -- "--out $Y .*--only rgb"); pb=$(pgrep -f -- "--out $Y .*--only plain-ae")
(
  while kill -0 $pb 2>/dev/null; do sleep 20; done
  echo "B done $(date)" >> $S
  taskset -c 1 latentscenes demo --preset cpu-128 --out reports/demo-${LOGS:-s41}-128 > $L/demo.log 2>&1
  echo "demo done rc=$? $(date)" >> $S
) &
while kill -0 $pa 2>/dev/null; do sleep 20; done
echo "A done $(date)" >> $S
taskset -c 0 latentscenes bench --resume --data data/fg128 --out $Y > $L/bench_tables.log 2>&1
echo "tables done rc=$? $(date)" >> $S
wait
