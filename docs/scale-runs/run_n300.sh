#!/bin/bash
# N = 300 exploit scenes (issue 12): build a FlightGear subset with >= 300 exploit-split scenes
# (exploit_mesh_fraction 0.3: the default 0.1 holds only 171 exploit-split liveries), then the tiny-cpu exploit
# stages with the shipped 3Da-AE, then held-out evaluation of all 300. Code: snapshot of main at d77aebb.
cd /work/main/runs/scale
export OMP_NUM_THREADS=1 PYTHONPATH=/work/main/runs/scale/n300-src
PY=/work/main/.venv/bin/python
T='/usr/bin/time -f %M_KiB_%e_s_%U_user_%S_sys'
taskset -c 1 $T -o build300.time $PY -c "
from latentscenes.data.subsets import ensure_flightgear_subset as e
print(e('/work/main/data/fg-scale300', 40, 300, views=24, test_views=8, resolution=128, workers=1,
        build_overrides=['exploit_mesh_fraction=0.3']))
" > build300.log 2>&1
echo "exit $?" >> build300.log
taskset -c 1 $T -o n300.time $PY -m latentscenes.cli.main \
  exploit --run shipped --data /work/main/data/fg-scale300 --out /work/main/runs/scale/n300 --n-scenes 300 \
  --set data.resolution=64 --set logging.progress=false --resume > n300.log 2>&1
echo "exit $?" >> n300.log
taskset -c 1 $T -o n300.eval.time $PY -m latentscenes.cli.main \
  eval --run n300 --scenes exploit --out n300.eval.json --data /work/main/data/fg-scale300 > n300.eval.log 2>&1
echo "exit $?" >> n300.eval.log
