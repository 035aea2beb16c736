#!/usr/bin/env bash
# The decoder trained on renders (L_Dec only) with encoder, MLP and B frozen, as s25_decren.sh, over a broader set of
# scenes: the package's 40 training airliners + 20 procedural compound objects + 20 pybullet random-URDF objects of
# `data build pretrain-mix` (a data view: data/fg128-mix80), so that it does not learn airliners only.
# Env: OUT (run folder), STEPS (joint steps), INIT (the package to start from: shipped-128), DATA (data/fg128-mix80),
# WARM (warm-up steps: 4250 = 3000 x the views ratio 5440 / 3840); extra --set arguments are passed on.
cd "$(dirname "$0")/../.."; source .venv/bin/activate; export OMP_NUM_THREADS=1
out=${OUT:-runs/s26/decmix}; steps=${STEPS:-600}
extra=()
[ -d "$out/stages" ] && extra=(--resume) || extra=(--init "${INIT:-shipped-128}")
exec latentscenes train "${extra[@]}" --data "${DATA:-data/fg128-mix80}" --out "$out" --set data.resolution=128 \
  --set data.n_train_scenes=80 --set warmup.steps="${WARM:-4250}" --set warmup.lr_mlp=0 --set warmup.lr_global=0 \
  --set joint.lr_encoder=0 --set joint.lr_mlp=0 --set joint.lr_global=0 --set joint.lambda_ae=0 \
  --set joint.steps=$steps --set joint.checkpoint_every=25 --set logging.progress=false "$@"
