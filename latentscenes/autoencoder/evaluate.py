"""Reconstruction quality of an autoencoder on a multi-scene dataset's held-out views.

Protocol (``latentscenes.metrics``, docs/evaluation.md): ``decode(encode(x))`` compared with the
ground truth in [0, 1] (output clamped), full frame including the white background, ``data_range = 1``;
PSNR and SSIM per view, averaged per scene, then over scenes. The encoding uses the autoencoder's own
``use_mean`` setting (posterior mean by default). This is the upper bound of every decoded 3Da-AE image
(paper Sec. 4, "AE" rows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latentscenes.autoencoder.data import load_dataset_views
from latentscenes.autoencoder.model import LatentAutoencoder
from latentscenes.autoencoder.pretrain import evaluate_reconstruction


@torch.no_grad()
def evaluate_on_dataset(
    ae: LatentAutoencoder,
    root: str | Path,
    scenes: str = "exploit",
    views: str | None = "test",
    resolution: int | None = 128,
    max_scenes: int = 0,
    batch: int = 16,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate ``ae`` on the ``views`` views of the ``scenes`` scenes of the dataset at ``root``.

    Args:
        ae: the autoencoder (any device).
        root: a ``MultiSceneDataset`` folder.
        scenes: ``"exploit"``, ``"train"`` or ``"all"``.
        views: ``"test"`` / ``"train"`` views, or None for all.
        resolution: square resolution the dataset loader resizes to (None = native).
        max_scenes: seeded subset of scenes (0 = all).
    Returns:
        ``{"psnr", "ssim", "chroma_err"`` (mean over scenes of the per-scene means; ``chroma_err``: mean
        absolute opponent-chroma error on object pixels, [0, 1] units, 0 = colours exact), ``"n_scenes",
        "n_views", "resolution", "per_scene": {id: {"psnr", "ssim", "chroma_err", "psnr_per_view",
        "ssim_per_view", "chroma_err_per_view"}}}``.
    Raises:
        DatasetError / FileNotFoundError: from the loader.
    """
    images, owners = load_dataset_views(root, scenes, views, max_scenes, 0, resolution, seed=seed, progress=False)
    res = evaluate_reconstruction(ae, images, batch=batch)
    per: dict[str, dict[str, Any]] = {}
    keys = ("psnr", "ssim", "chroma_err")
    for sid, *vals in zip(owners, *(res[f"{k}_per_image"] for k in keys)):
        d = per.setdefault(sid, {f"{k}_per_view": [] for k in keys})
        for k, v in zip(keys, vals):
            d[f"{k}_per_view"].append(v)
    for d in per.values():
        for k in keys:
            d[k] = sum(d[f"{k}_per_view"]) / len(d[f"{k}_per_view"])
    return {
        **{k: sum(d[k] for d in per.values()) / len(per) for k in keys},
        "n_scenes": len(per),
        "n_views": len(owners),
        "resolution": int(images.shape[-1]),
        "per_scene": per,
    }
