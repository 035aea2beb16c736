"""Tiny real runs for the viewer tests: a ``test``-preset 3Da-AE training run on two sphere scenes, an exploit
batch learning a third, a Tri-Planes (RGB) folder on that third scene, and their evaluation file.

(A uniquely named module, not conftest.py: other test folders import their conftest.py by that name. Each test
module wraps :func:`tiny_runs` in a fixture; the runs are trained once per session.)"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from helpers_3daae import single_thread, tiny_run_set  # noqa: E402


_RUNS: dict = {}


def tiny_runs(tmp_path_factory) -> dict:
    """``{"data", "run" (tr00, tr01), "batch" (tr00, tr01 + ex00), "rgb" (ex00), "pkg" (no scenes),
    "metrics" (eval JSON of the batch)}``, trained on the first call of the session."""
    if _RUNS:
        return _RUNS
    from latentscenes.evaluation.evaluate import write_metrics_json

    import latentscenes as ls

    runs = tiny_run_set(tmp_path_factory.mktemp("viewer"))
    with single_thread():
        metrics = write_metrics_json(ls.load(runs["batch"], device="cpu").evaluate(max_views=1),
                                     runs["run"].parent / "metrics.json")
    _RUNS.update({**runs, "metrics": metrics})
    return _RUNS
