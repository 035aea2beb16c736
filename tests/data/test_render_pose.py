"""Pose convention: mesh vertices projected with K and the OpenCV c2w fall on the rendered mask (<= 2 px).

Uses a trimesh primitive (no Debian package needed) made asymmetric so that a flipped axis would fail.
"""

from __future__ import annotations

import numpy as np
import trimesh

from latentscenes.data.render import MeshPart, RenderSettings, TinyRenderer, intrinsics_from_fov
from latentscenes.rendering.cameras import sample_band_cameras


def _asymmetric_mesh() -> trimesh.Trimesh:
    body = trimesh.creation.box(extents=(1.2, 0.4, 0.3))
    fin = trimesh.creation.box(extents=(0.25, 0.15, 0.5))
    fin.apply_translation((-0.45, 0.1, 0.35))
    wing = trimesh.creation.box(extents=(0.3, 0.9, 0.05))
    wing.apply_translation((0.2, 0.45, 0.0))  # only on the +y side
    return trimesh.util.concatenate([body, fin, wing])


def _project(v: np.ndarray, c2w: np.ndarray, K: np.ndarray, size: int) -> np.ndarray:
    w2c = np.linalg.inv(c2w)
    cam = v @ w2c[:3, :3].T + w2c[:3, 3]
    assert (cam[:, 2] > 0).all()
    uv = (cam @ K.T)[:, :2] / cam[:, 2:3]  # normalised image coords in [0, 1]
    return uv * size - 0.5  # continuous pixel coords (col, row), pixel centres at integers


def test_projected_vertices_fall_on_rendered_mask():
    mesh = _asymmetric_mesh()
    size, fov = 64, 50.0
    s = RenderSettings(resolution=size, supersample=2, fov_deg=fov, near=1.0, far=3.6)
    K = intrinsics_from_fov(fov).astype(np.float64)
    cams = sample_band_cameras(np.random.default_rng(3), 6, 2.3, -30.0, 70.0)
    part = MeshPart(np.asarray(mesh.vertices), np.asarray(mesh.faces), color=(0.8, 0.3, 0.2, 1.0))
    with TinyRenderer(s) as r:
        r.set_mesh([part])
        for c2w in cams:
            rgb, alpha = r.render(c2w)
            assert rgb.shape == (size, size, 3) and alpha.shape == (size, size)
            assert rgb[0, 0].min() > 0.99  # white background
            mask = alpha > 0.5
            assert mask.sum() > 50
            px = _project(np.asarray(mesh.vertices), c2w, K, size)
            rows, cols = np.nonzero(mask)
            pts = np.stack([cols, rows], 1).astype(np.float64)
            # every vertex within 2 px of a mask pixel
            d = np.sqrt(((px[:, None, :] - pts[None]) ** 2).sum(-1)).min(1)
            assert d.max() <= 2.0, f"vertex {d.argmax()} is {d.max():.2f} px off the mask"
            # and the silhouette extent agrees (catches flips and shifts of a whole axis)
            lo_mask, hi_mask = pts.min(0) - 0.5, pts.max(0) + 0.5
            assert np.abs(px.min(0) - lo_mask).max() <= 2.0
            assert np.abs(px.max(0) - hi_mask).max() <= 2.0


def test_light_is_fixed_in_world_space():
    # one plate facing +x, seen head-on and from 60 degrees aside: with a world-space light its brightness
    # is the same in both views; a light attached to the camera would make the oblique view darker
    from latentscenes.rendering.cameras import look_at_c2w

    plate = trimesh.creation.box(extents=(0.02, 1.0, 1.0))
    plate.apply_translation((0.3, 0.0, 0.0))
    s = RenderSettings(resolution=32, supersample=1, fov_deg=50.0, near=1.0, far=3.6, specular=0.0)
    with TinyRenderer(s) as r:
        r.set_mesh([MeshPart(np.asarray(plate.vertices), np.asarray(plate.faces), color=(0.7, 0.7, 0.7, 1.0))])
        vals = []
        for az in (0.0, np.radians(60.0)):
            eye = 2.3 * np.array([np.cos(0.1) * np.cos(az), np.cos(0.1) * np.sin(az), np.sin(0.1)])
            rgb, a = r.render(look_at_c2w(eye))
            vals.append(float(np.median(rgb[a > 0.99].mean(-1))))
        assert abs(vals[0] - vals[1]) < 0.02, vals
