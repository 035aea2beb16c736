#!/usr/bin/env bash
# Latent scenes with a given base autoencoder (docs/fidelity.md, "Setup of the A/B runs"): a training run on 10
# train scenes (800 warm-up steps, then JOINT joint 3Da-AE steps, default none), the consistency probe, and the
# current `tiny-cpu` exploit on the first 10 exploit scenes (8 held-out views each), one thread. Resumable.
# Usage: latent_ab.sh NAME AE [--set KEY=VALUE ...]   (AE: shipped or an autoencoder file; the --set pairs go to
#        the training run, e.g. --set joint.lr_encoder=3e-4)
# Env: DATA (data/fg128), RES (64), NTRAIN (10), NEX (10), OUT (runs/lab), CORE (0), SKIP_PROBE (unset),
#      JOINT (joint 3Da-AE steps after the warm-up, default 0; > 0: the probe measures the run's trained 3Da-AE)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
NAME=$1; AE=$2; shift 2
DATA=${DATA:-data/fg128}; RES=${RES:-64}; NTRAIN=${NTRAIN:-10}; NEX=${NEX:-10}; OUT=${OUT:-runs/lab}
RUN="taskset -c ${CORE:-0} .venv/bin/latentscenes"
o=$OUT/$NAME; mkdir -p "$o"
if [ ! -f "$o/train/model/shared.safetensors" ]; then
  $RUN train --data "$DATA" --out "$o/train" --preset tiny-cpu --ae "$AE" --resume --set data.resolution=$RES \
    --set data.n_train_scenes=$NTRAIN --set warmup.steps=800 --set joint.steps=${JOINT:-0} --set logging.progress=false "$@" \
    > "$o.train.log" 2>&1
fi
if [ -z "${SKIP_PROBE:-}" ] && [ ! -f "$o.probe.json" ]; then
  if [ "${JOINT:-0}" -gt 0 ]; then src=(--run "$o/train"); else src=(--ae "$AE"); fi
  $RUN probe "${src[@]}" --data "$DATA" --scenes exploit --n-scenes $NEX --set data.resolution=$RES --out "$o.probe.json" > "$o.probe.log" 2>&1
fi
if [ ! -f "$o.metrics.json" ]; then
  rm -rf "$o/exploit"
  /usr/bin/time -f "%e s wall, %M KiB peak" $RUN exploit --run "$o/train" --out "$o/exploit" --set data.n_exploit_scenes=$NEX \
    --set exploit.fit.steps=$(( NEX * 400 / 8 )) --set exploit.finetune.steps=$(( NEX * 48 / 8 )) --set logging.progress=false > "$o.exploit.log" 2>&1
  $RUN eval --run "$o/exploit" --scenes exploit --out "$o.metrics.json" >> "$o.exploit.log" 2>&1
fi
.venv/bin/python - "$o" "$NAME" <<'PY'
import json, sys
from pathlib import Path
o = Path(sys.argv[1])
g = json.load(open(f"{o}.metrics.json"))["groups"]["exploit"]["mean"]
p = json.load(open(f"{o}.probe.json"))["summary"] if Path(f"{o}.probe.json").exists() else {}
print(sys.argv[2], f"held-out {g['psnr']:.2f} ssim {g['ssim']:.3f} latent {g['latent_psnr']:.2f} ae {g['ae_psnr']:.2f}",
      "probe", {k: round(v, 2) for k, v in p.items() if isinstance(v, (int, float))})
PY
