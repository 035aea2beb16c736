#!/usr/bin/env bash
# The test command from the README: set-up (idempotent), then the fast test-suite on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
.venv/bin/python -m pytest -q -m "not slow" "$@"
