#!/usr/bin/env bash
# decoder trained on renders (+ images, L_ae) with encoder, MLP, B frozen; train planes refit in warm-up
cd "$(dirname "$0")/../.."; source .venv/bin/activate; export OMP_NUM_THREADS=1
# env OUT (run folder), STEPS (joint steps); extra --set arguments are passed on
out=${OUT:-runs/s25/decren}; steps=${STEPS:-300}
extra=()
[ -d "$out/stages" ] && extra=(--resume) || extra=(--init shipped-128)
exec latentscenes train "${extra[@]}" --data data/fg128 --out "$out" --set data.resolution=128 --set data.n_train_scenes=40 \
  --set warmup.lr_mlp=0 --set warmup.lr_global=0 --set joint.lr_encoder=0 --set joint.lr_mlp=0 --set joint.lr_global=0 \
  --set joint.steps=$steps --set joint.checkpoint_every=25 --set logging.progress=false "$@"
