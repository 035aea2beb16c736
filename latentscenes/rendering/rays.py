"""Camera rays from OpenCV camera-to-world matrices and size-normalised intrinsics (docs/rendering.md).

Conventions (docs/ARCHITECTURE.md): c2w is OpenCV (x right, y down, z forward); K is normalised by the image
size (fx/W, fy/H, cx/W, cy/H), so the same camera yields the rays of a 128x128 RGB image and of its 16x16
latent: pixel (row i, col j) of an H x W image has its centre at u = (j + 0.5) / W, v = (i + 0.5) / H.
"""

from __future__ import annotations

import torch


def pixel_uv(height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Normalised centres of every pixel, row-major.

    Args:
        height, width: image size in pixels (>= 1).
    Returns:
        ``[H*W, 2]`` float32 (u, v) in (0, 1); entry ``i*W + j`` is pixel (row i, col j).
    Raises:
        ValueError: if a size is < 1.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be >= 1, got {height}x{width}")
    v = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    u = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu.reshape(-1), vv.reshape(-1)], dim=-1)


def pixel_indices_to_uv(rows: torch.Tensor, cols: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Integer pixel indices -> normalised pixel-centre coordinates.

    Args:
        rows, cols: integer tensors of the same shape ``[...]`` (row i in [0, H), col j in [0, W)).
    Returns:
        ``[..., 2]`` float32 (u, v) = ((j + 0.5) / W, (i + 0.5) / H).
    """
    u = (cols.to(torch.float32) + 0.5) / width
    v = (rows.to(torch.float32) + 0.5) / height
    return torch.stack([u, v], dim=-1)


def generate_rays_uv(c2w: torch.Tensor, K: torch.Tensor, uv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through given normalised image points (random ray batches).

    The camera-space direction is the pinhole back-projection of (u, v) with skew s = K[0, 1]:
    y_c = (v - cy) / fy, x_c = (u - cx - s * y_c) / fx, d_c = (x_c, y_c, 1); the world direction is
    R d_c / |R d_c| with R = c2w[:3, :3], and the origin is the camera centre c2w[:3, 3].

    Args:
        c2w: ``[B, 4, 4]`` OpenCV camera-to-world (world units, e.g. the scene box is [-1, 1]^3).
        K: ``[B, 3, 3]`` intrinsics normalised by image size.
        uv: ``[B, N, 2]`` or ``[N, 2]`` (shared by all cameras) image points, (0, 0) = top-left corner of
            the image, (1, 1) = bottom-right corner.
    Returns:
        ``(origins [B, N, 3], dirs [B, N, 3])``; ``dirs`` have unit length.
    Raises:
        ValueError: on mismatched shapes.
    """
    if c2w.dim() != 3 or c2w.shape[-2:] != (4, 4):
        raise ValueError(f"c2w must be [B,4,4], got {tuple(c2w.shape)}")
    if K.shape != (c2w.shape[0], 3, 3):
        raise ValueError(f"K must be [B,3,3] with B={c2w.shape[0]}, got {tuple(K.shape)}")
    B = c2w.shape[0]
    if uv.dim() == 2:
        uv = uv.unsqueeze(0).expand(B, -1, -1)
    if uv.dim() != 3 or uv.shape[0] != B or uv.shape[-1] != 2:
        raise ValueError(f"uv must be [B,N,2] or [N,2], got {tuple(uv.shape)}")
    c2w = c2w.to(torch.float32)
    K = K.to(c2w)
    uv = uv.to(c2w)
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]
    cx, cy, skew = K[:, 0, 2, None], K[:, 1, 2, None], K[:, 0, 1, None]
    y_c = (uv[..., 1] - cy) / fy
    x_c = (uv[..., 0] - cx - skew * y_c) / fx
    d_cam = torch.stack([x_c, y_c, torch.ones_like(x_c)], dim=-1)  # [B,N,3]
    dirs = d_cam @ c2w[:, :3, :3].transpose(1, 2)  # R d for each row vector
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origins = c2w[:, None, :3, 3].expand_as(dirs)
    return origins, dirs


def generate_rays(c2w: torch.Tensor, K: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through every pixel centre of an ``height x width`` image (u = (j + 0.5) / W, v = (i + 0.5) / H).

    Because K is normalised, the same (c2w, K) gives the rays of an RGB image and of its 8x smaller latent;
    latent pixel (i, j) passes through the centre of the RGB block (8i..8i+7, 8j..8j+7).

    Args:
        c2w: ``[B, 4, 4]`` OpenCV camera-to-world.
        K: ``[B, 3, 3]`` normalised intrinsics.
        height, width: output image size in pixels.
    Returns:
        ``(origins [B, H*W, 3], dirs [B, H*W, 3])``, row-major pixels, unit directions.
    Raises:
        ValueError: on bad shapes or sizes.
    """
    uv = pixel_uv(height, width, device=c2w.device)
    return generate_rays_uv(c2w, K, uv)


def crop_intrinsics(K: torch.Tensor, top: int, left: int, height: int, width: int, full_hw: tuple[int, int]) -> torch.Tensor:
    """The normalised intrinsics of a ``height x width`` window of an image, cut at pixel ``(top, left)``.

    Because K is normalised by the image size, a window is a camera of its own: in pixels its focal lengths are
    the image's and its principal point moves by ``(-left, -top)``; normalised by the window's size that is
    ``fx' = fx W / width``, ``cx' = (cx W - left) / width`` (and the same along y). Rendering ``height x width``
    pixels with it gives the window's rays exactly: pixel ``(i, j)`` of the window is pixel ``(top + i, left + j)``
    of the image. Used by ``StageConfig.dec_crop`` (L_Dec on a window of the latent grid; ours, not the paper's: the
    pinhole model of this module, docs/rendering.md).

    Args:
        K: ``[B, 3, 3]`` intrinsics normalised by the image size (fx/W, fy/H, cx/W, cy/H; skew s/W).
        top, left: the window's first row and column, in pixels of the image (integers >= 0).
        height, width: the window's size in pixels (>= 1), inside the image: ``top + height <= H``.
        full_hw: (H, W), the image's size in pixels (any grid the camera serves: RGB pixels or latent pixels).
    Returns:
        ``[B, 3, 3]``, same dtype and device; the last row unchanged.
    Raises:
        ValueError: ``K`` not ``[B, 3, 3]``, or the window not inside the image.
    """
    if K.dim() != 3 or K.shape[-2:] != (3, 3):
        raise ValueError(f"K must be [B,3,3], got {tuple(K.shape)}")
    H, W = full_hw
    if not (0 <= top and 0 <= left and height >= 1 and width >= 1 and top + height <= H and left + width <= W):
        raise ValueError(f"window {height}x{width} at (row {top}, col {left}) is not inside a {H}x{W} image")
    Kc = K.clone()
    Kc[:, 0, :2] = K[:, 0, :2] * (W / width)  # fx and the skew, per window pixel
    Kc[:, 1, :2] = K[:, 1, :2] * (H / height)
    Kc[:, 0, 2] = (K[:, 0, 2] * W - left) / width
    Kc[:, 1, 2] = (K[:, 1, 2] * H - top) / height
    return Kc
