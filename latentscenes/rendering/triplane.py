"""Tri-plane feature lookup (paper Sec. 3.1 "Tri-Plane representation"; docs/rendering.md).

A scene is three axis-aligned feature planes ``[3, F, T, T]`` spanning the box [-box/2, box/2]^3. A point is
projected on each plane, each plane is sampled bilinearly (``align_corners=False``: texel centres at
(k + 0.5) / T of the extent, zero outside the box) and the three feature vectors are **summed**.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

PlaneAxes = Literal["xy_xz_yz", "eg3d_legacy"]

# For each plane, which point coordinates become the grid's (horizontal, vertical) axes.
# "eg3d_legacy" reproduces the projection of the authors' code (EG3D issue #30/#67): planes XY, XZ and ZX,
# so the YZ plane is missing and XZ appears twice (transposed). Kept only for parity with their checkpoints.
_AXES: dict[str, tuple[tuple[int, int], ...]] = {
    "xy_xz_yz": ((0, 1), (0, 2), (1, 2)),
    "eg3d_legacy": ((0, 1), (0, 2), (2, 0)),
}


def project_points(points: torch.Tensor, box_size: float = 2.0, plane_axes: PlaneAxes = "xy_xz_yz") -> torch.Tensor:
    """Project world points to the three planes' grid coordinates.

    Args:
        points: ``[B, N, 3]`` world coordinates; the box [-box_size/2, box_size/2]^3 maps to [-1, 1]^3.
        box_size: edge length of the cube the planes cover (world units, > 0).
        plane_axes: ``"xy_xz_yz"`` (correct) or ``"eg3d_legacy"`` (XY, XZ, ZX).
    Returns:
        ``[B, 3, N, 2]`` grid coordinates in [-1, 1] for points inside the box.
    Raises:
        ValueError: for an unknown ``plane_axes`` or a non-positive ``box_size``.
    """
    if plane_axes not in _AXES:
        raise ValueError(f"plane_axes must be one of {list(_AXES)}, got {plane_axes!r}")
    if box_size <= 0:
        raise ValueError(f"box_size must be > 0, got {box_size}")
    p = points * (2.0 / box_size)
    # basic slicing (not fancy indexing): one strided copy per coordinate, cheapest on CPU
    return torch.stack([torch.stack([p[..., a], p[..., b]], dim=-1) for a, b in _AXES[plane_axes]], dim=1)


def sample_triplanes(
    planes: torch.Tensor, points: torch.Tensor, box_size: float = 2.0, plane_axes: PlaneAxes = "xy_xz_yz"
) -> torch.Tensor:
    """Bilinear tri-plane features, summed over the three planes (paper Sec. 3.1).

    Plane ``k`` is indexed as ``planes[:, k, :, row, col]`` where the column follows the first projected axis
    and the row the second (e.g. for XY: column <- x, row <- y), both running from -box/2 to +box/2.

    Args:
        planes: ``[B, 3, F, T, T]`` features (one tri-plane per batch element).
        points: ``[B, N, 3]`` world points (the box is [-box_size/2, box_size/2]^3).
        box_size: cube edge covered by the planes (world units).
        plane_axes: plane layout, see :func:`project_points`.
    Returns:
        ``[B, N, F]`` summed features; a point outside the box on every plane gets exactly 0.
    Raises:
        ValueError: on mismatched shapes, bad ``plane_axes`` or ``box_size``.
    """
    if planes.dim() != 5 or planes.shape[1] != 3:
        raise ValueError(f"planes must be [B,3,F,T,T], got {tuple(planes.shape)}")
    if points.dim() != 3 or points.shape[0] != planes.shape[0] or points.shape[-1] != 3:
        raise ValueError(f"points must be [B,N,3] with B={planes.shape[0]}, got {tuple(points.shape)}")
    B, _, Fd, H, W = planes.shape
    N = points.shape[1]
    grid = project_points(points, box_size, plane_axes).to(planes.dtype)  # [B,3,N,2]
    # One grid_sample call over the B*3 planes (measured on a 2-core CPU: a fused embedding_bag sampler was 30 %
    # slower, splitting the batch gained <= 6 %; plain grid_sample is also the GPU code).
    feats = F.grid_sample(
        planes.reshape(B * 3, Fd, H, W),
        grid.reshape(B * 3, 1, N, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )  # [B*3, F, 1, N]
    return feats.reshape(B, 3, Fd, N).sum(dim=1).transpose(1, 2)
