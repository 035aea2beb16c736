"""Camera paths for novel views and turntables (OpenCV convention, world z-up).

Every camera built here looks at the world origin from a sphere of radius ``radius``:
  * c2w ``[..., 4, 4]`` float32, OpenCV axes (x right, y down, z forward = towards the origin);
  * world up is +z, so the image's "up" (-y in the camera) is as close to +z as possible;
  * azimuth 0 is the +x axis, azimuths grow counter-clockwise seen from above (towards +y);
  * elevation is the angle above the xy-plane, in radians, strictly inside (-pi/2, pi/2).

The radius, elevation and intrinsics of the default turntable come from the dataset: its
``manifest.json`` (``render_defaults`` / ``render`` section) when it records them, else the median of the
training cameras (:func:`camera_defaults_from_views`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

from latentscenes.data.types import DatasetError, SceneViews


def look_at_opencv(eye: torch.Tensor, target: torch.Tensor | None = None, up: torch.Tensor | None = None) -> torch.Tensor:
    """OpenCV camera-to-world matrices for cameras at ``eye`` looking at ``target`` with world ``up``.

    Args:
        eye: ``[N, 3]`` camera centres (world units).
        target: ``[3]`` or ``[N, 3]`` points looked at; the origin by default.
        up: ``[3]`` world up; ``+z`` by default.
    Returns:
        ``[N, 4, 4]`` float32 c2w; columns 0..2 are the camera x (right), y (down), z (forward) axes in world
        coordinates, column 3 is ``eye``.
    Raises:
        ValueError: if a camera sits on the target or looks exactly along ``up`` (the frame is undefined).
    """
    eye = torch.as_tensor(eye, dtype=torch.float32).reshape(-1, 3)
    target = torch.zeros(3) if target is None else torch.as_tensor(target, dtype=torch.float32)
    up = torch.tensor([0.0, 0.0, 1.0]) if up is None else torch.as_tensor(up, dtype=torch.float32)
    fwd = target.expand_as(eye) - eye
    dist = fwd.norm(dim=-1, keepdim=True)
    if bool((dist < 1e-8).any()):
        raise ValueError("look_at_opencv: a camera sits on its target")
    fwd = fwd / dist
    right = torch.cross(fwd, up.expand_as(fwd), dim=-1)
    rn = right.norm(dim=-1, keepdim=True)
    if bool((rn < 1e-6).any()):
        raise ValueError("look_at_opencv: a camera looks straight along the up axis (elevation +-90 degrees)")
    right = right / rn
    down = torch.cross(fwd, right, dim=-1)
    c2w = torch.eye(4).repeat(eye.shape[0], 1, 1)
    c2w[:, :3, 0] = right
    c2w[:, :3, 1] = down
    c2w[:, :3, 2] = fwd
    c2w[:, :3, 3] = eye
    return c2w


def orbit_cameras(
    n_frames: int, radius: float, elevation: float, azimuth_start: float = 0.0, turns: float = 1.0
) -> torch.Tensor:
    """A turntable: ``n_frames`` cameras evenly spaced in azimuth at a fixed elevation, looking at the origin.

    Args:
        n_frames: number of frames (>= 1); the last frame stops one step short of a full turn, so a looping GIF
            has no repeated frame.
        radius: camera distance from the origin (world units, > 0).
        elevation: radians above the xy-plane, in (-pi/2, pi/2).
        azimuth_start: radians, azimuth of frame 0 (0 = on the +x axis).
        turns: number of full turns over the path.
    Returns:
        ``[n_frames, 4, 4]`` float32 OpenCV c2w.
    Raises:
        ValueError: for ``n_frames < 1``, ``radius <= 0`` or an elevation outside (-pi/2, pi/2).
    """
    if n_frames < 1:
        raise ValueError(f"orbit_cameras: n_frames must be >= 1, got {n_frames}")
    if not radius > 0:
        raise ValueError(f"orbit_cameras: radius must be > 0, got {radius}")
    if not -math.pi / 2 < elevation < math.pi / 2:
        raise ValueError(f"orbit_cameras: elevation {elevation} rad is outside (-pi/2, pi/2)")
    az = azimuth_start + torch.arange(n_frames, dtype=torch.float32) * (2 * math.pi * turns / n_frames)
    el = torch.full_like(az, float(elevation))
    eye = radius * torch.stack([el.cos() * az.cos(), el.cos() * az.sin(), el.sin()], dim=-1)
    return look_at_opencv(eye)


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
