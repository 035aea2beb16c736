"""Ray bounds (near/far) and the scene box from a dataset's cameras, for data that does not state them.

The renderer samples each ray between ``near`` and ``far``; with cameras looking at the origin from distance d,
an object of radius r is seen for depths in [d - r, d + r]. A dataset's ``manifest.json`` may record near/far
and the box (``render``); a user's own SRN / transforms.json folder usually does not, and the defaults (0.5/2.1,
ShapeNet cars at distance 1.3) then silently cut objects seen from farther away. So without recorded values:

* the object radius r is the largest of the scene box's half side (the project's convention: scenes live in
  [-box/2, box/2]^3) and 1.1 x the object's extent seen in the images (foreground pixels: the mask, else
  pixels that are not white, measured from the origin's projection, at the origin's depth);
* the box grows to hold that extent (never shrinks); near = max(d_min - r, 0.05 d_min), far = d_max + r.

Bounds that cannot see the box's centre from some camera (its distance outside (near, far)) are refused.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from latentscenes.config import ConfigError
from latentscenes.data.types import SceneViews

#: Extent measured in the images is scaled by this (silhouettes miss thin or white parts at their rim).
EXTENT_MARGIN = 1.1


def camera_distances(scenes: Sequence[SceneViews]) -> torch.Tensor:
    """Distances of every view's camera from the origin (all scenes, all views), float64."""
    return torch.cat([s.c2w[:, :3, 3].double().norm(dim=-1) for s in scenes])


def object_extent(scenes: Sequence[SceneViews]) -> float | None:
    """Largest distance from the origin, perpendicular to the view, of a foreground pixel at the origin's depth
    (over all views); None when no view shows any foreground."""
    best = None
    for s in scenes:
        fg = (s.masks[:, 0] > 0.5) if s.masks is not None else (s.images.min(dim=1).values < 0.98)
        H, W = s.resolution
        u = (torch.arange(W, dtype=torch.float64) + 0.5) / W
        v = (torch.arange(H, dtype=torch.float64) + 0.5) / H
        for k in range(s.num_views):
            if not bool(fg[k].any()):
                continue
            c2w, K = s.c2w[k].double(), s.K[k].double()
            origin = -c2w[:3, :3].T @ c2w[:3, 3]  # the world origin in camera coordinates
            if origin[2] <= 0:
                continue  # the camera looks away from the origin: no depth to measure at
            x = (u - K[0, 2]) / K[0, 0] - origin[0] / origin[2]
            y = (v - K[1, 2]) / K[1, 1] - origin[1] / origin[2]
            off = torch.sqrt(y[:, None] ** 2 + x[None, :] ** 2)[fg[k]].max() * origin[2]
            best = float(off) if best is None else max(best, float(off))
    return best


#: ``derive_bounds(extent=MEASURE)``: measure the object extent in the scenes' images.
MEASURE = "measure"


def derive_bounds(scenes: Sequence[SceneViews], box_size: float, extent: float | None | str = MEASURE) -> dict[str, float]:
    """``{"near", "far", "box_size", "d_min", "d_max", "radius"}`` from the cameras and the object extent
    (module docstring); near is rounded down and far up to 1e-3.

    ``extent``: :data:`MEASURE` (measure it in ``scenes``' images), or the value :func:`object_extent` gave when
    the scenes were loaded one at a time (a float, or None for no foreground); ``scenes`` may then hold cameras
    only."""
    d = camera_distances(scenes)
    d_min, d_max = float(d.min()), float(d.max())
    ext = object_extent(scenes) if isinstance(extent, str) and extent == MEASURE else extent
    r = box_size / 2.0 if ext is None else max(box_size / 2.0, EXTENT_MARGIN * ext)
    near = max(d_min - r, 0.05 * d_min)
    return {"near": math.floor(near * 1000) / 1000, "far": math.ceil((d_max + r) * 1000) / 1000,
            "box_size": math.ceil(2 * r * 1000) / 1000 if 2 * r > box_size else box_size,
            "d_min": d_min, "d_max": d_max, "radius": r}


def describe(b: dict[str, float]) -> str:
    """One line saying which bounds were derived and from what."""
    return (f"ray bounds from the cameras (the dataset states none): near {b['near']:.3f}, far {b['far']:.3f}, "
            f"box {b['box_size']:.3f} (camera distances {b['d_min']:.3f}..{b['d_max']:.3f}, object radius "
            f"{b['radius']:.3f}); a manifest.json \"render\" section or --set render.near/far overrides them")


def check_bounds(scenes: Sequence[SceneViews], near: float, far: float, where: str) -> None:
    """Refuse ray bounds that cannot see the scene box's centre from some camera.

    Raises:
        ConfigError: naming ``where``, the bounds, the offending scene and camera distance, and the fix.
    """
    for s in scenes:
        d = s.c2w[:, :3, 3].double().norm(dim=-1)
        bad = ((d <= near) | (d >= far)).nonzero()
        if len(bad):
            k = int(bad[0])
            view = s.view_names[k] if s.view_names else str(k)
            raise ConfigError(
                f"{where}: render near/far {near:g}/{far:g} cannot see the scene box from camera {view!r} of scene "
                f"{s.scene_id!r} at distance {float(d[k]):.3f} (the rays end before, or start after, the box "
                f"centre); set render.near/far to bracket the camera distances "
                f"{float(camera_distances(scenes).min()):.3f}..{float(camera_distances(scenes).max()):.3f}")
