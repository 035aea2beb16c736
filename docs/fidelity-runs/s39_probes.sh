#!/bin/bash
# ship_3daae_128.sh step 4's probes for the candidate, on core 1 once the demo's 6 scenes are done there (one thread).
cd /work/main && source .venv/bin/activate
export OMP_NUM_THREADS=1
S=runs/s39/bench_status.txt; OUT=runs/pkg128-gen; PKG=candidates/3daae-gen-128; BENCH=runs/bench-cpu-128-gen
VIEW=data/fg128-bench10; WARM=$OUT/plain-ae-warmup; mkdir -p $OUT
RECIPE=(--set ae.upscale=2 --set data.shift_grid=1 --set render.offset_ensemble=1)
while ! grep -q "demo6_gen done" $S; do sleep 20; done
# the benchmark's 10 exploit scenes (the s33 benchmark's ids: same data, same preset; checked against results.json after)
[ -f "$VIEW/manifest.json" ] || latentscenes data view --out "$VIEW" --take "data/fg128:exploit:339-Corsair,733-AirNewZealand,767-Arkefly,A319-AirIndia,A319-Avianca,A321-Saudia,Centrair-101-OM-1725,Cessna337-EC-ISDai,c310u3a-ai,model17-ai" > runs/s39/view.log 2>&1
PROBE=(--data "$VIEW" --scenes exploit --n-scenes 10)
echo "probe-ours start $(date)" >> $S
[ -f "$OUT/probe-ours.json" ] || taskset -c 1 latentscenes probe --run "$PKG" "${PROBE[@]}" --out "$OUT/probe-ours.json" > runs/s39/probe-ours.log 2>&1
echo "probe-ours done rc=$? $(date)" >> $S
[ -d "$WARM" ] || latentscenes export --run "$BENCH/runs/plain-ae/train" --stage warmup --out "$WARM" > runs/s39/warm-export.log 2>&1
[ -f "$OUT/probe-plain-ae.json" ] || taskset -c 1 latentscenes probe --run "$WARM" "${PROBE[@]}" "${RECIPE[@]}" --set ae.amp=true \
  --set triplane.resolution=64 --out "$OUT/probe-plain-ae.json" > runs/s39/probe-plain.log 2>&1
echo "probe-plain done rc=$? $(date)" >> $S
