#!/usr/bin/env bash
# How the shipped 128 px pre-trained 3Da-AE (latentscenes/pretrained/3daae-airliners-128, `exploit --run shipped-128`)
# is made and measured. Every step resumes or skips what is done, so the script can be re-run after any interruption.
# Env: SRC (the 128 px run's export: runs/pkgs/3daae-gen-128-j2400), PKG (latentscenes/pretrained/3daae-airliners-128),
#      T (the tri-plane resolution new scenes are learned at: 64), PKG0 (the run's export at T, before its decoder is
#      trained on renders: runs/pkgs/gen-128-t64), DEC (that decoder's run at the 8x latent grid: runs/gen128-decren),
#      DEC_STEPS (its L_Dec steps: 1200), PKG1 (the package with it: runs/pkgs/gen-128-dec1200), DEC2 (the decoder's
#      run at the latent grid twice as fine: runs/gen128-decren-up2), DEC2_STEPS (300), BENCH (the `cpu-128`
#      benchmark of the package: runs/bench-cpu-128-noae), NOTE (the card's prose:
#      docs/fidelity-runs/ship128gen_card_note.md), OUT (the card's result files: runs/pkg128-noae), STOP_AFTER
#      (package: end after step 3), OMP_NUM_THREADS (1).
# The run itself (shipped since the fortieth session; made in the thirty-eighth at two threads, 140 min with the
#   steps below): `AE=shipped-general RES=128 BASE=runs/ship3da-gen-128 RUN=runs/ship3da-gen-128-j2400
#   PKG=runs/pkgs/3daae-gen-128-j2400 WARM=runs/pkgs/gen-128-warm3000 TRAIN_SET="--set ae.amp=true" STOP_AFTER=export
#   bash scripts/ship_3daae.sh` (3,000 warm-up steps at 128 px on the first 40 train-split airliners, then 2,400 joint
#   steps with every view also at 2 x 2 sub-latent-pixel offsets); its export is SRC. The package before it (shipped
#   from the twenty-second to the thirty-ninth session) ran the same steps from the 64 px package's base autoencoder
#   in fp32 at one thread (SRC runs/pkgs/3daae-c16-128-j2400, kept in git as candidates/3daae-airliners-128-j2400 up
#   to commit 631ffe1; its card: `git show c8b0fe1:latentscenes/pretrained/3daae-airliners-128/MODEL_CARD.md`).
set -euo pipefail
cd "$(dirname "$0")/.."
source .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
SRC=${SRC:-runs/pkgs/3daae-gen-128-j2400}; PKG=${PKG:-latentscenes/pretrained/3daae-airliners-128}; T=${T:-64}
NOTE=${NOTE:-docs/fidelity-runs/ship128gen_card_note.md}; OUT=${OUT:-runs/pkg128-noae}; BENCH=${BENCH:-runs/bench-cpu-128-noae}
# 1. The built-in airliners at 128 px (as ship_3daae.sh step 1).
python -c "from latentscenes.data.subsets import ensure_flightgear_subset as e; \
e('data/fg128', 40, 20, views=24, test_views=8, resolution=128)"
# 2. The run's weights with the global planes B resampled from the T = 32 they were trained at to T, so that new
#    scenes are learned at T by default (+0.14 to +0.16 dB at 128 px, docs/fidelity.md twenty-first session; the
#    exploit batch's own resampling, done once here).
#    Then its decoder trained further on the renders R(T, p) of the 40 training scenes (L_Dec only), with the encoder,
#    the MLP and B frozen so that the latent space stays bit for bit (the scenes' planes refit in a warm-up first):
#    +0.21 dB [+0.19, +0.24] after 1,200 steps, level on TORCS cars (docs/fidelity.md twenty-fifth to twenty-seventh
#    sessions; run as 300 + 300 + 600 steps, each resumed from the last, constant learning rate). Export charges each
#    decoder run's time (encoding, warm-up, joint) to the package's entry cost (stages ae_replacement, _2).
PKG0=${PKG0:-runs/pkgs/gen-128-t$T}; DEC=${DEC:-runs/gen128-decren}; DEC_STEPS=${DEC_STEPS:-1200}
PKG1=${PKG1:-runs/pkgs/gen-128-dec1200}
DECODER_ONLY=(--set data.resolution=128 --set data.n_train_scenes=40 --set warmup.lr_mlp=0 --set warmup.lr_global=0
  --set joint.lr_encoder=0 --set joint.lr_mlp=0 --set joint.lr_global=0 --set joint.lambda_ae=0
  --set joint.checkpoint_every=25 --set logging.progress=false)
# Steps 2-3 run only while PKG is not the finished package (a checkout holds it: steps 4-5 re-measure it).
build_pkg() { [ ! -f "$PKG/manifest.json" ] || \
  [ "$(python -c "import json; print(json.load(open('$PKG/config.json'))['ae'].get('upscale', 1))")" != 2 ]; }
build_pkg && { [ -f "$PKG0/manifest.json" ] || latentscenes export --run "$SRC" --out "$PKG0" --triplane-resolution "$T"; }
if build_pkg && [ ! -f "$PKG1/manifest.json" ]; then
  [ -d "$DEC/stages" ] && init=(--resume) || init=(--init "$PKG0")
  latentscenes train "${init[@]}" --data data/fg128 --out "$DEC" "${DECODER_ONLY[@]}" --set joint.steps="$DEC_STEPS"
  latentscenes export --run "$PKG0" --ae "$DEC/model/shared.safetensors" --out "$PKG1"
