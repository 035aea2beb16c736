"""The v7 benchmark's plain-AE "relearn" batch (4 train scenes, 200 fit updates at batch 8) learned again from its saved
config, as it ran (`off`) and with the small-batch rule (`on`: batch 4, 400 updates; exploit.fit_min_steps).
Usage: python scripts/experiments/bench_relearn_rule.py off|on [BENCH_RUNS] (default: the v7 benchmark's runs/plain-ae,
which a fresh checkout does not have); then `latentscenes eval --run runs/s18/bench-relearn-ARM --scenes exploit`.
docs/fidelity.md, eighteenth session."""
import dataclasses
import json
import math
import sys

import torch

from latentscenes.config import from_dict
from latentscenes.data import MultiSceneDataset
from latentscenes.training.config import PipelineConfig, fit_for_min_steps
from latentscenes.training.pipeline import exploit_3daae

torch.set_num_threads(1)
b = sys.argv[2] if len(sys.argv) > 2 else 'reports/bench-cpu-v7/runs/plain-ae'
cfg = from_dict(PipelineConfig, json.load(open(f'{b}/relearn/config.json')), where='cfg')
ids = ["100-Austrian", "73C-UkraineIntl", "767-Azerbaijan", "A300-default"]
ds = MultiSceneDataset('data/fg128')
scenes = [ds.load(i) for i in ids]
arm = sys.argv[1]
fit = cfg.exploit.fit
if arm == 'on':  # the benchmark's rule now (per_scene_exploit): 400 view-updates per scene -> batch 4, 400 steps
    updates = fit.steps * fit.batch_size // len(ids)
    fit = fit_for_min_steps(dataclasses.replace(fit, epochs=float(updates)), len(ids), cfg.exploit.fit_min_steps)
    fit = dataclasses.replace(fit, steps=math.ceil(updates * len(ids) / fit.batch_size), epochs=None)
cfg = dataclasses.replace(cfg, exploit=dataclasses.replace(cfg.exploit, fit=fit), data=dataclasses.replace(cfg.data, path='data/fg128'))
r = exploit_3daae(f'{b}/train', f'runs/s18/bench-relearn-{arm}', cfg, scenes=scenes)
print(arm, r['stages']['exploit_fit']['final_losses'])
