"""The evaluation protocol: held-out views, per view -> per scene -> overall, written to JSON.

For every evaluated view (the scene's ``test`` split by default) of every scene:
  * ``psnr`` / ``ssim``: the model's RGB prediction vs the ground-truth image. For a latent (3Da-AE) model the
    prediction is D(denormalize(rendered latent)); for an RGB model it is the rendered image.
  * ``latent_psnr`` / ``latent_ssim`` (latent models): rendered normalised latent, clamped to [-1, 1], vs the
    normalised *posterior mean* of the encoded ground truth, ``data_range = 2``.
  * ``ae_psnr`` / ``ae_ssim`` (latent models): the autoencoder's own reconstruction D(E_mean(x)) vs x (the
    upper bound of what decoded scenes can reach).
  * ``render_ms`` (per view, one view per call): time of the scene render; for latent models ``decode_ms`` is
    the decoder time and ``total_ms = render_ms + decode_ms``. A latent run with ``render.offset_ensemble = g > 1``
    renders and decodes each view g^2 times (:func:`~latentscenes.evaluation.model.render_decoded`); its times
    include all of them, its ``latent_psnr`` is the render at the view's own camera.

RGB metrics follow :mod:`latentscenes.metrics` (images in [0, 1], white background included,
``data_range = 1``, per image). Per-scene values are means over its views; group and overall values are means
over scenes (each scene weighs the same). Everything is deterministic: the model renders without sampling
noise and the encoder's posterior mean is used.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch

from latentscenes.data.types import SceneViews
from latentscenes.metrics import psnr_per_image, rgb_metrics, ssim_per_image
from latentscenes.evaluation.model import AutoencoderView, SceneModel, autoencoder_for, render_decoded, render_resolution
from latentscenes.utils.io import atomic_write_text
from latentscenes.utils.progress import progress_bar

PROTOCOL = {
    "rgb_range": "[0,1] after (x+1)/2 and clamping; data_range=1",
    "latent_range": "normalised latents clamped to [-1,1]; data_range=2",
    "background": "included (full frame, white background)",
    "ssim": "Gaussian window 11, sigma 1.5 (smaller odd window for tiny latents)",
    "averaging": "per image, then mean over a scene's views, then mean over scenes",
    "encoder": "posterior mean (deterministic)",
}

METRIC_KEYS = ("psnr", "ssim", "latent_psnr", "latent_ssim", "ae_psnr", "ae_ssim", "render_ms", "decode_ms", "total_ms")

#: A scene whose PSNR or latent PSNR lies this many dB below its group's median is listed as an outlier.
OUTLIER_DB = 3.0


def find_outliers(per_scene: dict[str, dict], margin_db: float = OUTLIER_DB) -> list[dict]:
    """Scenes far below the others of their group: the ones to look at first (a collapsed fit, a bad pose).

    A learned scene can fail while the batch's mean looks normal (docs/fidelity.md: two exploit fits of ten
    collapsed to a grey blob, 4-5 dB down in RGB and latent PSNR). Groups of fewer than 4 scenes are skipped
    (no meaningful median).

    Args:
        per_scene: :func:`evaluate_model`'s ``scenes`` (``{id: {"group", "mean": {"psnr", "latent_psnr"?, ...}}}``).
        margin_db: how far below the group's median (dB) a scene's PSNR or latent PSNR must be.
    Returns:
        worst first: ``[{"scene", "group", "metric", "value", "median", "below_db"}]``, one entry per scene (its
        larger shortfall).
    """
    by_group: dict[str, list[str]] = {}
    for sid, r in per_scene.items():
        by_group.setdefault(r.get("group", ""), []).append(sid)
    out = []
    for g, ids in by_group.items():
        if len(ids) < 4:
            continue
        worst: dict[str, dict] = {}
        for key in ("psnr", "latent_psnr"):
            vals = {s: per_scene[s]["mean"][key] for s in ids if key in per_scene[s]["mean"]
                    and math.isfinite(per_scene[s]["mean"][key])}
            if len(vals) < 4:
                continue
            med = statistics.median(vals.values())
            for s, v in vals.items():
                if med - v > margin_db and (s not in worst or med - v > worst[s]["below_db"]):
                    worst[s] = {"scene": s, "group": g, "metric": key, "value": v, "median": med, "below_db": med - v}
        out.extend(worst.values())
    return sorted(out, key=lambda o: -o["below_db"])


@dataclass
class ViewPredictions:
    """Predictions for some views of one scene (all on the CPU).

    Attributes:
        rgb: ``[V, 3, H, W]`` predicted RGB in [-1, 1] (decoded for latent models), not clamped.
        latent: ``[V, C, h, w]`` rendered normalised latent (latent models) or ``None``.
        latent_gt: ``[V, C, h, w]`` normalised posterior mean of the encoded ground truth, or ``None``.
        ae_rgb: ``[V, 3, H, W]`` autoencoder reconstruction D(E_mean(x)) in [-1, 1], or ``None``.
        depth: ``[V, 1, h, w]`` rendered depth (world units) or ``None``.
        render_ms, decode_ms: per-view times in milliseconds (``decode_ms`` is 0 for RGB models).
    """

    rgb: torch.Tensor
    latent: torch.Tensor | None
    latent_gt: torch.Tensor | None
    ae_rgb: torch.Tensor | None
    depth: torch.Tensor | None
    render_ms: list[float]
    decode_ms: list[float]


def _sync() -> None:
    """Wait for queued CUDA work so that wall-clock timings are honest (no-op on the CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def predict_views(
    model: SceneModel, scene: SceneViews, indices: Sequence[int], with_gt_latents: bool = True
) -> ViewPredictions:
    """Render (and decode) the views ``indices`` of ``scene`` with its own cameras, one view per call.

    Args:
        model: the learned scenes; must hold ``scene.scene_id``.
        scene: ground truth (images ``[V,3,H,W]`` in [0,1], cameras).
        indices: view indices into ``scene``.
        with_gt_latents: also encode the ground truth (latent targets and AE reconstruction).
    Raises:
        KeyError: if the model does not hold the scene.
        ValueError: if the image size does not fit the autoencoder's downsampling.
    """
    hw = render_resolution(model, scene.resolution, scene.scene_id)
    ae = autoencoder_for(model, scene.scene_id)
    rgbs, lats, depths, r_ms, d_ms = [], [], [], [], []
    with torch.no_grad():
        for i in indices:
            c2w = scene.c2w[i : i + 1].float()
            K = scene.K[i : i + 1].float()
            if ae is not None:
                dec = render_decoded(model, scene.scene_id, c2w, K, hw, sync=_sync)
                out, rgb = dec.render, dec.rgb
                r_ms.append(dec.render_s * 1000.0)
                d_ms.append(dec.decode_s * 1000.0)
                lats.append(out.image.detach().float().cpu())
                rgbs.append(rgb)
            else:
                _sync()
                t0 = time.perf_counter()
                out = model.render(scene.scene_id, c2w, K, hw)
                _sync()
                r_ms.append((time.perf_counter() - t0) * 1000.0)
                d_ms.append(0.0)
                rgbs.append(out.image.detach().float().cpu())
            if out.depth is not None:
                depths.append(out.depth.detach().float().cpu())
        latent_gt = ae_rgb = None
        if ae is not None and with_gt_latents:
            latent_gt, ae_rgb = reconstruct(ae, scene.images[list(indices)])
    return ViewPredictions(
        rgb=torch.cat(rgbs),
        latent=torch.cat(lats) if lats else None,
        latent_gt=latent_gt,
        ae_rgb=ae_rgb,
        depth=torch.cat(depths) if len(depths) == len(indices) and depths else None,
        render_ms=r_ms,
        decode_ms=d_ms,
    )


def reconstruct(ae: AutoencoderView, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The autoencoder's own view of ground-truth images (no grad, on the CPU).

    Args:
        ae: an :class:`AutoencoderView` (posterior mean encoder, decoder, latent normalisation).
        images: ``[V,3,H,W]`` in [0, 1].
    Returns:
        ``(latent, recon)``: the normalised latent ``normalize(E(x).mean)`` ``[V,4,H/8,W/8]`` in [-1, 1] (the
        latent targets) and its reconstruction ``D(E(x).mean)`` ``[V,3,H,W]`` in about [-1, 1].
    """
    with torch.no_grad():
        z = ae.encode_mean(images.float() * 2.0 - 1.0)
        return ae.normalize(z).detach().float().cpu(), ae.decode(z).detach().float().cpu()


def autoencoder_ceiling(ae: AutoencoderView, scene: SceneViews, split: str = "test",
                        max_views: int | None = None) -> dict:
    """PSNR / SSIM of the autoencoder's reconstruction D(E(x)) of a scene's ``split`` views: the upper bound of
    every latent scene decoded by it (the ``ae_psnr`` / ``ae_ssim`` of :func:`evaluate_scene`, without a model).

    Args:
        ae: an :class:`AutoencoderView` (posterior mean, no grad). scene: ground truth, images ``[V,3,H,W]`` in
            [0, 1] with H, W multiples of the downsampling (8). split: which views (``"test"``: held-out).
        max_views: the first ``max_views`` of them (None = all).
    Returns:
        ``{"n_views", "mean": {"psnr": dB, "ssim"}, "views": [{"index", "psnr", "ssim"}]}`` (means skip
        non-finite values).
    Raises:
        ValueError: if the scene has no view in ``split``.
    """
    idx = scene.view_indices(split)[:max_views] if max_views is not None else scene.view_indices(split)
    if not idx:
        raise ValueError(f"scene {scene.scene_id!r} has no {split!r} views to evaluate")
    _, rec = reconstruct(ae, scene.images[idx])
    m = rgb_metrics(rec, scene.images[idx].float())
    rows = [{"index": int(i), "psnr": float(m["psnr"][j]), "ssim": float(m["ssim"][j])} for j, i in enumerate(idx)]
    return {"n_views": len(rows), "mean": {k: _finite_mean(r[k] for r in rows) for k in ("psnr", "ssim")}, "views": rows}


def _finite_mean(values: Iterable[float]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(sum(vals) / len(vals)) if vals else None


def _mean_dict(rows: list[dict]) -> dict[str, float]:
    out = {}
    for k in METRIC_KEYS:
        m = _finite_mean(r.get(k) for r in rows if k in r)
        if m is not None:
            out[k] = m
    return out


def evaluate_scene(model: SceneModel, scene: SceneViews, split: str = "test", max_views: int | None = None) -> dict:
    """Metrics for the ``split`` views of one scene.

    Returns:
        ``{"n_views", "mean": {metric: float}, "views": [{"index", "name", metric: float, ...}]}``; PSNR in dB,
        SSIM in [-1, 1], times in ms. An identical prediction gives PSNR ``inf`` in the per-view row (JSON
        ``Infinity``); means skip non-finite values.
    Raises:
        ValueError: if the scene has no view in ``split``.
    """
    idx = scene.view_indices(split)
    if max_views is not None:
        idx = idx[:max_views]
    if not idx:
        raise ValueError(f"scene {scene.scene_id!r} has no {split!r} views to evaluate")
    pred = predict_views(model, scene, idx)
    gt = scene.images[idx].float()
    m = rgb_metrics(pred.rgb, gt)
    rows = []
    for j, i in enumerate(idx):
        row = {
            "index": int(i),
            "name": scene.view_names[i] if scene.view_names else str(i),
            "psnr": float(m["psnr"][j]),
            "ssim": float(m["ssim"][j]),
            "render_ms": pred.render_ms[j],
        }
        if model.kind == "latent":
            row["decode_ms"] = pred.decode_ms[j]
            row["total_ms"] = pred.render_ms[j] + pred.decode_ms[j]
        else:
            row["total_ms"] = pred.render_ms[j]
        rows.append(row)
    if model.kind == "latent" and pred.latent is not None and pred.latent_gt is not None:
        lat = pred.latent.clamp(-1.0, 1.0)
        lp = psnr_per_image(lat, pred.latent_gt, data_range=2.0)
        ls = ssim_per_image(lat, pred.latent_gt, data_range=2.0)
        am = rgb_metrics(pred.ae_rgb, gt)
        for j, row in enumerate(rows):
            row.update(
                latent_psnr=float(lp[j]), latent_ssim=float(ls[j]), ae_psnr=float(am["psnr"][j]), ae_ssim=float(am["ssim"][j])
            )
    return {"n_views": len(rows), "mean": _mean_dict(rows), "views": rows}


def evaluate_model(
    model: SceneModel,
    scenes: dict[str, SceneViews],
    groups: dict[str, list[str]],
    split: str = "test",
    max_views: int | None = None,
    show_progress: bool = True,
) -> dict:
    """Evaluate ``model`` on groups of scenes (e.g. ``{"train": [...], "exploit": [...]}``).

    Args:
        model: the learned scenes.
        scenes: ground truth by scene id; must hold every id listed in ``groups``.
        groups: group name -> scene ids (a scene may appear in one group only).
        split: which views to evaluate ("test" = held-out views).
        max_views: evaluate at most this many views per scene (first ones in order), ``None`` = all.
    Returns:
        A JSON-able dict: ``model`` (kind, name), ``protocol``, ``split``, ``scenes`` (per scene: group, mean,
        views), ``groups`` (per group: n_scenes, n_views, mean over scenes) and ``overall`` (mean over all
        evaluated scenes).
    Raises:
        KeyError: if a scene id is missing from ``scenes`` or from the model.
    """
    order = [(g, sid) for g, ids in groups.items() for sid in ids]
    for _, sid in order:
        if sid not in scenes:
            raise KeyError(f"no ground truth loaded for scene {sid!r}")
        if sid not in model.scene_ids:
            raise KeyError(f"model {model.name!r} holds no scene {sid!r}")
    per_scene: dict[str, dict] = {}
    t0 = time.perf_counter()
    if order:  # one untimed render + decode first: lazy initialisation must not count as render time
        first = scenes[order[0][1]]
        predict_views(model, first, [0], with_gt_latents=False)
    if show_progress:
        with progress_bar(f"eval {model.name}", total=len(order)) as (prog, task):
            for g, sid in order:
                per_scene[sid] = {"group": g, **evaluate_scene(model, scenes[sid], split, max_views)}
                prog.update(task, advance=1, info=f"{sid}: {per_scene[sid]['mean'].get('psnr', float('nan')):.2f} dB")
    else:
        for g, sid in order:
            per_scene[sid] = {"group": g, **evaluate_scene(model, scenes[sid], split, max_views)}

    def summary(ids: list[str]) -> dict:
        return {
            "n_scenes": len(ids),
            "n_views": int(sum(per_scene[s]["n_views"] for s in ids)),
            "mean": _mean_dict([per_scene[s]["mean"] for s in ids]),
        }

    return {
        "model": {"kind": model.kind, "name": model.name},
        "protocol": PROTOCOL,
        "split": split,
        "eval_seconds": time.perf_counter() - t0,
        "groups": {g: summary(ids) for g, ids in groups.items() if ids},
        "overall": summary([sid for _, sid in order]),
        "scenes": per_scene,
        "outliers": find_outliers(per_scene),
    }


def subset_result(result: dict, ids: list[str], group: str = "subset") -> dict:
    """An :func:`evaluate_model` result restricted to the scenes ``ids`` (no re-rendering), as one group.

    Raises:
        KeyError: if an id was not evaluated in ``result``.
    """
    missing = [s for s in ids if s not in result["scenes"]]
    if missing:
        raise KeyError(f"scenes {missing[:3]} were not evaluated")
    scenes = {s: {**result["scenes"][s], "group": group} for s in ids}
    summ = {
        "n_scenes": len(ids),
        "n_views": int(sum(scenes[s]["n_views"] for s in ids)),
        "mean": _mean_dict([scenes[s]["mean"] for s in ids]),
    }
    return {**{k: v for k, v in result.items() if k not in ("groups", "overall", "scenes", "outliers")},
            "groups": {group: summ}, "overall": summ, "scenes": scenes, "outliers": find_outliers(scenes)}


def write_metrics_json(result: dict, path: str | Path) -> Path:
    """Write an :func:`evaluate_model` result as indented JSON, atomically. Returns the path."""
    path = Path(path)
    atomic_write_text(path, json.dumps(result, indent=2, allow_nan=True) + "\n")
    return path


def format_summary(result: dict) -> str:
    """A few human-readable lines (per group and overall means) for the console."""
    lines = [f"{result['model']['name']} ({result['split']} views)"]
    for name, s in [*result["groups"].items(), ("overall", result["overall"])]:
        m = s["mean"]
        parts = [f"PSNR {m['psnr']:.2f} dB", f"SSIM {m['ssim']:.4f}"] if "psnr" in m else []
        if "latent_psnr" in m:
            parts.append(f"latent PSNR {m['latent_psnr']:.2f} dB")
        if "ae_psnr" in m:
            parts.append(f"AE PSNR {m['ae_psnr']:.2f} dB")
        if "total_ms" in m:
            parts.append(f"{m['total_ms']:.1f} ms/view")
        lines.append(f"  {name:8s} {s['n_scenes']:4d} scenes {s['n_views']:5d} views  " + ", ".join(parts))
    outliers = result.get("outliers") or []
    if outliers:
        shown = ", ".join(f"{o['scene']} ({o['metric'].replace('_', ' ')} {o['value']:.2f} dB, {o['below_db']:.1f} below "
                          f"the median)" for o in outliers[:5])
        lines.append(f"  {len(outliers)} scene(s) more than {OUTLIER_DB:g} dB below their group's median, worst first: "
                     f"{shown}{' ...' if len(outliers) > 5 else ''}; look at them (`latentscenes view`, `render`)")
    return "\n".join(lines)