fi
# 3. The same decoder step again from PKG1's decoder, on the latent grid twice as fine that new scenes are then
#    learned on (`ae.upscale=2`: 32 x 32 latents for 128 px images, one view per grid, decoded once): a warm-up of
#    1,000 steps refits the 40 scenes' planes on the finer latents, then 300 L_Dec steps (thirty-first session; 600
#    specialise the decoder to airliners, thirty-second). The export writes that recipe into the package's config,
#    with bf16 autocast of the autoencoder where the CPU computes bf16 natively (`ae.amp`; thirty-third session), and
#    records what the package was trained with (`notes.trained_with`) for the plain-AE ablation. The exploit's
#    decoder fine-tune runs with L_Dec alone (`exploit.finetune.lambda_ae=0`, Alg. 2 as the paper writes it; forty-first
#    session: the L_ae term was half the fine-tune's decodes at this grid and gained nothing on new scenes' held-out
#    views), for 8 epochs after an Encode-Scene of half the budget (8.33 epochs, 200 view-updates per scene; forty-third
#    session: level with 16.67 + 6 epochs on four sets, ours reaching Tri-Planes (RGB)'s final PSNR in 0.46x RGB's time
#    against 0.60x; 6 epochs from the forty-second session, the time L_ae took; 4 from the twenty-third session, set in
#    the package's config.json then, not by an export, whose manifest records its --set words; until the thirty-eighth
#    session this export left the run's 2).
DEC2=${DEC2:-runs/gen128-decren-up2}; DEC2_STEPS=${DEC2_STEPS:-300}
RECIPE=(--set ae.upscale=2 --set data.shift_grid=1 --set render.offset_ensemble=1)
if build_pkg; then
  [ -d "$DEC2/stages" ] && init=(--resume) || init=(--init "$PKG1")
  latentscenes train "${init[@]}" --data data/fg128 --out "$DEC2" "${DECODER_ONLY[@]}" "${RECIPE[@]}" \
    --set warmup.steps=1000 --set joint.steps="$DEC2_STEPS"
  # (export writes a new folder: the previous package in PKG, if any, is replaced once the new one is complete)
  rm -rf "$PKG.new"
  latentscenes export --run "$PKG1" --ae "$DEC2/model/shared.safetensors" --out "$PKG.new" "${RECIPE[@]}" --set ae.amp=true \
    --set exploit.fit.epochs=8.333333333333334 --set exploit.finetune.epochs=8 --set exploit.finetune.lambda_ae=0
  rm -rf "$PKG" && mv "$PKG.new" "$PKG"
fi
# (STOP_AFTER=package ends here, before the benchmark's hours: a candidate is compared on smaller sets first.)
[ "${STOP_AFTER:-}" = package ] && exit 0
# 4. The card's figures, side by side in one run: the `cpu-128` benchmark of the package (ours, the plain-AE ablation,
#    which repeats the package's warm-up with the base autoencoder as it was trained, and Tri-Planes (RGB) on the same
#    10 exploit scenes; over 3 h at one thread: `--only` runs it in parts, docs/benchmark.md), its three exploit runs
#    evaluated, and the consistency probe of both autoencoders on those 10 scenes at the package's recipe.
latentscenes bench --preset cpu-128 --data data/fg128 --out "$BENCH" --set pretrained="$PKG" --resume
mkdir -p "$OUT"
for m in ours plain-ae rgb; do
  run=$BENCH/runs/$m; [ "$m" = rgb ] || run=$run/exploit
  [ -f "$OUT/bench-$m.metrics.json" ] || latentscenes eval --run "$run" --data data/fg128 --scenes exploit \
    --out "$OUT/bench-$m.metrics.json"
done
WARM=$OUT/plain-ae-warmup; VIEW=data/fg128-bench10
[ -d "$WARM" ] || latentscenes export --run "$BENCH/runs/plain-ae/train" --stage warmup --out "$WARM"
[ -f "$VIEW/manifest.json" ] || latentscenes data view --out "$VIEW" --take "data/fg128:exploit:$(python -c \
  "import json; print(','.join(json.load(open('$BENCH/results.json'))['data']['exploit_scene_ids']))")"
PROBE=(--data "$VIEW" --scenes exploit --n-scenes 10)
[ -f "$OUT/probe-plain-ae.json" ] || latentscenes probe --run "$WARM" "${PROBE[@]}" "${RECIPE[@]}" --set ae.amp=true \
  --set triplane.resolution="$T" --out "$OUT/probe-plain-ae.json"
[ -f "$OUT/probe-ours.json" ] || latentscenes probe --run "$PKG" "${PROBE[@]}" --out "$OUT/probe-ours.json"
# 5. The model card, from those files and the prose note. (The shipped card was written by this command from the
#    committed copies of these files: docs/fidelity-runs/s43_card_bench-* and the probes s39_card_probe-* (a probe
#    never runs the exploit's fit or fine-tune: the forty-first to forty-third sessions' recipe changes left them as
#    they were); the benchmark: docs/bench-cpu-128-s43-fit8ft8, run with runs/pkgs/fit8ft8, the same tensors and config but for
#    the `dec_crop = 0` entries exports write since the forty-third session.
#    With the full Encode-Scene and 6 fine-tune epochs: s42_card_*, docs/bench-cpu-128-s42-ft6; with 4 fine-tune
#    epochs: s41_card_*, docs/bench-cpu-128-s41-noae; with L_ae in the fine-tune: s39_card_*,
#    docs/bench-cpu-128-s39-gen; the package before it: s34_card_*, docs/bench-cpu-128-s33.)
python scripts/experiments/model_card_3daae.py "$PKG" "$OUT/bench-plain-ae.metrics.json" "$OUT/bench-ours.metrics.json" \
  "$OUT/probe-plain-ae.json" "$OUT/probe-ours.json" "$NOTE" --rgb "$OUT/bench-rgb.metrics.json" \
  --made-by scripts/ship_3daae_128.sh
