"""Evaluation callbacks for training curves (quality vs training time, paper Fig. 6).

The full evaluation protocol lives in ``latentscenes.evaluation``; this is the light-weight hook a stage calls
every ``eval_every`` steps (its time is excluded from the stage's ``train_s``).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from latentscenes.data.types import SceneViews
from latentscenes.metrics import psnr_per_image, to_unit_range
from latentscenes.training.data import build_view_table
from latentscenes.training.stages import EvalFn, LatentSystem


def heldout_psnr_eval(
    scenes: Sequence[SceneViews], split: str = "test", max_views: int | None = 2, resolution: int | None = None,
    decode: bool = True, batch_size: int = 8,
) -> EvalFn:
    """An ``eval_fn(system, stage, step)`` measuring PSNR on held-out views of the scenes in the bank.

    Protocol (docs/evaluation.md): decoded RGB is compared in [0, 1] (``(x + 1) / 2`` clamped), PSNR per image
    then averaged; the latent PSNR compares the deterministic render with ``normalize(E(x).mean)`` in [-1, 1]
    (data range 2). Rendering is deterministic (no sampling noise). A monitor: one render and one decode per
    view, without ``render.offset_ensemble`` (the evaluation protocol applies it; docs/evaluation.md).

    Args:
        scenes: scenes with ``split`` views; those not in ``system.bank`` at call time are skipped.
        max_views: held-out views per scene (``None`` = all). resolution: image size (as training).
        decode: also decode to RGB (costs a decoder pass).
    Returns:
        callable returning ``{"psnr_latent": dB, "psnr_rgb": dB}`` (``psnr_rgb`` only when ``decode``).
    """
    table = build_view_table(scenes, split, max_views, resolution)

    @torch.no_grad()
    def fn(system: LatentSystem, stage: str, step: int) -> dict[str, float]:
        known = [i for i, s in enumerate(table.scene_ids) if s in system.bank.scene_ids]
        keep = torch.nonzero(torch.isin(table.scene_rows, torch.tensor(known, dtype=torch.long))).flatten()
        if keep.numel() == 0:
            return {}
        saved = system.render
        system.render = dataclasses.replace(saved, deterministic=True)
        lat_p, rgb_p = [], []
        try:
            ds = system.downsample
            H, W = table.resolution
            bank_rows_of_scene = system.bank.rows(table.scene_ids[i] if i in known else system.bank.scene_ids[0]
                                                  for i in range(len(table.scene_ids))).cpu()
            for i in range(0, keep.numel(), batch_size):
                rows = keep[i : i + batch_size]
                x = table.batch_images(rows).to(system.device)
                out = system.render_latents(bank_rows_of_scene[table.scene_rows[rows]], table.c2w[rows], table.K[rows],
                                            H // ds, W // ds)
                target = system.ae.normalize(system.ae.encode_distribution(x).mean)
                lat_p.append(psnr_per_image(out["image"].clamp(-1, 1), target, data_range=2.0).cpu())
                if decode:
                    rgb = system.ae.decode(system.ae.denormalize(out["image"]))
                    rgb_p.append(psnr_per_image(to_unit_range(rgb), to_unit_range(x)).cpu())
        finally:
            system.render = saved
        res = {"psnr_latent": float(torch.cat(lat_p).mean())}
        if decode:
            res["psnr_rgb"] = float(torch.cat(rgb_p).mean())
        return res

    return fn
