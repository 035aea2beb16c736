"""Tiny real runs for the viewer tests: a ``test``-preset 3Da-AE training run on two sphere scenes, an exploit
batch learning a third, a Tri-Planes (RGB) folder on that third scene, and their evaluation file.

(A uniquely named module, not conftest.py: other test folders import their conftest.py by that name. Each test
module wraps :func:`tiny_runs` in a fixture; the runs are trained once per session.)"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from helpers_3daae import single_thread, small_config, write_sphere_dataset  # noqa: E402


_RUNS: dict = {}


def tiny_runs(tmp_path_factory) -> dict:
    """``{"data", "run" (tr00, tr01), "batch" (tr00, tr01 + ex00), "rgb" (ex00), "pkg" (no scenes),
    "metrics" (eval JSON of the batch)}``, trained on the first call of the session."""
    if _RUNS:
        return _RUNS
    from latentscenes.config import get_preset
    from latentscenes.data import MultiSceneDataset
    from latentscenes.evaluation.evaluate import write_metrics_json
    from latentscenes.training.pipeline import exploit_3daae, export_pretrained, train_3daae
    from latentscenes.training.rgb_baseline import RGBFitConfig, fit_rgb_scenes

    import latentscenes as ls

    with single_thread():
        tmp = tmp_path_factory.mktemp("viewer")
        data = write_sphere_dataset(tmp / "data")  # 32 px, 4 train + 2 test views per scene
        cfg = small_config()
        cfg.data.path = str(data)
        cfg.warmup.steps, cfg.joint.steps = 1, 2  # a finished run is needed, not a good one
        train_3daae(cfg, tmp / "run", data_root=data)
        exploit_3daae(tmp / "run", tmp / "batch", data_root=data)
        fit_rgb_scenes(MultiSceneDataset(data), get_preset(RGBFitConfig, "test"), out_dir=tmp / "rgb",
                       scene_ids=["ex00"])
        export_pretrained(tmp / "run", tmp / "pkg")
        metrics = write_metrics_json(ls.load(tmp / "batch", device="cpu").evaluate(max_views=1), tmp / "metrics.json")
    _RUNS.update({"data": data, "run": tmp / "run", "batch": tmp / "batch", "rgb": tmp / "rgb", "pkg": tmp / "pkg",
                  "metrics": metrics})
    return _RUNS
