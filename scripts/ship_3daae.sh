#!/usr/bin/env bash
# How the shipped pre-trained 3Da-AE (latentscenes/pretrained/3daae-airliners-64, `exploit --run shipped`) is
# made and measured. Every step resumes or skips what is done, so the script can be re-run after any interruption.
# Usage: ship_3daae.sh [JOINT_STEP]   (JOINT_STEP: export that joint checkpoint instead of the finished run)
# Env: RUN (runs/ship3da), PKG (latentscenes/pretrained/3daae-airliners-64), OMP_NUM_THREADS (1).
set -euo pipefail
cd "$(dirname "$0")/.."
source .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
RUN=${RUN:-runs/ship3da}; PKG=${PKG:-latentscenes/pretrained/3daae-airliners-64}
# 1. The built-in airliners at 128 px, 24 + 8 views per scene (117 train-split, 20 exploit-split instances;
#    the exploit split holds whole airframe meshes out). ~70 s on 2 cores.
python -c "from latentscenes.data.subsets import ensure_flightgear_subset as e; \
e('data/fg128', 40, 20, views=24, test_views=8, resolution=128)"
# 2. Alg. 1 on the first 40 train-split scenes at 64 px with the base autoencoder: 3,000 warm-up steps
#    (600 view-updates per scene), then up to 2,000 joint steps (lambda_ae 1), checkpointed every 200.
latentscenes train --data data/fg128 --out "$RUN" --preset tiny-cpu --ae shipped --resume \
  --set data.resolution=64 --set data.n_train_scenes=40 --set warmup.steps=3000 --set joint.steps=2000 \
  --set warmup.checkpoint_every=500 --set joint.checkpoint_every=200 --set logging.progress=false
# 3. The package: the run's shared weights (autoencoder, MLP, global planes) and config, without its scenes.
if [ -n "${1:-}" ]; then
  step=$(python -c "import json;print(json.load(open('$RUN/stages/joint/ckpt/state.json'))['step'])")
  [ "$step" = "$1" ] || { echo "the joint checkpoint is at step $step, not $1"; exit 1; }
  latentscenes export --run "$RUN" --stage joint --out "$PKG"
else
  latentscenes export --run "$RUN" --out "$PKG"
fi
# 4. The figures of its MODEL_CARD.md: the same 10 new scenes learned with the package and with the plain
#    autoencoder (the warm-up checkpoint of the same run), 80 held-out views; and the consistency probe of both.
[ -d runs/pkgs/warm3000 ] || latentscenes export --run "$RUN" --stage warmup --out runs/pkgs/warm3000
bash scripts/experiments/pkg_exploit.sh runs/pkgs/warm3000 plain-warm3000
bash scripts/experiments/pkg_exploit.sh "$PKG" shipped
python scripts/experiments/summarize.py runs/pkg/plain-warm3000.metrics.json runs/pkg/shipped.metrics.json
for p in runs/pkgs/warm3000 "$PKG"; do
  n=$(basename "$p"); [ -f "runs/pkg/probe-$n.json" ] && continue
  latentscenes probe --run "$p" --data data/fg128 --scenes exploit --n-scenes 10 \
    --set data.resolution=64 --out "runs/pkg/probe-$n.json"
done
# 5. The model card, from the files above (no figure typed by hand) plus the prose note kept in the docs.
python scripts/experiments/model_card_3daae.py "$PKG" runs/pkg/plain-warm3000.metrics.json runs/pkg/shipped.metrics.json \
  runs/pkg/probe-warm3000.json "runs/pkg/probe-$(basename "$PKG").json" docs/fidelity-runs/ship_card_note.md
