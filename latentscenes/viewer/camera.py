"""Camera conversions between viser's browser camera and the project's OpenCV cameras (pure functions).

viser's convention (checked in viser 1.1's ``CameraHandle`` and its web client, which rotates the three.js
camera by 180 degrees about x before sending it):

  * ``wxyz`` is the rotation ``R_world_camera`` as a unit quaternion (w, x, y, z) and ``position`` the camera
    centre, so ``P_world = R p_camera + position``;
  * the camera axes are OpenCV's: +x right, +y down, +z forward (the viewing direction); the orbit "up" of
    the client is ``-R[:, 1]``;
  * ``fov`` is the *vertical* field of view in radians; the canvas has ``image_width x image_height`` device
    pixels (``aspect = width / height``) and square pixels;
  * the world is z-up by default, as in this project (:mod:`latentscenes.evaluation.cameras`).

So viser's ``[R | position]`` *is* the project's OpenCV camera-to-world ``c2w`` (no axis flip); only the
intrinsics need building: ``fy/H = 0.5 / tan(fov / 2)`` and, with square pixels, ``fx/W = (fy/H) / aspect``.
A background image (``scene.set_background_image``) is stretched over the whole canvas, so an image of any
pixel size whose normalised ``K`` uses the canvas aspect lines up with the browser's camera; ``n`` images side
by side each cover ``aspect / n`` of it (:func:`panel_intrinsics`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "quat_to_matrix", "matrix_to_quat", "viser_to_opencv", "opencv_to_viser", "panel_intrinsics",
    "fov_from_intrinsics", "panel_size", "nearest_view",
]


def quat_to_matrix(wxyz: Any) -> np.ndarray:
    """Rotation matrix ``[3, 3]`` (float64) of a quaternion ``(w, x, y, z)`` (normalised here).

    Raises:
        ValueError: not 4 finite numbers, or a zero quaternion.
    """
    q = np.asarray(wxyz, dtype=np.float64).reshape(-1)
    if q.shape != (4,) or not np.isfinite(q).all():
        raise ValueError(f"wxyz must be 4 finite numbers, got {wxyz!r}")
    n = float(np.linalg.norm(q))
    if n < 1e-12:
        raise ValueError("wxyz is a zero quaternion")
    w, x, y, z = q / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat(R: Any) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` (float64, ``w >= 0``) of a rotation matrix ``[3, 3]``."""
    m = np.asarray(R, dtype=np.float64).reshape(3, 3)
    t = np.trace(m)
    if t > 0:
        s = 2.0 * math.sqrt(1.0 + t)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def panel_intrinsics(fov_y: float, aspect: float) -> np.ndarray:
    """Normalised intrinsics ``[3, 3]`` (float32) of a view with vertical field of view ``fov_y`` (radians)
    displayed with width / height ``aspect`` (square pixels, centred principal point).

    ``fy/H = 0.5 / tan(fov_y / 2)`` and ``fx/W = (fy/H) / aspect``: the same focal length in pixels along both
    axes. Raises ``ValueError`` for ``fov_y`` outside (0, pi) or ``aspect <= 0``.
    """
    if not 0.0 < float(fov_y) < math.pi:
        raise ValueError(f"vertical field of view must be in (0, pi) radians, got {fov_y}")
    if not float(aspect) > 0.0:
        raise ValueError(f"aspect must be > 0, got {aspect}")
    fy = 0.5 / math.tan(float(fov_y) / 2.0)
    return np.array([[fy / float(aspect), 0.0, 0.5], [0.0, fy, 0.5], [0.0, 0.0, 1.0]], dtype=np.float32)


