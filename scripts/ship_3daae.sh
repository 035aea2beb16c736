#!/usr/bin/env bash
# How the shipped pre-trained 3Da-AE (latentscenes/pretrained/3daae-airliners-64, `exploit --run shipped`) is
# made and measured. Every step resumes or skips what is done, so the script can be re-run after any interruption.
# Env: BASE (runs/ship3da), RUN (runs/ship3da-shift2-j2400), PKG (latentscenes/pretrained/3daae-airliners-64),
#      AE (the base autoencoder: shipped, or a file such as a 16-channel `ae pretrain` result; docs/fidelity.md),
#      WARM (the plain-autoencoder package of the warm-up: runs/pkgs/warm3000), NOTE (the model card's prose:
#      docs/fidelity-runs/ship7_card_note.md), JOINT (the joint stage's steps: 2400; a finished RUN continues to a
#      larger count), RES (the resolution of training and of step 5's measurements: 64, i.e. 8x8 latents; 128 for
#      the paper's 16x16, eighteenth session, ~0.44 s per warm-up and ~10 s per joint step at one thread; the card
#      states the resolution from the package's config), TRAIN_SET (more `--set KEY=VALUE` words for both training
#      calls, e.g. "--set ae.amp=true": bf16 autocast of the autoencoder, a 128 px joint step 4.4 s at one thread
#      in the thirty-seventh session against 10.7 s in fp32 in the nineteenth), STOP_AFTER (export: end after step
#      4), OMP_NUM_THREADS (1).
# The shipped package v7 (seventeenth session): v6's run (AE=runs/ae/mixf-c16/ae.safetensors BASE=runs/ship3da-c16
#   RUN=runs/ship3da-c16-j2400 WARM=runs/pkgs/c16-warm3000 PKG=runs/pkgs/3daae-c16; its base autoencoder: the
#   16-channel mix model of docs/autoencoder.md; `export` copies such a file into the package) copied to
#   runs/ship3da-c16-j4000 without its model/ and manifest.json, then the same with RUN=runs/ship3da-c16-j4000
#   PKG=runs/pkgs/3daae-c16-j4000 JOINT=4000 (the finished joint stage continues to 4,000 steps), copied to
#   latentscenes/pretrained/3daae-airliners-64.
set -euo pipefail
cd "$(dirname "$0")/.."
source .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
BASE=${BASE:-runs/ship3da}; RUN=${RUN:-runs/ship3da-shift2-j2400}; PKG=${PKG:-latentscenes/pretrained/3daae-airliners-64}
AE=${AE:-shipped}; WARM=${WARM:-runs/pkgs/warm3000}; WTAG=$(basename "$WARM")
NOTE=${NOTE:-docs/fidelity-runs/ship7_card_note.md}; JOINT=${JOINT:-2400}; export RES=${RES:-64}
read -r -a TRAIN_SET <<< "${TRAIN_SET:-}"
# 1. The built-in airliners at 128 px, 24 + 8 views per scene (117 train-split, 20 exploit-split instances;
#    the exploit split holds whole airframe meshes out). ~70 s on 2 cores.
python -c "from latentscenes.data.subsets import ensure_flightgear_subset as e; \
e('data/fg128', 40, 20, views=24, test_views=8, resolution=128)"
# 2. Alg. 1's warm-up on the first 40 train-split scenes at RES px (64) with the base autoencoder: 3,000 steps (600
#    view-updates per scene), one view per latent grid (data.shift_grid 1), checkpointed every 500. (The first
#    package continued this run with a 1,400-step joint stage; docs/fidelity.md keeps its figures.)
if [ ! -f "$BASE/stages/warmup/ckpt/state.json" ] || [ "$(python -c "import json;print(json.load(open('$BASE/stages/warmup/ckpt/state.json'))['step'])")" != 3000 ]; then
  latentscenes train --data data/fg128 --out "$BASE" --preset tiny-cpu --ae "$AE" --resume \
    --set data.resolution="$RES" --set data.n_train_scenes=40 --set data.shift_grid=1 --set warmup.steps=3000 \
    --set joint.steps=0 --set warmup.checkpoint_every=500 --set logging.progress=false "${TRAIN_SET[@]}"
fi
# 3. The joint stage (Eq. 5, lambda_ae 1), 2,400 steps, with every view also at 2 x 2 sub-latent-pixel offsets
#    (data.shift_grid 2), continued from that warm-up in a copy of the run. (The second package stopped it at
#    400 steps, package v3 at 800, v4 at 1,600; the shipped run reached 2,400 by `--resume --set joint.steps=...`
#    of those runs, which gives exactly the 2,400-step run, tests/training/test_resume.py. Longer joint stages are
#    shipped since the exploit re-fits collapsed scenes, training/refit.py: docs/fidelity.md.)
#    data.* is fixed once a stage has finished (`--resume` refuses to change it), so the copy's config.json is edited
#    before resuming: the warm-up really ran with shift_grid 1, and the manifest's stage record says so
#    (`stages.warmup.view_copies` 1, which the benchmark's plain-AE ablation repeats; a warm-up finished before stage
#    results recorded it gets it here, in the copy's checkpoint that the resumed run reports).
if [ ! -d "$RUN" ]; then
  cp -r "$BASE" "$RUN"
  # The copy is not finished: without the manifest `--resume` sees the warm-up's checkpoint and no joint stage.
  rm -rf "$RUN/stages/joint" "$RUN/model" "$RUN/manifest.json"
  python - "$RUN/config.json" "$RUN/stages/warmup/ckpt/state.json" "$JOINT" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["data"]["shift_grid"], c["joint"]["steps"], c["joint"]["checkpoint_every"] = 2, int(sys.argv[3]), 100
