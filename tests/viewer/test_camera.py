"""viser camera <-> OpenCV camera (latentscenes/viewer/camera.py): the convention is checked against viser's own
camera math and by projecting known points, not only by round trips."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

import latentscenes as ls
from latentscenes.viewer import camera as vcam


def _project(c2w: np.ndarray, K: np.ndarray, p) -> tuple[float, float]:
    """Normalised image coordinates (u right, v down, both in [0, 1] inside the image) of world point p."""
    w2c = np.linalg.inv(c2w.astype(np.float64))
    x = w2c[:3, :3] @ np.asarray(p, np.float64) + w2c[:3, 3]
    assert x[2] > 0, "point behind the camera"
    uv = K.astype(np.float64) @ (x / x[2])
    return float(uv[0]), float(uv[1])


def _viser_camera(position, look_at, up=(0.0, 0.0, 1.0)):
    """viser's server-side CameraHandle (no browser) moved like a client's orbit camera: its wxyz comes from
    viser's own look-at math."""
    from viser._viser import CameraHandle

    class _Conn:
        def queue_message(self, _m):
            pass

    class _Client:
        _websock_connection = _Conn()

    cam = CameraHandle(_Client())
    cam._state.update_timestamp = time.time()
    cam._state.up_direction = np.asarray(up, np.float64)
    cam._state.position = np.array([0.0, -3.0, 0.0])
    cam._state.look_at = np.zeros(3)
    cam.position = position
    cam.look_at = look_at
    return cam


def test_quaternion_matches_viser_transforms():
    from viser import transforms as tf

    rng = np.random.default_rng(0)
    for q in rng.normal(size=(20, 4)):
        q = q / np.linalg.norm(q)
        np.testing.assert_allclose(vcam.quat_to_matrix(q), tf.SO3(q).as_matrix(), atol=1e-12)
        back = vcam.matrix_to_quat(vcam.quat_to_matrix(q))
        np.testing.assert_allclose(back, q if q[0] >= 0 else -q, atol=1e-9)
    with pytest.raises(ValueError, match="zero quaternion"):
        vcam.quat_to_matrix([0, 0, 0, 0])


@pytest.mark.parametrize("eye,target", [([1.5, 0.3, 0.5], [0, 0, 0]), ([-0.4, 2.0, 1.1], [0.1, -0.2, 0.05]),
                                        ([0.2, -1.7, -0.6], [0, 0, 0])])
def test_a_viser_orbit_camera_is_the_opencv_look_at_camera(eye, target):
    """viser computes wxyz from position / look_at / up exactly as its browser client does; converted, it must be
    ls.look_at's OpenCV camera (x right, y down, z towards the target), not a flipped one."""
    cam = _viser_camera(eye, target)
    c2w, K = vcam.viser_to_opencv(cam.wxyz, cam.position, math.radians(50), 1.6)
    np.testing.assert_allclose(c2w, ls.look_at(eye, target), atol=1e-5)
    assert c2w.dtype == np.float32 and K.dtype == np.float32


