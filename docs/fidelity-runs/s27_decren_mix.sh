#!/usr/bin/env bash
# The decoder trained on renders (L_Dec only; encoder, MLP, B frozen; the scenes' planes refit in a warm-up first), as
# s25_decren.sh with joint.lambda_ae=0, but on a broader set of training scenes: the package's 40 airliners and 36
# procedural / pybullet URDF objects (data/fg128-mix76, a data view; built below). The warm-up's steps scale with the
# scene count (3,000 for 40 -> 5,700 for 76: the same view updates per scene).
# env OUT (run folder), STEPS (joint steps, 600), INIT (the package before its decoder was trained on renders:
# shipped-128 at commit d7d8cd5, e.g. `git archive d7d8cd5 latentscenes/pretrained/3daae-airliners-128 | tar -x -C DIR`)
cd "$(dirname "$0")/../.."; source .venv/bin/activate; export OMP_NUM_THREADS=1
out=${OUT:-runs/s27/decren-mix}; steps=${STEPS:-600}; init=${INIT:?the pre-decoder package folder}
[ -f data/mix24/manifest.json ] || latentscenes data build pretrain-mix --out data/mix24 --flightgear 0 --urdfs 20 \
  --primitives 20 --views 24 --test-views 8 --resolution 128 --workers 1
python -c "from latentscenes.data.subsets import ensure_flightgear_subset as e; \
e('data/fg128', 40, 20, views=24, test_views=8, resolution=128)"
[ -f data/fg128-mix76/manifest.json ] || latentscenes data view --out data/fg128-mix76 \
  --take data/fg128:train:40 --take data/mix24:train --take data/fg128:exploit:20
extra=()
[ -d "$out/stages" ] && extra=(--resume) || extra=(--init "$init")
exec latentscenes train "${extra[@]}" --data data/fg128-mix76 --out "$out" --set data.resolution=128 \
  --set data.n_train_scenes=76 --set warmup.steps=5700 \
  --set warmup.lr_mlp=0 --set warmup.lr_global=0 --set joint.lr_encoder=0 --set joint.lr_mlp=0 --set joint.lr_global=0 \
  --set joint.lambda_ae=0 --set joint.steps=$steps --set joint.checkpoint_every=25 --set logging.progress=false "$@"
