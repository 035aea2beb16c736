"""rendering/cameras.py, the one home of the camera convention: every helper gives valid OpenCV c2w matrices
(orthonormal right-handed rotation, +z looking at the target, image up towards world +z)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentscenes.rendering.cameras import (
    look_at_c2w,
    look_at_opencv,
    orbit_cameras,
    random_orbit_cameras,
    sample_band_cameras,
)


def assert_valid_opencv_c2w(c2w, target=(0.0, 0.0, 0.0), atol: float = 1e-5) -> None:
    """Orthonormal rotation with det +1, last row (0, 0, 0, 1), z axis towards ``target``, x horizontal, y down."""
    c2w = torch.as_tensor(np.asarray(c2w), dtype=torch.float64).reshape(-1, 4, 4)
    n = c2w.shape[0]
    R, t = c2w[:, :3, :3], c2w[:, :3, 3]
    assert torch.allclose(c2w[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64).expand(n, 4))
    assert torch.allclose(R.transpose(1, 2) @ R, torch.eye(3, dtype=torch.float64).expand(n, 3, 3), atol=atol)
    assert torch.allclose(torch.linalg.det(R), torch.ones(n, dtype=torch.float64), atol=atol)
    to_target = torch.as_tensor(target, dtype=torch.float64) - t
    assert torch.allclose(R[:, :, 2], to_target / to_target.norm(dim=-1, keepdim=True), atol=atol)
    assert torch.allclose(R[:, 2, 0], torch.zeros(n, dtype=torch.float64), atol=atol)  # x (right) is horizontal
    assert (R[:, 2, 1] <= atol).all()  # y (down) never points up: the image is upright


def test_look_at_is_a_valid_opencv_camera_looking_at_its_target():
    rng = np.random.default_rng(0)
    eyes = rng.normal(size=(64, 3)) * 2
    target = np.array([0.1, -0.2, 0.3])
    c2w = look_at_c2w(eyes, target)
    assert c2w.shape == (64, 4, 4) and c2w.dtype == np.float64
    assert_valid_opencv_c2w(c2w, target)
    assert np.array_equal(c2w[:, :3, 3], eyes)
    # the target projects to the image centre: camera coordinates (0, 0, distance)
    pc = np.einsum("nji,nj->ni", c2w[:, :3, :3], target - eyes)
    assert np.allclose(pc[:, :2], 0, atol=1e-12) and (pc[:, 2] > 0).all()
    # one camera = one matrix; batches give the same bits as single cameras
    assert look_at_c2w(eyes[0], target).shape == (4, 4)
    assert np.array_equal(look_at_c2w(eyes[3], target), c2w[3])


def test_look_at_opencv_is_the_same_matrix_in_float32():
    eyes = torch.tensor([[1.3, 0.0, 0.4], [0.0, -2.0, 1.0]])
    c2w = look_at_opencv(eyes)
    assert c2w.dtype == torch.float32 and c2w.shape == (2, 4, 4)
    assert torch.equal(c2w, torch.from_numpy(look_at_c2w(eyes.double().numpy())).float())
    assert look_at_opencv(eyes[0]).shape == (4, 4)
    assert_valid_opencv_c2w(c2w)


def test_degenerate_cameras_are_refused_or_take_the_fallback_up():
    with pytest.raises(ValueError, match="sits on its target"):
        look_at_opencv(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="straight along the up axis"):
        look_at_c2w([0.0, 0.0, 2.0])
    top = look_at_c2w([0.0, 0.0, 2.0], fallback_up=(0.0, 1.0, 0.0))
    R = top[:3, :3]
    assert np.allclose(R.T @ R, np.eye(3)) and np.allclose(R[:, 2], [0, 0, -1])


@pytest.mark.parametrize("elevation", [math.radians(30), -0.3, 1.2])
def test_orbit_is_a_turntable_of_valid_cameras(elevation):
    c2w = orbit_cameras(12, radius=2.5, elevation=elevation, azimuth_start=0.0)
    assert c2w.shape == (12, 4, 4) and c2w.dtype == torch.float32
    assert_valid_opencv_c2w(c2w)
    t = c2w[:, :3, 3]
    assert torch.allclose(t.norm(dim=-1), torch.full((12,), 2.5), atol=1e-5)
    assert torch.allclose(t[:, 2], torch.full((12,), 2.5 * math.sin(elevation)), atol=1e-5)
    assert t[0, 0] > 0 and abs(float(t[0, 1])) < 1e-5 and t[1, 1] > 0  # starts on +x, turns towards +y


def test_random_orbit_and_band_sampler_give_valid_cameras():
    c2w = random_orbit_cameras(10, radius=1.3, elevation_deg=20.0, seed=3)
    assert c2w.shape == (10, 4, 4) and c2w.dtype == torch.float32
    assert_valid_opencv_c2w(c2w)
    assert torch.allclose(c2w[:, :3, 3].norm(dim=-1), torch.full((10,), 1.3), atol=1e-5)
    assert torch.equal(c2w, random_orbit_cameras(10, radius=1.3, elevation_deg=20.0, seed=3))  # reproducible
    band = sample_band_cameras(np.random.default_rng(1), 40, 2.3, -15.0, 60.0, distance_jitter=0.05)
    assert band.shape == (40, 4, 4) and band.dtype == np.float64
    assert_valid_opencv_c2w(band)
    el = np.degrees(np.arcsin(band[:, 2, 3] / np.linalg.norm(band[:, :3, 3], axis=-1)))
    assert (el >= -15.0 - 1e-9).all() and (el <= 60.0 + 1e-9).all()
    with pytest.raises(ValueError, match="elevation_min"):
        sample_band_cameras(np.random.default_rng(1), 4, 2.3, 60.0, -15.0)
