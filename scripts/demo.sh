#!/usr/bin/env bash
# The main job from the README: set-up (idempotent), then the end-to-end demo on the built-in FlightGear dataset.
# Extra arguments go to `latentscenes demo` (e.g. --out reports/demo2, --preset paper on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
.venv/bin/latentscenes demo --preset tiny-cpu "$@"
