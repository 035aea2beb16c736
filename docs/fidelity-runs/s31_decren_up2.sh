#!/usr/bin/env bash
# Thirty-first session: the shipped-128 decoder trained further on renders R(T, p) of the 40 train scenes (L_Dec only;
# encoder, MLP and B frozen) on the latent grid twice as fine (`ae.upscale=2`, 32 x 32 latents for 128 px images),
# the grid the exploit then learns new scenes on. The twenty-fifth session's run (s25_decren.sh) at `upscale=2`,
# with a 1,000-step warm-up (the planes of the train scenes refit on the finer latents: 1.5 s a step here against
# 0.46 s at the 8x grid) instead of 3,000. Env OUT (run folder), STEPS (joint steps); resumable (re-run it).
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/s31/decren-up2} STEPS=${STEPS:-300} exec bash docs/fidelity-runs/s25_decren.sh --set joint.lambda_ae=0 \
  --set ae.upscale=2 --set data.shift_grid=1 --set render.offset_ensemble=1 --set warmup.steps=1000 "$@"
