"""The one home of the camera convention: look-at matrices and camera paths (docs/ARCHITECTURE.md, "Conventions").

Every camera is an OpenCV camera-to-world matrix ``[..., 4, 4]``:
  * columns 0..2 are the camera axes in world coordinates: x right, y down, z forward (the viewing direction);
    column 3 is the camera centre;
  * the world is z-up, so a look-at camera's image "up" (-y in the camera) is as close to +z as possible;
  * on orbits, azimuth 0 is the +x axis and azimuths grow counter-clockwise seen from above (towards +y);
    elevation is the angle above the xy-plane.

The look-at is computed once, in float64 with NumPy (:func:`look_at_c2w`, the data builder's precision, whose
poses are written to disk); :func:`look_at_opencv` is the same matrix as a float32 torch tensor for rendering.

Paths: :func:`orbit_cameras` (a turntable: evenly spaced azimuths at one elevation), :func:`random_orbit_cameras`
(jittered azimuths and elevations, the synthetic test scenes'), :func:`sample_band_cameras` (uniform in area on a
spherical band, the FlightGear builder's).
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: World up (+z).
WORLD_UP = (0.0, 0.0, 1.0)


def _norm(v: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis of ``[..., 3]`` (the sum in a fixed order: the same bits for any batch)."""
    return np.sqrt(v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1] + v[..., 2] * v[..., 2])


def look_at_c2w(eye, target=None, up=None, *, fallback_up=None) -> np.ndarray:
    """OpenCV camera-to-world matrices of cameras at ``eye`` looking at ``target``, image-up as close to ``up``.

    Args:
        eye: ``[..., 3]`` camera centres (world units).
        target: ``[3]`` or ``[..., 3]`` points looked at; the origin by default.
        up: ``[3]`` world up; ``+z`` by default.
        fallback_up: up vector for cameras that look straight along ``up`` (e.g. ``(0, 1, 0)``); None = refuse them.
    Returns:
        ``[..., 4, 4]`` float64 (NumPy).
    Raises:
        ValueError: a camera sits on its target, or looks straight along ``up`` without a ``fallback_up``
            (the frame is undefined).
    """
    eye = np.asarray(eye, dtype=np.float64)
    target = np.zeros(3) if target is None else np.asarray(target, dtype=np.float64)
    up = np.asarray(WORLD_UP if up is None else up, dtype=np.float64)
    fwd = np.broadcast_to(target, eye.shape) - eye
    dist = _norm(fwd)
    if bool((dist < 1e-12).any()):
        raise ValueError("look-at: a camera sits on its target (eye == target)")
    fwd = fwd / dist[..., None]
    right = np.cross(fwd, np.broadcast_to(up, fwd.shape))
    rn = _norm(right)
    flat = rn < 1e-6
    if bool(flat.any()):
        if fallback_up is None:
            raise ValueError("look-at: a camera looks straight along the up axis (elevation +-90 degrees)")
        other = np.cross(fwd, np.broadcast_to(np.asarray(fallback_up, dtype=np.float64), fwd.shape))
        right = np.where(flat[..., None], other, right)
        rn = _norm(right)
    right = right / rn[..., None]
    down = np.cross(fwd, right)
    c2w = np.zeros(eye.shape[:-1] + (4, 4))
    c2w[..., :3, 0] = right
    c2w[..., :3, 1] = down
    c2w[..., :3, 2] = fwd
    c2w[..., :3, 3] = eye
    c2w[..., 3, 3] = 1.0
    return c2w


def look_at_opencv(eye, target=None, up=None) -> torch.Tensor:
    """:func:`look_at_c2w` as a float32 torch tensor ``[..., 4, 4]`` on ``eye``'s device (cameras for rendering).

    Raises:
        ValueError: a camera sits on its target or looks straight along ``up``.
    """
    dev = eye.device if isinstance(eye, torch.Tensor) else torch.device("cpu")

    def arr(x):
        return None if x is None else (x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else x)

    return torch.from_numpy(look_at_c2w(arr(eye), arr(target), arr(up))).to(device=dev, dtype=torch.float32)


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


def random_orbit_cameras(n: int, radius: float = 1.3, elevation_deg: float = 20.0, seed: int = 0) -> torch.Tensor:
    """``[n, 4, 4]`` float32 cameras on a sphere around the origin looking at it: camera ``i`` at a random azimuth in
    the i-th of ``n`` equal sectors and a random elevation in [0.5, 1.5] x ``elevation_deg`` (reproducible from
    ``seed``). The synthetic test scenes' cameras (:mod:`latentscenes.scenes.synthetic`)."""
    g = torch.Generator().manual_seed(seed)
    eyes = []
    for i in range(n):
        az = 2 * math.pi * (i + torch.rand((), generator=g).item()) / n
        el = math.radians(elevation_deg * (0.5 + torch.rand((), generator=g).item()))
        eyes.append(torch.tensor([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)]) * radius)
    return look_at_opencv(torch.stack(eyes))


def sample_band_cameras(
    rng: np.random.Generator,
    n: int,
    distance: float,
    elevation_min_deg: float,
    elevation_max_deg: float,
    distance_jitter: float = 0.0,
) -> np.ndarray:
    """Sample ``n`` OpenCV c2w matrices ``[n, 4, 4]`` (float64) looking at the origin, world z-up.

    Azimuth is uniform in [0, 2pi); elevation is drawn so that camera positions are uniform in *area* on the
    spherical band between the two elevations (uniform in sin(elevation)); the distance is
    ``distance * (1 + U(-jitter, jitter))``. A camera straight above or below the origin takes +y as its up.

    Raises:
        ValueError: unless -90 <= elevation_min_deg < elevation_max_deg <= 90.
    """
    if not (-90.0 <= elevation_min_deg < elevation_max_deg <= 90.0):
        raise ValueError(f"need -90 <= elevation_min ({elevation_min_deg}) < elevation_max ({elevation_max_deg}) <= 90")
    az = rng.uniform(0.0, 2.0 * math.pi, size=n)
    s = rng.uniform(math.sin(math.radians(elevation_min_deg)), math.sin(math.radians(elevation_max_deg)), size=n)
    el = np.arcsin(s)
    d = distance * (1.0 + rng.uniform(-distance_jitter, distance_jitter, size=n)) if distance_jitter > 0 else np.full(n, distance)
    eyes = np.empty((n, 3))
    for i in range(n):
        eyes[i] = d[i] * np.array([math.cos(el[i]) * math.cos(az[i]), math.cos(el[i]) * math.sin(az[i]), math.sin(el[i])])
    return look_at_c2w(eyes, fallback_up=(0.0, 1.0, 0.0))
