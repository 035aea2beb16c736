"""Refit the first Tri-Planes (RGB) scene of a benchmark with the config it recorded and compare PSNR, final loss
and curve with the benchmark's (a code change to the RGB path must reproduce them). Usage: python THIS > out.json
(reads docs/bench-cpu-s8/results.json, data/fg128)."""
import json, sys
from latentscenes.config import from_dict
from latentscenes.data import MultiSceneDataset
from latentscenes.baselines.rgb.fit import RGBFitConfig, fit_rgb_scenes
from latentscenes.evaluation.curves import rgb_fit_evaluator
r = json.load(open("docs/bench-cpu-s8/results.json"))
cfg = from_dict(RGBFitConfig, r["rgb_config"]["rgb"])
cfg.measure_render = False
ref = r["rgb_results"]["rgb"]["scenes"][0]
ds = MultiSceneDataset("data/fg128", resolution=64)
out = fit_rgb_scenes([ds.load(ref["scene_id"])], cfg, out_dir=None, evaluate=rgb_fit_evaluator())
s = out["scenes"][0]
print(json.dumps({"scene": ref["scene_id"], "bench_psnr": ref["psnr"], "now_psnr": s["psnr"], "bench_final_loss": ref["final_loss"],
                  "now_final_loss": s["final_loss"], "bench_curve": [p for _, p in ref["curve"]], "now_curve": [p for _, p in s["curve"]],
                  "bench_time_s": ref["time_s"], "now_time_s": s["time_s"]}))