def test_intrinsics_put_points_where_the_browser_shows_them():
    """Vertical fov and canvas aspect: the target projects to the centre, a point half a vertical fov above the axis
    to the top edge, half the horizontal fov to the right edge; 'up' in the world is up in the image."""
    fov, aspect = math.radians(40.0), 1.8
    cam = _viser_camera([2.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    c2w, K = vcam.viser_to_opencv(cam.wxyz, cam.position, fov, aspect)
    u, v = _project(c2w, K, [0, 0, 0])
    assert (u, v) == pytest.approx((0.5, 0.5), abs=1e-6)
    top = 2.0 * math.tan(fov / 2)  # at distance 2 the half-height of the view
    assert _project(c2w, K, [0, 0, top]) == pytest.approx((0.5, 0.0), abs=1e-6)  # world +z: image top
    half_w = math.atan(aspect * math.tan(fov / 2))
    # the camera looks along -x from +x: its right is world +y
    assert _project(c2w, K, [0, 2.0 * math.tan(half_w), 0]) == pytest.approx((1.0, 0.5), abs=1e-6)
    np.testing.assert_allclose(K, [[0.5 / math.tan(fov / 2) / aspect, 0, 0.5], [0, 0.5 / math.tan(fov / 2), 0.5],
                                   [0, 0, 1]], rtol=1e-6)
    # the project's own intrinsics() agree for a square view (horizontal fov = vertical fov)
    np.testing.assert_allclose(vcam.panel_intrinsics(fov, 1.0), ls.intrinsics(40.0), rtol=1e-6)
    assert vcam.fov_from_intrinsics(K) == pytest.approx(fov)


def test_opencv_to_viser_round_trip_through_viser():
    c2w = ls.look_at([1.1, -0.9, 0.7])
    target = vcam.opencv_to_viser(c2w)
    np.testing.assert_allclose(target["look_at"], 0.0, atol=1e-6)  # the axis passes through the origin
    cam = _viser_camera(target["position"], target["look_at"], target["up_direction"])
    back, _ = vcam.viser_to_opencv(cam.wxyz, cam.position, 0.8, 1.0)
    np.testing.assert_allclose(back, c2w, atol=1e-5)
    np.testing.assert_allclose(vcam.quat_to_matrix(target["wxyz"]), c2w[:3, :3], atol=1e-6)
    # a camera looking past the origin: the look-at point is the axis point closest to it, in front of the camera
    off = ls.look_at([2.0, 0.0, 0.0], target=[0.0, 1.0, 0.0])
    la = vcam.opencv_to_viser(off)["look_at"]
    assert np.dot(la - off[:3, 3], off[:3, 2]) > 0 and abs(np.cross(la - off[:3, 3], off[:3, 2])).max() < 1e-5


def test_bad_cameras_are_refused():
    with pytest.raises(ValueError, match="field of view"):
        vcam.viser_to_opencv([1, 0, 0, 0], [0, 0, 1], 0.0, 1.0)
    with pytest.raises(ValueError, match="aspect"):
        vcam.panel_intrinsics(0.8, 0.0)
    with pytest.raises(ValueError, match="position"):
        vcam.viser_to_opencv([1, 0, 0, 0], [0, float("nan"), 1], 0.8, 1.0)


def test_panel_size_keeps_multiples_and_aspect():
    assert vcam.panel_size(1.5, 64, 8) == (64, 96)
    assert vcam.panel_size(1.83, 30, 8) == (24, 40)  # 24 * 1.83 = 43.9 -> 40 (nearest multiple of 8)
    assert vcam.panel_size(1.83, 64, 8, n_panels=2) == (64, 56)
    assert vcam.panel_size(0.1, 8, 8) == (8, 8)  # never below one multiple
    assert vcam.panel_size(1.7, 33, 1) == (33, 56)


def test_nearest_view_prefers_position_and_direction():
    views = np.stack([ls.look_at([2, 0, 0.5]), ls.look_at([0, 2, 0.5]), ls.look_at([-2, 0, 0.5])])
    assert vcam.nearest_view(ls.look_at([1.9, 0.3, 0.6]), views) == 0
    assert vcam.nearest_view(ls.look_at([-0.3, 2.2, 0.2]), views) == 1
    # two views as far from the query camera, one looking the other way: the viewing direction decides
    pair = np.stack([ls.look_at([2, 0.1, 0.5], target=[4, 0.1, 0.5]), ls.look_at([2, -0.1, 0.5])])
    assert vcam.nearest_view(ls.look_at([2, 0, 0.5]), pair) == 1
    assert vcam.nearest_view(ls.look_at([2, 0, 0.5], target=[4, 0, 0.5]), pair) == 0
    with pytest.raises(ValueError):
        vcam.nearest_view(views[0], np.zeros((0, 4, 4)))
