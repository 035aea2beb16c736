#!/usr/bin/env bash
# Tri-Planes (RGB) baseline A/B (docs/fidelity.md, "A baseline as strong as ours"): fit-rgb variants on the first
# N exploit scenes (the same scenes fidelity_ab.sh learns), each evaluated with `latentscenes eval`.
# Usage: rgb_ab.sh RES [NAME ...]. Env: DATA (data/fg128), N (6), OUT (runs/fid).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
res=$1; shift
DATA=${DATA:-data/fg128}; N=${N:-6}; OUT=${OUT:-runs/fid}/$res
mkdir -p "$OUT"
declare -A CASES=(
  [rgb-400]="--set steps=400"
  [rgb-800]="--set steps=800"
  [rgb-800-tv1e-4]="--set steps=800 --set lambda_tv=1e-4"
  [rgb-800-tv4e-4]="--set steps=800 --set lambda_tv=4e-4"
  [rgb-800-tv1e-4-decay]="--set steps=800 --set lambda_tv=1e-4 --set lr_final_factor=0.1"
  [rgb-800-decay]="--set steps=800 --set lr_final_factor=0.1"
)
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(rgb-800 rgb-800-tv1e-4 rgb-800-tv1e-4-decay)
for name in "${names[@]}"; do
  o=$OUT/$name
  [ -f "$o.metrics.json" ] && continue
  rm -rf "$o"
  # shellcheck disable=SC2086
  latentscenes fit-rgb --data "$DATA" --split exploit --scenes "$N" --out "$o" --preset tiny-cpu \
    --set resolution=$res --set eval_every=0 ${CASES[$name]} > "$o.log" 2>&1
  latentscenes eval --run "$o" --data "$DATA" --out "$o.metrics.json" >> "$o.log" 2>&1
  python -c "import json,sys; r=json.load(open(sys.argv[1])); m=r['overall']['mean']; print(sys.argv[2], 'psnr %.2f ssim %.3f' % (m['psnr'], m['ssim']), flush=True)" "$o.metrics.json" "$name"
done
