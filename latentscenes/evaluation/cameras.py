"""Where novel-view cameras sit by default for a dataset (turntable radius, elevation, intrinsics).

The radius, elevation and intrinsics of the default turntable come from the dataset: its
``manifest.json`` (``render_defaults`` / ``camera`` section) when it records them, else the median of the
training cameras (:func:`camera_defaults_from_views`). The camera convention, look-at and the paths themselves
live in :mod:`latentscenes.rendering.cameras`; ``orbit_cameras`` and ``look_at_opencv`` are re-exported here for
the evaluation modules that import them from this one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

from latentscenes.data.types import DatasetError, SceneViews
from latentscenes.rendering.cameras import look_at_opencv, orbit_cameras

__all__ = ["CameraDefaults", "camera_defaults_from_manifest", "camera_defaults_from_views", "look_at_opencv",
           "orbit_cameras"]


@dataclass
class CameraDefaults:
    """Where novel-view cameras sit by default for one dataset.

    Attributes:
        radius: camera distance from the origin (world units).
        elevation: radians above the xy-plane.
        K: ``[3, 3]`` float32 intrinsics normalised by image size.
        source: where the values came from (for logs and reports).
    """

    radius: float
    elevation: float
    K: torch.Tensor
    source: str


def camera_defaults_from_views(scenes: Iterable[SceneViews], split: str | None = "train") -> CameraDefaults:
    """Median camera distance, median elevation and median normalised intrinsics of the given scenes' views.

    Args:
        scenes: scenes whose cameras are pooled.
        split: only views of this split ("train"/"test"); ``None`` pools every view.
    Raises:
        DatasetError: if no view is found.
    """
    c2ws, Ks = [], []
    for s in scenes:
        idx = list(range(s.num_views)) if split is None else s.view_indices(split)
        if idx:
            c2ws.append(s.c2w[idx])
            Ks.append(s.K[idx])
    if not c2ws:
        raise DatasetError(f"no {split or ''} views to derive camera defaults from")
    c2w = torch.cat(c2ws).float()
    K = torch.cat(Ks).float()
    t = c2w[:, :3, 3]
    r = t.norm(dim=-1)
    el = torch.asin((t[:, 2] / r.clamp_min(1e-8)).clamp(-1, 1))
    return CameraDefaults(
        radius=float(r.median()),
        elevation=float(el.median()),
        K=K.median(dim=0).values,
        source=f"median of {len(r)} {split or 'all'} cameras",
    )


def _first(d: dict, keys: tuple[str, ...]) -> float | None:
    for k in keys:
        if k in d and d[k] is not None:
            return float(d[k])
    return None


def camera_defaults_from_manifest(dataset_root: str | Path, fallback: CameraDefaults | None = None) -> CameraDefaults | None:
    """Read the turntable camera from ``<dataset_root>/manifest.json`` when the dataset records it.

    Sections read, first match wins:
      * ``render_defaults``: ``camera_distance`` (or ``distance``), ``elevation_deg`` (or ``elevation`` in
        radians), ``focal`` (normalised fx/W = fy/H);
      * ``camera`` (written by ``latentscenes data build flightgear``): ``distance``, ``elevation_deg`` as a
        number or as the ``[min, max]`` band the cameras were drawn from (uniformly in area: the median
        elevation asin((sin min + sin max) / 2) is used), ``fov_deg``.
    (``camera.radius`` is the *object* radius and is never taken for the camera distance.) Missing
    elevation/intrinsics come from ``fallback`` (the training cameras), whose intrinsics are preferred.

    Returns:
        The defaults, or ``fallback`` when the manifest is absent or records no camera distance.
    Raises:
        DatasetError: if the manifest exists but is not valid JSON.
    """
    path = Path(dataset_root) / "manifest.json"
    if not path.is_file():
        return fallback
    try:
        man = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from None
    for section, dist_keys in (("render_defaults", ("camera_distance", "distance")), ("camera", ("distance", "camera_distance"))):
        sec = man.get(section) if isinstance(man, dict) else None
        if not isinstance(sec, dict):
            continue
        radius = _first(sec, dist_keys)
        if radius is None:
            continue
        el = None
        deg = sec.get("elevation_deg")
        if isinstance(deg, (list, tuple)) and len(deg) == 2:
            lo, hi = (math.radians(float(d)) for d in deg)
            el = math.asin((math.sin(lo) + math.sin(hi)) / 2)
        elif deg is not None:
            el = math.radians(float(deg))
        elif sec.get("elevation") is not None:
            el = float(sec["elevation"])
        if el is None:
            el = fallback.elevation if fallback else math.radians(20.0)
        if fallback is not None:
            K = fallback.K
        else:
            focal = _first(sec, ("focal", "focal_normalized"))
            if focal is None and sec.get("fov_deg") is not None:
                focal = 0.5 / math.tan(math.radians(float(sec["fov_deg"])) / 2)
            if focal is None:
                continue
            K = torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]])
        return CameraDefaults(radius=radius, elevation=el, K=K, source=f"{path} [{section}]")
    return fallback
