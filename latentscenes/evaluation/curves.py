"""The evaluation protocol handed to the fits as callbacks: the one metric path for training curves too.

A fit lives below this floor (``training/`` for the latent stages, ``baselines/rgb/`` for Tri-Planes (RGB)) and
may not import the protocol, so the caller passes it in:

* :func:`latent_curve_eval`: the latent stages' ``eval_fn(system, stage, step)`` (``training.stages.run_stage``),
  the mean held-out PSNR of a few views per scene (quality vs time, paper Fig. 6);
* :func:`rgb_fit_evaluator`: the Tri-Planes (RGB) fit's ``evaluate`` (``baselines.rgb.fit.fit_rgb_scenes``), used
  for its curve and for its final held-out PSNR / SSIM.

Both wrap the live objects as a :class:`~latentscenes.evaluation.model.SceneModel` and call
:func:`~latentscenes.evaluation.evaluate.evaluate_scene`, exactly as ``latentscenes eval`` does with the saved
files: deterministic renders, one view at a time, the latent models decoded at ``render.offset_ensemble`` offsets,
``latentscenes.metrics`` per image (docs/evaluation.md). Figures from a fit and from ``eval`` of its folder are
therefore the same numbers (tests/baselines/rgb/test_fit.py, tests/evaluation/test_eval_adapters.py,
tests/training/test_smoke.py, tests/bench/test_bench_smoke.py). Neither changes what it evaluates: the modules'
train / eval modes are restored and nothing is moved to another device.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch

from latentscenes.baselines.rgb.fit import HeldOutEval
from latentscenes.data.types import SceneViews
from latentscenes.evaluation.evaluate import evaluate_scene
from latentscenes.evaluation.runs import latent_system_model, triplane_scene_model
from latentscenes.rendering.renderer import RenderConfig


def latent_curve_eval(scenes: Sequence[SceneViews], n_views: int, cpu_spent: dict | None = None) -> Callable:
    """``eval_fn(system, stage, step) -> {"psnr": dB}`` for the latent stages: the mean over ``scenes`` held in
    the system's bank of the held-out PSNR of their first ``n_views`` test views (scenes not in the bank are
    skipped; ``{}`` when none is). The stages exclude its time from their clocks.

    Args:
        scenes: ground truth (images ``[V,3,H,W]`` in [0, 1]) with ``"test"`` views, at the size the stages train
            at (they are rendered at their own size: resize them first, as the benchmark's loader does).
        n_views: test views per scene (the first ones), >= 1.
        cpu_spent: when given, ``cpu_spent["s"]`` accumulates the process CPU seconds spent evaluating, so that a
            caller measuring a whole phase's CPU time can take them out.
    Raises (when called):
        ValueError: a scene without test views, or an image size the autoencoder's downsampling does not divide.
    """

    def fn(system: Any, stage: str, step: int) -> dict[str, float]:
        c0 = time.process_time()
        modes = [(m, m.training) for m in (system.ae, system.mlp)]
        try:
            model = latent_system_model(system, "curve")  # puts the autoencoder and the MLP in eval mode
            vals = [evaluate_scene(model, s, "test", n_views)["mean"]["psnr"] for s in scenes
                    if s.scene_id in model.scene_ids]
        finally:
            for m, training in modes:
                m.train(training)
        if cpu_spent is not None:
            cpu_spent["s"] = cpu_spent.get("s", 0.0) + time.process_time() - c0
        return {"psnr": float(sum(vals) / len(vals))} if vals else {}

    return fn


def rgb_fit_evaluator() -> HeldOutEval:
    """The Tri-Planes (RGB) fit's ``evaluate(bank, mlp, render_cfg, background, scene, max_views)``.

    Args of the returned callable:
        bank: the fit's ``SceneBank`` (it may hold several scenes: macro); mlp: its ``TriplaneDecoder`` (C = 3).
        render_cfg: the fit's ``RenderConfig`` (rendered deterministically); background: ``[3]`` in [0, 1].
        scene: one scene's ground truth with ``"test"`` views; max_views: the first ``max_views`` of them
            (None = all).
    Returns:
        ``{"psnr": [dB per view], "ssim": [per view]}`` of the ``evaluate_scene`` protocol.
    Raises (when called):
        ValueError: a scene without test views; KeyError: a scene the bank does not hold.

    The MLP is left in the mode it was in (the scene model puts it in eval mode while rendering) and on its device
    (the scene model renders on the MLP's device).
    """

    def evaluate(bank: Any, mlp: torch.nn.Module, render_cfg: RenderConfig, background: torch.Tensor,
                 scene: SceneViews, max_views: int | None) -> dict[str, list[float]]:
        was_training = mlp.training
        try:
            model = triplane_scene_model("rgb", "fit", bank, mlp, render_cfg, background,
                                         device=next(mlp.parameters()).device)
            rows = evaluate_scene(model, scene, "test", max_views)["views"]
        finally:
            mlp.train(was_training)
        return {"psnr": [r["psnr"] for r in rows], "ssim": [r["ssim"] for r in rows]}

    return evaluate