json.dump(c, open(sys.argv[1], "w"), indent=2)
s = json.load(open(sys.argv[2]))
s.setdefault("result", {}).setdefault("view_copies", 1)
json.dump(s, open(sys.argv[2], "w"), indent=2)
PY
fi
latentscenes train --data data/fg128 --out "$RUN" --resume --set data.resolution="$RES" --set data.n_train_scenes=40 \
  --set warmup.steps=3000 --set joint.steps="$JOINT" --set joint.checkpoint_every=100 --set logging.progress=false \
  "${TRAIN_SET[@]}"
# 4. The package: the run's shared weights (autoencoder, MLP, global planes) and config, without its scenes.
#    Its renders are decoded at the 2 x 2 offsets its scenes are fitted on, averaged (render.offset_ensemble 2,
#    the tiny-cpu recipe since the sixth session), and an exploit batch fine-tunes its decoder on that average
#    (exploit.finetune.dec_offset_merge, seventh session); the training run predates both settings, so the package's
#    config gets them here (an exploit batch takes them from the package).
if [ ! -f "$PKG/manifest.json" ]; then
  latentscenes export --run "$RUN" --out "$PKG"
  python - "$PKG/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["render"]["offset_ensemble"] = 2
c["exploit"]["finetune"]["dec_offset_merge"] = True
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
fi
# (STOP_AFTER=export ends here: a 128 px package goes on with scripts/ship_3daae_128.sh, SRC=$PKG.)
[ "${STOP_AFTER:-}" = export ] && exit 0
# 5. The figures of its MODEL_CARD.md: the same 10 new scenes learned with the package and with the plain
#    autoencoder (the warm-up checkpoint of the same run), both with views at 2 x 2 offsets, 80 held-out views;
#    and the consistency probe of both, with the exploit's views at the same offsets (without them the probe does
#    not see what the joint stage on offsets changed, docs/fidelity.md).
#    The result files are named after the run (TAG), so that an earlier package's files are not taken for its own.
#    At RES px: pkg_exploit.sh reads RES too.
TAG=$(basename "$RUN")
[ -d "$WARM" ] || latentscenes export --run "$BASE" --stage warmup --out "$WARM"
#    Both with the package's exploit recipe (decoded at offsets, the decoder fine-tuned on that average: "-dm").
bash scripts/experiments/pkg_exploit.sh "$WARM" "plain-$WTAG-shift2-oe2-dm" --set data.shift_grid=2 \
  --set render.offset_ensemble=2 --set exploit.finetune.dec_offset_merge=true
bash scripts/experiments/pkg_exploit.sh "$PKG" "shipped-$TAG-dm"
python scripts/experiments/summarize.py "runs/pkg/plain-$WTAG-shift2-oe2-dm.metrics.json" "runs/pkg/shipped-$TAG-dm.metrics.json"
[ -f "runs/pkg/probe-$WTAG-shift2.json" ] || latentscenes probe --run "$WARM" --data data/fg128 --scenes exploit \
  --n-scenes 10 --set data.resolution="$RES" --set data.shift_grid=2 --out "runs/pkg/probe-$WTAG-shift2.json"
[ -f "runs/pkg/probe-$TAG-shift2.json" ] || latentscenes probe --run "$PKG" --data data/fg128 --scenes exploit \
  --n-scenes 10 --set data.resolution="$RES" --set data.shift_grid=2 --out "runs/pkg/probe-$TAG-shift2.json"
# 6. The model card, from the files above (no figure typed by hand) plus the prose note kept in the docs.
#    (The shipped v7 card was written by this same command run on the shipped folder with the committed copies of
#    these four files, so that it names files a fresh checkout has: docs/fidelity-runs/s16_plain-c16-warm3000-dm,
#    s17_v7-c16-j4000-dm (.metrics.json), s16_probe-plain-c16-shift2, s17_probe-v7-c16-shift2 (.json), ship7_card_note.md.)
python scripts/experiments/model_card_3daae.py "$PKG" "runs/pkg/plain-$WTAG-shift2-oe2-dm.metrics.json" \
  "runs/pkg/shipped-$TAG-dm.metrics.json" "runs/pkg/probe-$WTAG-shift2.json" \
  "runs/pkg/probe-$TAG-shift2.json" "$NOTE"
