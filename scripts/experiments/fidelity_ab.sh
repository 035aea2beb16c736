#!/usr/bin/env bash
# Fidelity A/B queue (docs/fidelity.md): one warm-up-only training run with the shipped base autoencoder, then
# exploit variants on the same new scenes, each evaluated on held-out views. One thread per queue, so two
# queues (e.g. 64 and 128 px) can run side by side on the 2-core machine.
# Usage: fidelity_ab.sh RES [NAME ...]   (RES: 64 or 128; NAMEs from the case list below, default all)
# Env: DATA (default data/fg128: built with 24+8 views at 128 px), NTRAIN (10), NEX (10), OUT (runs/fid),
#      AE (the base autoencoder: shipped or a file; default shipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
res=$1; shift
DATA=${DATA:-data/fg128}; NTRAIN=${NTRAIN:-10}; NEX=${NEX:-10}; OUT=${OUT:-runs/fid}/$res
mkdir -p "$OUT"
fit=$(( NEX * 400 / 8 )); ft=$(( NEX * 48 / 8 ))
common=(--set data.resolution=$res --set data.n_exploit_scenes=$NEX --set exploit.fit.steps=$fit
        --set exploit.finetune.steps=$ft --set logging.progress=false)
if [ ! -f "$OUT/train/model/shared.safetensors" ]; then
  latentscenes train --data "$DATA" --out "$OUT/train" --preset tiny-cpu --ae "${AE:-shipped}" --resume \
    --set data.resolution=$res --set data.n_train_scenes=$NTRAIN --set warmup.steps=${WARM:-800} \
    --set joint.steps=${JOINT:-0} --set logging.progress=false \
    --set triplane.local_init_std=1 --set triplane.coef_init_std=1 > "$OUT/train.log" 2>&1
  # (init 1 = the preset's value when docs/fidelity.md was measured; the exploit cases inherit it unless they set it)
fi
declare -A CASES=(
  [fit-only]="--set exploit.finetune_decoder=false"
  [paper-ft]=""
  [ft-ae1]="--set exploit.finetune.lambda_ae=1"
  [ft-frozen-dec]="--set exploit.finetune.lr_decoder=0 --set exploit.finetune.lr_local=1e-2 --set exploit.finetune.lr_coefs=1e-2"
  [ft-frozen-dec-x4]="--set exploit.finetune.lr_decoder=0 --set exploit.finetune.lr_local=1e-2 --set exploit.finetune.lr_coefs=1e-2 --set exploit.finetune.steps=$((ft*4))"
  [eds]="--strategy encode-decode-scene --set exploit.finetune_decoder=false"
  [ft-ae1-x4]="--set exploit.finetune.lambda_ae=1 --set exploit.finetune.steps=$((ft*4))"
  [init01-ft-ae1]="--set exploit.finetune.lambda_ae=1 --set triplane.local_init_std=0.1 --set triplane.coef_init_std=0.1"
  [init001-ft-ae1]="--set exploit.finetune.lambda_ae=1 --set triplane.local_init_std=0.01 --set triplane.coef_init_std=0.01"
  [init01-ft-ae1-x4]="--set exploit.finetune.lambda_ae=1 --set triplane.local_init_std=0.1 --set triplane.coef_init_std=0.1 --set exploit.finetune.steps=$((ft*4))"
  [init01-fit-x2-ft-ae1]="--set exploit.finetune.lambda_ae=1 --set triplane.local_init_std=0.1 --set triplane.coef_init_std=0.1 --set exploit.fit.steps=$((fit*2))"
  [init01-tv1e-3]="--set exploit.finetune_decoder=false --set triplane.local_init_std=0.1 --set triplane.coef_init_std=0.1 --set exploit.fit.lambda_tv=1e-3"
  [init01]="--set exploit.finetune_decoder=false --set triplane.local_init_std=0.1 --set triplane.coef_init_std=0.1"
  [init01-tv1e-4]="--set exploit.finetune_decoder=false --set triplane.local_init_std=0.1 --set triplane.coef_init_std=0.1 --set exploit.fit.lambda_tv=1e-4"
  [init01-tv0]="--set exploit.finetune_decoder=false --set triplane.local_init_std=0.1 --set triplane.coef_init_std=0.1 --set exploit.fit.lambda_tv=0"
)
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(fit-only paper-ft ft-ae1 ft-frozen-dec ft-frozen-dec-x4 eds)
for name in "${names[@]}"; do
  o=$OUT/$name
  [ -f "$o.metrics.json" ] && continue
  rm -rf "$o"
  # shellcheck disable=SC2086
  /usr/bin/time -f "%e s wall, %M KiB peak" latentscenes exploit --run "$OUT/train" --out "$o" "${common[@]}" ${CASES[$name]} \
    > "$o.log" 2>&1
  latentscenes eval --run "$o" --scenes exploit --out "$o.metrics.json" >> "$o.log" 2>&1
  python - "$o.metrics.json" "$name" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))["groups"]["exploit"]["mean"]
print(f"{sys.argv[2]:20s} psnr {g['psnr']:.2f} ssim {g['ssim']:.3f} latent {g['latent_psnr']:.2f} ae {g['ae_psnr']:.2f}")
PY
done
