"""Latent consistency probe: how 3D-consistent are an autoencoder's latents? (paper Sec. 3.1, Fig. 3-4)

A plain autoencoder encodes every view of an object on its own, so nothing makes the latents of two views
projections of one 3D field; the paper's 3Da-AE is trained so that they are. The probe measures this
directly and independently of view sparsity: it fits latent tri-planes (Encode-Scene, L_E on cached
posterior means, autoencoder frozen) on **every** view of each scene -- held-out views included -- and
reports how well the fitted field reproduces those views:

* ``probe_psnr`` (decoded RGB vs ground truth) on the held-out views, which the fit *did* see: the best a
  latent scene can do with this autoencoder when views are plentiful;
* ``probe_latent_psnr``: rendered vs encoded latents (how well one 3D field explains all the latents);
* ``ae_psnr``: the autoencoder's own reconstruction D(E(x)) of the same views (the ceiling).

``ae_psnr - probe_psnr`` is the **consistency gap**: the share of the autoencoder's quality that no latent
scene can keep because the latents of different views disagree (or the planes cannot hold them). A
3D-aware autoencoder must shrink it without lowering ``ae_psnr``.

Run it with ``latentscenes probe`` (cli/evaluate.py) or :func:`consistency_probe`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Sequence


from latentscenes.data.types import DatasetError, SceneViews
from latentscenes.evaluation.evaluate import evaluate_model
from latentscenes.evaluation.model import set_offset_ensemble
from latentscenes.evaluation.runs import latent_system_model
from latentscenes.training.config import PipelineConfig, StageConfig
from latentscenes.training.data import build_view_table, shift_views
from latentscenes.training.pipeline import build_system, encode_views
from latentscenes.training.stages import run_stage


@dataclasses.dataclass
class ProbeConfig:
    """Budget of the probe fit (the renderer, tri-plane sizes and learning rates are the pipeline's).

    Attributes:
        view_updates_per_scene: view-updates each scene receives (steps = ceil(S * this / batch_size)).
        batch_size: views per update (mixing scenes, as in training).
        lambda_tv: tri-plane TV weight of the fit (the warm-up's by default when ``None``).
        max_views: evaluate at most this many held-out views per scene (``None`` = all).
    """

    view_updates_per_scene: int = 600
    batch_size: int = 8
    lambda_tv: float | None = None
    max_views: int | None = None


def _all_views_train(scene: SceneViews) -> SceneViews:
    """The same scene with every view (held-out included) labelled ``train`` for fitting."""
    return dataclasses.replace(scene, split=["train"] * scene.num_views)


def consistency_probe(
    ae: Any, scenes: Sequence[SceneViews], cfg: PipelineConfig, probe: ProbeConfig | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Fit latent tri-planes on all views of ``scenes`` with the frozen ``ae`` and evaluate them.

    Args:
        ae: a ``LatentAutoencoder``; its weights are not changed (its parameters are left with
            ``requires_grad=False``).
        scenes: scenes with ``test`` views (images ``[V,3,H,W]`` in [0,1] at the resolution to probe).
        cfg: pipeline config: tri-plane sizes, renderer, warm-up learning rates, seed, ``data.resolution``,
            ``data.shift_grid`` (the fit's views at g x g sub-latent-pixel offsets; the budget per scene is the same).
        probe: the fit's budget (:class:`ProbeConfig`).
    Returns:
        ``{"n_scenes", "steps", "fit_s", "heldout": evaluation result (docs/evaluation.md layout) on the
        test views, "train": the same on the train views, "summary": {"probe_psnr", "probe_latent_psnr",
        "ae_psnr", "consistency_gap_db", "train_psnr"}}`` (PSNR in dB, means over scenes).
    Raises:
        DatasetError: a scene without ``test`` views or with another image size.
    """
    probe = probe or ProbeConfig()
    scenes = list(scenes)
    for s in scenes:
        if not s.view_indices("test"):
            raise DatasetError(f"scene {s.scene_id!r}: the probe needs held-out (test) views")
    fit_scenes = [_all_views_train(s) for s in scenes]
    # With data.shift_grid > 1 the fit also sees every view at sub-latent-pixel offsets (as training and exploit
    # do), so the probe then measures how one field explains the latents of all views at all those offsets.
    table = shift_views(build_view_table(fit_scenes, "train", None, cfg.data.resolution), cfg.data.shift_grid,
                        int(ae.downsample_factor))
    for p in ae.parameters():
        p.requires_grad_(False)
    system = build_system(cfg, ae, table.scene_ids, seed_tag="probe-init")
    latents, cache_s, _ = encode_views(system, table, None, cfg.encode_batch_size, progress)
    steps = max(1, math.ceil(len(scenes) * probe.view_updates_per_scene / probe.batch_size))
    stage = StageConfig(
        **{**dataclasses.asdict(cfg.warmup), "steps": steps, "epochs": None, "batch_size": probe.batch_size,
           "lambda_enc": 1.0, "lambda_ae": 0.0, "lambda_dec": 0.0, "lr_encoder": 0.0, "lr_decoder": 0.0,
           "lambda_latent_anchor": 0.0, "checkpoint_every": 0, "eval_every": 0,
           "lambda_tv": cfg.warmup.lambda_tv if probe.lambda_tv is None else probe.lambda_tv},
    )
    t0 = time.perf_counter()
    res = run_stage(system, table, "probe", stage, seed=cfg.seed, latents=latents, progress=progress)
    fit_s = time.perf_counter() - t0
    model = latent_system_model(system, name="consistency probe")
    # One decode per view whatever the run's render.offset_ensemble: the probe measures how consistent the latents
    # are, and an ensemble of decodes would add the decoder's averaging to that (docs/fidelity.md, sixth session).
    set_offset_ensemble(model, 1)
    gt = {s.scene_id: s for s in scenes}
    groups = {"probe": [s.scene_id for s in scenes]}
    held = evaluate_model(model, gt, groups, split="test", max_views=probe.max_views, show_progress=progress)
    train = evaluate_model(model, gt, groups, split="train", max_views=probe.max_views, show_progress=progress)
    o = held["overall"]["mean"]
    summary = {
        "probe_psnr": o.get("psnr"),
        "probe_latent_psnr": o.get("latent_psnr"),
        "ae_psnr": o.get("ae_psnr"),
        "consistency_gap_db": (o["ae_psnr"] - o["psnr"]) if o.get("ae_psnr") is not None else None,
        "train_psnr": train["overall"]["mean"].get("psnr"),
        "final_loss_enc": res.final_losses.get("enc"),
    }
    return {"n_scenes": len(scenes), "steps": steps, "fit_s": fit_s, "latent_cache_s": cache_s,
            "heldout": held, "train": train, "summary": summary}
