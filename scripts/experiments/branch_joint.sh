#!/usr/bin/env bash
# Measure a joint stage that is still running (or stopped) at its last checkpoint: copy the run, end the copy's joint
# stage at that step (`train --resume` with joint.steps = the checkpoint's step writes its model/ in seconds), then
# exploit the card's scenes with it (pkg_exploit.sh) at each resolution of RESES. The running run is not touched.
# Usage: branch_joint.sh RUN DATA [--set ...]   (the --set arguments of the run's own `train` command, e.g.
#        --set data.resolution=128 --set data.n_train_scenes=40 --set warmup.steps=3000)
# Env: RESES ("128 64"; empty: no exploit), NEX (10), OUT (runs/branch), CORE (1). Docs: docs/fidelity.md, nineteenth session.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
src=$1; data=$2; shift 2
RESES=${RESES-128 64}; NEX=${NEX:-10}; OUT=${OUT:-runs/branch}; CORE=${CORE:-1}
step() { python -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$1/stages/joint/ckpt/state.json"; }
S=$(step "$src")
dst=${src%/}-at$S
rm -rf "$dst"; cp -r "$src" "$dst"
[ "$S" = "$(step "$dst")" ] || { echo "the checkpoint moved during the copy; run again"; exit 3; }
python - "$dst/config.json" "$S" <<'PY'
import json, sys
p, s = sys.argv[1], int(sys.argv[2]); c = json.load(open(p)); c["joint"]["steps"] = s; json.dump(c, open(p, "w"), indent=2)
PY
taskset -c "$CORE" latentscenes train --data "$data" --out "$dst" --resume "$@" --set joint.steps="$S" \
  --set logging.progress=false > "$dst.train.log" 2>&1
echo "$dst: joint stage ended at step $S"
for r in $RESES; do
  NEX=$NEX RES=$r OUT=$OUT taskset -c "$CORE" bash scripts/experiments/pkg_exploit.sh "$dst" "${r}_$(basename "$dst")"
done
