"""Dataset validation: load every scene, check it, gather statistics, draw the cameras and a contact sheet.

A *problem* makes ``latentscenes data validate`` exit non-zero; a *warning* is reported only.
Problems: a scene that does not load (bad image, pose, intrinsics...; the message names the file), images
of different sizes across scenes, view counts that differ from the manifest's ``views_per_scene``, a scene
without training views, views whose mask is empty (the object is not in the picture), cameras off the
manifest's distance or not looking at the origin (more than 1 degree), manifest splits that overlap or are
empty, ``render`` near/far that do not bracket the scene box as seen from the cameras.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from latentscenes.data.dataset import MultiSceneDataset
from latentscenes.data.loaders import load_scene
from latentscenes.data.types import DatasetError, SceneViews
from latentscenes.utils.io import atomic_write_text
from latentscenes.utils.progress import progress_bar


@dataclass
class ValidationReport:
    """Result of :func:`validate_dataset`. ``ok`` is True when ``problems`` is empty."""

    root: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "ok": self.ok, "problems": self.problems, "warnings": self.warnings,
                "stats": self.stats, "figures": self.figures}


def _scene_summary(sv: SceneViews) -> dict[str, Any]:
    c2w = sv.c2w.double().numpy()
    pos = c2w[:, :3, 3]
    dist = np.linalg.norm(pos, axis=1)
    fwd = c2w[:, :3, 2]
    to_origin = -pos / np.maximum(dist[:, None], 1e-12)
    ang = np.degrees(np.arccos(np.clip((fwd * to_origin).sum(1), -1.0, 1.0)))
    # distance from the origin to the optical axis
    axis_off = np.linalg.norm(np.cross(fwd, -pos), axis=1)
    out: dict[str, Any] = {
        "scene_id": sv.scene_id,
        "views": sv.num_views,
        "train": len(sv.view_indices("train")),
        "test": len(sv.view_indices("test")),
        "hw": sv.resolution,
        "positions": pos,
        "dist": dist,
        "lookat_deg": ang,
        "axis_offset": axis_off,
        "has_mask": sv.masks is not None,
        "K": sv.K[0].numpy(),
    }
    if sv.masks is not None:
        m = sv.masks.numpy()[:, 0]
        out["empty_masks"] = [sv.view_names[i] if sv.view_names else str(i) for i in np.where(m.reshape(len(m), -1).max(1) < 0.5)[0]]
        border = np.maximum.reduce([m[:, 0, :].max(1), m[:, -1, :].max(1), m[:, :, 0].max(1), m[:, :, -1].max(1)])
        out["border_views"] = int((border > 0.5).sum())
        out["coverage"] = float(m.mean())
    else:
        img = sv.images.numpy()
        out["empty_masks"] = [sv.view_names[i] if sv.view_names else str(i) for i in np.where(img.reshape(len(img), -1).min(1) > 0.99)[0]]
        out["border_views"] = 0
        out["coverage"] = float((img.min(1) < 0.99).mean())
    return out


def validate_dataset(root: str | Path, figures_dir: str | Path | None = None, workers: int = 2,
                     contact_scenes: int = 12, progress: bool = True) -> ValidationReport:
    """Validate a dataset folder (any supported layout; a manifest adds checks).

    Args:
        root: dataset folder.
        figures_dir: where ``cameras.png`` and ``contact_sheet.png`` go (default ``<root>/validation``).
        workers: threads loading scenes (PNG decoding releases the GIL).
        contact_scenes: number of scenes on the contact sheet.

    Returns:
        ValidationReport with problems, warnings, statistics and the figure paths (also written to
        ``<figures_dir>/validation.json``).
    """
    root = Path(root)
    rep = ValidationReport(root=str(root))
    try:
        ds = MultiSceneDataset(root, cache_size=1)
    except DatasetError as e:
        rep.problems.append(str(e))
        return rep
    man = ds.manifest
    ids = ds.scene_ids
    summaries: dict[str, dict[str, Any]] = {}

    def work(sid: str) -> tuple[str, dict[str, Any] | None, str | None]:
        try:
            sv = load_scene(ds.scene_path(sid)) if ds._eg3d_root is None else ds.load(sid)
            return sid, _scene_summary(sv), None
        except DatasetError as e:
            return sid, None, str(e)
        except Exception as e:  # report, never crash the validation
            return sid, None, f"{ds.scene_path(sid)}: {type(e).__name__}: {e}"

    with ThreadPoolExecutor(max(1, workers)) as ex:
        it = ex.map(work, ids)
        if progress:
            with progress_bar("validate scenes", len(ids)) as (pb, task):
                results = []
                for r in it:
                    results.append(r)
                    pb.update(task, advance=1)
        else:
            results = list(it)
    for sid, summ, err in results:
        if err:
            rep.problems.append(err)
        else:
            summaries[sid] = summ
    # ---- checks
    hws = sorted({tuple(s["hw"]) for s in summaries.values()})
    if len(hws) > 1:
        rep.problems.append(f"images of different sizes across scenes: {hws}")
    vps = man.get("views_per_scene")
    for sid, s in summaries.items():
        if s["train"] == 0:
            rep.problems.append(f"{root / sid}: scene has no training views")
        if isinstance(vps, dict) and (s["train"] != vps.get("train") or s["test"] != vps.get("test")):
            rep.problems.append(f"{root / sid}: {s['train']} train + {s['test']} test views, manifest says "
                                f"{vps.get('train')} + {vps.get('test')}")
        if s["empty_masks"]:
            rep.problems.append(f"{root / sid}: {len(s['empty_masks'])} views show no object (e.g. {s['empty_masks'][0]})")
        if s["border_views"]:
            rep.warnings.append(f"{root / sid}: the object touches the image border in {s['border_views']} views")
        if float(np.max(s["lookat_deg"])) > 1.0:
            rep.problems.append(f"{root / sid}: cameras do not look at the origin (up to {np.max(s['lookat_deg']):.2f} deg off)")
    cam = man.get("camera") or {}
    if "distance" in cam and summaries:
        d0, jit = float(cam["distance"]), float(cam.get("distance_jitter", 0.0))
        lo, hi = d0 * (1 - jit) - 1e-3, d0 * (1 + jit) + 1e-3
        for sid, s in summaries.items():
            if s["dist"].min() < lo or s["dist"].max() > hi:
                rep.problems.append(f"{root / sid}: camera distance {s['dist'].min():.3f}..{s['dist'].max():.3f} outside "
                                    f"the manifest's {lo:.3f}..{hi:.3f}")
    rd = ds.render_defaults
    if summaries:
        all_d = np.concatenate([s["dist"] for s in summaries.values()])
        half = rd["box_size"] / 2.0
        radius = float(cam.get("radius", half))
        if rd["near"] <= 0 or rd["far"] <= rd["near"]:
            rep.problems.append(f"render near/far {rd['near']}/{rd['far']} are not 0 < near < far")
        elif rd["near"] > all_d.min() - radius + 1e-6 or rd["far"] < all_d.max() + radius - 1e-6:
            msg = (f"render near/far {rd['near']}/{rd['far']} do not cover the object sphere (radius {radius}) from camera "
                   f"distances {all_d.min():.3f}..{all_d.max():.3f}")
            (rep.problems if "render" in man else rep.warnings).append(msg)
    splits = man.get("splits")
    if isinstance(splits, dict):
        tr, ex_ = set(splits.get("train", [])), set(splits.get("exploit", []))
        if tr & ex_:
            rep.problems.append(f"manifest splits overlap: {sorted(tr & ex_)[:3]}")
        if not tr:
            rep.problems.append("manifest split 'train' is empty")
        if "exploit" in splits and not ex_:
            rep.problems.append("manifest split 'exploit' is empty")
        missing = (tr | ex_) - set(ids)
        if missing:
            rep.problems.append(f"manifest splits list scenes that do not exist: {sorted(missing)[:3]}")
        if man.get("held_out_meshes") and isinstance(man.get("scenes"), dict):
            leak = [s for s in tr if man["scenes"].get(s, {}).get("mesh_id") in set(man["held_out_meshes"])]
            if leak:
                rep.problems.append(f"train scenes use held-out meshes: {leak[:3]}")
    # ---- statistics
    if summaries:
        all_d = np.concatenate([s["dist"] for s in summaries.values()])
        all_a = np.concatenate([s["lookat_deg"] for s in summaries.values()])
        all_p = np.concatenate([s["positions"] for s in summaries.values()])
        elev = np.degrees(np.arcsin(np.clip(all_p[:, 2] / np.maximum(np.linalg.norm(all_p, axis=1), 1e-12), -1, 1)))
        fx = np.array([s["K"][0, 0] for s in summaries.values()])
        rep.stats = {
            "scenes": len(ids),
            "scenes_loaded": len(summaries),
            "views": int(sum(s["views"] for s in summaries.values())),
            "train_views": int(sum(s["train"] for s in summaries.values())),
            "test_views": int(sum(s["test"] for s in summaries.values())),
            "image_sizes_hw": [list(h) for h in hws],
            "masks": sum(1 for s in summaries.values() if s["has_mask"]),
            "camera_distance": {"min": float(all_d.min()), "mean": float(all_d.mean()), "max": float(all_d.max())},
            "lookat_error_deg": {"mean": float(all_a.mean()), "max": float(all_a.max())},
            "elevation_deg": {"min": float(elev.min()), "mean": float(elev.mean()), "max": float(elev.max())},
            "fx_normalised": {"min": float(fx.min()), "max": float(fx.max())},
            "object_coverage": float(np.mean([s["coverage"] for s in summaries.values()])),
            "border_views": int(sum(s["border_views"] for s in summaries.values())),
            "render": rd,
            "splits": {n: len(ds.split_scene_ids(n)) for n in ("train", "exploit")} if not any("split" in p for p in rep.problems) else {},
        }
    # ---- figures
    fig_dir = Path(figures_dir) if figures_dir is not None else root / "validation"
    try:
        fig_dir.mkdir(parents=True, exist_ok=True)
        if summaries:
            rep.figures.append(str(_plot_cameras(summaries, fig_dir / "cameras.png")))
            rep.figures.append(str(_contact_sheet(ds, sorted(summaries), fig_dir / "contact_sheet.png", contact_scenes)))
        atomic_write_text(fig_dir / "validation.json", json.dumps(rep.to_dict(), indent=1) + "\n")
    except OSError as e:
        rep.warnings.append(f"{fig_dir}: could not write figures ({e})")
    return rep


def _plot_cameras(summaries: dict[str, dict[str, Any]], path: Path, max_points: int = 20000) -> Path:
    import matplotlib  # imported on use: matplotlib (~0.5 s) only for colour maps and plots

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # imported on use: matplotlib (~0.5 s) only for colour maps and plots

    pos = np.concatenate([s["positions"] for s in summaries.values()])
    if len(pos) > max_points:
        pos = pos[np.random.default_rng(0).choice(len(pos), max_points, replace=False)]
    fig = plt.figure(figsize=(10, 4.5))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    ax.scatter(pos[:, 0], pos[:, 1], pos[:, 2], s=1, alpha=0.3)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z (up)")
    ax.set_title(f"camera positions ({len(pos)} shown)")
    ax2 = fig.add_subplot(1, 2, 2)
    r = np.linalg.norm(pos, axis=1)
    az = np.degrees(np.arctan2(pos[:, 1], pos[:, 0]))
    el = np.degrees(np.arcsin(np.clip(pos[:, 2] / np.maximum(r, 1e-12), -1, 1)))
    ax2.scatter(az, el, s=1, alpha=0.3)
    ax2.set_xlabel("azimuth (deg)")
    ax2.set_ylabel("elevation (deg)")
    ax2.set_title(f"distance {r.min():.3f}..{r.max():.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _contact_sheet(ds: MultiSceneDataset, ids: list[str], path: Path, n_scenes: int, n_views: int = 6) -> Path:
    pick = [ids[int(i)] for i in np.linspace(0, len(ids) - 1, min(n_scenes, len(ids))).round().astype(int)]
    pick = list(dict.fromkeys(pick))
    rows = []
    for sid in pick:
        sv = ds.load(sid)
        idx = np.linspace(0, sv.num_views - 1, min(n_views, sv.num_views)).round().astype(int)
        tiles = [sv.images[i].permute(1, 2, 0).numpy() for i in idx]
        while len(tiles) < n_views:
            tiles.append(np.ones_like(tiles[0]))
        rows.append(np.concatenate(tiles, axis=1))
    h = max(r.shape[0] for r in rows)
    w = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, h - r.shape[0]), (0, w - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    sheet = np.concatenate(rows, axis=0)
    Image.fromarray((np.clip(sheet, 0, 1) * 255).round().astype(np.uint8)).save(path)
    return path