def viser_to_opencv(wxyz: Any, position: Any, fov_y: float, aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """The OpenCV camera of a viser camera (``client.camera``: ``wxyz``, ``position``, ``fov``, ``aspect``).

    Args:
        wxyz: ``[4]`` quaternion of ``R_world_camera`` (OpenCV axes, see the module docstring).
        position: ``[3]`` camera centre (world units).
        fov_y: vertical field of view in radians, in (0, pi).
        aspect: canvas width / height (> 0).
    Returns:
        ``(c2w, K)``: float32 ``[4, 4]`` OpenCV camera-to-world and ``[3, 3]`` intrinsics normalised by the
        image size, as :meth:`latentscenes.api.Run.render` takes them.
    Raises:
        ValueError: bad quaternion, non-finite position, field of view or aspect out of range.
    """
    p = np.asarray(position, dtype=np.float64).reshape(-1)
    if p.shape != (3,) or not np.isfinite(p).all():
        raise ValueError(f"position must be 3 finite numbers, got {position!r}")
    c2w = np.eye(4, dtype=np.float64)
    c2w[:3, :3] = quat_to_matrix(wxyz)
    c2w[:3, 3] = p
    return c2w.astype(np.float32), panel_intrinsics(fov_y, aspect)


def fov_from_intrinsics(K: Any) -> float:
    """Vertical field of view (radians) of normalised intrinsics ``K [3, 3]``: ``2 atan(0.5 / (fy/H))``."""
    fy = float(np.asarray(K, dtype=np.float64).reshape(3, 3)[1, 1])
    if not fy > 0:
        raise ValueError(f"K[1, 1] (fy/H) must be > 0, got {fy}")
    return 2.0 * math.atan(0.5 / fy)


def opencv_to_viser(c2w: Any, target: Any = (0.0, 0.0, 0.0), up: Any = (0.0, 0.0, 1.0)) -> dict[str, np.ndarray]:
    """What to assign to a viser camera (``position``, then ``look_at``, ``up_direction``) to show the OpenCV
    camera ``c2w [4, 4]``.

    viser's orbit controls keep a look-at point and an up direction rather than a rotation: the look-at point
    returned is the point of the optical axis closest to ``target`` (at least 1e-3 world units in front of the
    camera); the up direction is the world ``up`` (the client turns the image's up towards it, so a camera
    without roll, such as :func:`latentscenes.api.look_at`'s and the dataset's, is reproduced exactly).

    Returns:
        ``{"position": [3], "look_at": [3], "up_direction": [3], "wxyz": [4]}`` (float64; ``wxyz`` is the
        rotation of ``c2w`` itself).
    """
    m = np.asarray(c2w, dtype=np.float64).reshape(4, 4)
    R, t = m[:3, :3], m[:3, 3]
    fwd = R[:, 2] / np.linalg.norm(R[:, 2])
    dist = max(float((np.asarray(target, dtype=np.float64) - t) @ fwd), 1e-3)
    return {"position": t.copy(), "look_at": t + dist * fwd, "up_direction": np.asarray(up, dtype=np.float64),
            "wxyz": matrix_to_quat(R)}


def panel_size(aspect: float, height: int, multiple: int = 1, n_panels: int = 1) -> tuple[int, int]:
    """Pixel size ``(h, w)`` of one of ``n_panels`` images side by side filling a canvas of ``aspect``.

    ``h`` is ``height`` rounded down to a multiple of ``multiple`` (at least ``multiple``); ``w`` is the nearest
    multiple of ``multiple`` to ``h * aspect / n_panels`` (at least ``multiple``). Latent runs need
    ``multiple = 8`` (the autoencoder's downsampling). The panel's pixels need not have the canvas's exact
    aspect: the browser stretches the image, and the intrinsics use the displayed aspect.
    """
    m = max(1, int(multiple))
    h = max(m, int(height) // m * m)
    w = max(m, int(round(h * float(aspect) / max(1, int(n_panels)) / m)) * m)
    return h, w


def nearest_view(c2w: Any, views_c2w: Any) -> int:
    """Index of the camera in ``views_c2w [V, 4, 4]`` closest to ``c2w [4, 4]``.

    Score: distance between the camera centres divided by the query camera's distance from the origin (at
    least 1e-6), plus ``1 - cos`` of the angle between the viewing directions; the smallest wins (ties: the
    first). Raises ``ValueError`` for an empty ``views_c2w``.
    """
    q = np.asarray(c2w, dtype=np.float64).reshape(4, 4)
    v = np.asarray(views_c2w, dtype=np.float64).reshape(-1, 4, 4)
    if v.shape[0] == 0:
        raise ValueError("no views to choose from")
    scale = max(float(np.linalg.norm(q[:3, 3])), 1e-6)
    d = np.linalg.norm(v[:, :3, 3] - q[:3, 3], axis=1) / scale
    fq = q[:3, 2] / np.linalg.norm(q[:3, 2])
    fv = v[:, :3, 2] / np.linalg.norm(v[:, :3, 2], axis=1, keepdims=True)
    return int(np.argmin(d + (1.0 - fv @ fq)))
