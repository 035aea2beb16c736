"""Turning tensors into viewable images: RGB, latent channels, depth maps, labelled grids, GIFs and MP4s.

All functions return or write ``uint8`` RGB arrays ``[H, W, 3]`` (numpy, row-major, top row first).
Files are written atomically (a crash never leaves a half-written PNG/GIF under the final name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from latentscenes.utils.io import atomic_write


def rgb_to_uint8(img: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """``[3, H, W]`` image in ``value_range`` -> ``[H, W, 3]`` uint8 (values outside the range are clamped).

    Raises:
        ValueError: if the tensor is not ``[3, H, W]``.
    """
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"rgb_to_uint8: expected [3,H,W], got {tuple(img.shape)}")
    lo, hi = value_range
    x = ((img.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    return (x.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def upsample_nearest(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an ``[h, w, 3]`` uint8 array to ``(H, W)`` (integer or not)."""
    h, w = arr.shape[:2]
    H, W = size
    rows = (np.arange(H) * h // H).clip(0, h - 1)
    cols = (np.arange(W) * w // W).clip(0, w - 1)
    return arr[rows][:, cols]


def latent_channels_image(latent: torch.Tensor, size: tuple[int, int] | None = None, gap: int = 2,
                          per_row: int = 4) -> np.ndarray:
    """Normalised latent ``[C, h, w]`` in [-1, 1] -> its channels as greyscale tiles, ``[H, n*W' + gaps, 3]`` uint8.

    Up to ``per_row`` channels (the paper's 4) lie side by side at ``size`` (default: 8x the latent size). More
    channels (an autoencoder grown to 16, ``ae grow --latent-channels``) fill ``ceil(C / per_row)`` rows of
    ``per_row`` tiles, each tile shrunk so that the panel keeps height ``H`` and sits beside an RGB image of that
    height. Each channel is shown as (v + 1) / 2 clamped to [0, 1] (one fixed scale, so images are comparable).

    Raises:
        ValueError: if ``latent`` is not ``[C, h, w]``.
    """
    if latent.dim() != 3:
        raise ValueError(f"latent_channels_image: expected [C,h,w], got {tuple(latent.shape)}")
    c, h, w = latent.shape
    size = size or (8 * h, 8 * w)
    g = ((latent.detach().float().cpu() + 1) * 0.5).clamp(0, 1).numpy()
    n_rows, n_cols = -(-c // per_row), min(c, per_row)
    tile = size if n_rows == 1 else (max(1, (size[0] - (n_rows - 1) * gap) // n_rows),
                                     max(1, (size[1] - (n_rows - 1) * gap) // n_rows))
    width = n_cols * tile[1] + (n_cols - 1) * max(gap, 0)
    panel = np.full((size[0], width, 3), 255, np.uint8)
    for i in range(c):
        r, k = divmod(i, n_cols)
        t = upsample_nearest((np.repeat(g[i][:, :, None], 3, axis=2) * 255 + 0.5).astype(np.uint8), tile)
        y0, x0 = r * (tile[0] + max(gap, 0)), k * (tile[1] + max(gap, 0))
        panel[y0 : y0 + tile[0], x0 : x0 + tile[1]] = t
    return panel


def depth_image(
    depth: torch.Tensor, near: float, far: float, size: tuple[int, int] | None = None, opacity: torch.Tensor | None = None
) -> np.ndarray:
    """Depth ``[1, h, w]`` or ``[h, w]`` (world units along the ray) -> plasma colour map, ``[H, W, 3]`` uint8.

    ``near`` maps to dark purple and ``far`` to yellow; non-finite depths (rays that hit nothing) are shown
    as ``far``. With ``opacity`` (same shape, in [0, 1]) the colour is blended over white by the opacity, so
    empty space (where the expected depth is meaningless) shows white.
    """
    from matplotlib import colormaps  # imported on use: matplotlib (~0.5 s) only for colour maps and plots

    d = depth.detach().float().cpu().reshape(depth.shape[-2], depth.shape[-1])
    d = torch.nan_to_num(d, nan=far, posinf=far, neginf=near)
    t = ((d - near) / max(far - near, 1e-8)).clamp(0, 1).numpy()
    col = colormaps["plasma"](t)[..., :3]
    if opacity is not None:
        a = opacity.detach().float().cpu().reshape(d.shape).clamp(0, 1).numpy()[..., None]
        col = col * a + (1.0 - a)
    rgb = (col * 255 + 0.5).astype(np.uint8)
    return upsample_nearest(rgb, size) if size is not None else rgb


def _text_strip(labels: Sequence[str], widths: Sequence[int], height: int = 16) -> np.ndarray:
    """A white strip with one centred black label above each column."""
    total = int(sum(widths))
    img = Image.new("RGB", (total, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    x = 0
    for label, w in zip(labels, widths):
        tw = draw.textlength(label, font=font)
        draw.text((x + max(0, (w - tw) / 2), 2), label, fill=(0, 0, 0), font=font)
        x += w
    return np.asarray(img)


def image_grid(
    rows: Sequence[Sequence[np.ndarray]],
    col_labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    pad: int = 2,
) -> np.ndarray:
    """Tile uint8 ``[H, W, 3]`` images into a grid with white padding and optional text labels.

    Every image of a column is resized (nearest) to that column's first image size; every row must have the
    same number of images.

    Raises:
        ValueError: for an empty grid or ragged rows.
    """
    if not rows or not rows[0]:
        raise ValueError("image_grid: no images")
    ncol = len(rows[0])
    if any(len(r) != ncol for r in rows):
        raise ValueError("image_grid: every row needs the same number of images")
    sizes = [rows[0][j].shape[:2] for j in range(ncol)]
    row_h = max(h for h, _ in sizes)
    out_rows = []
    for r in rows:
        cells = []
        for j, im in enumerate(r):
            im = upsample_nearest(im, sizes[j]) if im.shape[:2] != sizes[j] else im
            if im.shape[0] < row_h:
                im = np.concatenate([im, np.full((row_h - im.shape[0], im.shape[1], 3), 255, np.uint8)])
            cells.append(np.pad(im, ((pad, pad), (pad, pad), (0, 0)), constant_values=255))
        out_rows.append(np.concatenate(cells, axis=1))
    grid = np.concatenate(out_rows, axis=0)
    widths = [w + 2 * pad for _, w in sizes]
    if col_labels is not None:
        grid = np.concatenate([_text_strip(list(col_labels), widths), grid], axis=0)
    if row_labels is not None:
        lw = 8 + max(int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(s, font=ImageFont.load_default())) for s in row_labels)
        col = Image.new("RGB", (lw, grid.shape[0]), (255, 255, 255))
        draw = ImageDraw.Draw(col)
        top = 16 if col_labels is not None else 0
        for i, s in enumerate(row_labels):
            draw.text((4, top + i * (row_h + 2 * pad) + row_h // 2), s, fill=(0, 0, 0), font=ImageFont.load_default())
        grid = np.concatenate([np.asarray(col), grid], axis=1)
    return grid


def save_png(arr: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 ``[H, W, 3]`` array as PNG, atomically. Returns the path."""
    path = Path(path)
    atomic_write(path, lambda p: Image.fromarray(arr).save(p, format="PNG"))
    return path


def save_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 10.0) -> Path:
    """Write uint8 ``[H, W, 3]`` frames as a looping GIF (imageio), atomically. Returns the path.

    Raises:
        ValueError: if there are no frames or their sizes differ.
    """
    if not frames:
        raise ValueError(f"save_gif: no frames for {path}")
    if len({f.shape for f in frames}) != 1:
        raise ValueError(f"save_gif: frames of different sizes for {path}")
    path = Path(path)
    stack = np.stack(list(frames))
    atomic_write(path, lambda p: iio.imwrite(p, stack, extension=".gif", duration=1000.0 / fps, loop=0))
    return path


def save_mp4(frames: Sequence[np.ndarray], path: str | Path, fps: float = 10.0, quality: float = 8.0) -> Path:
    """Write uint8 ``[H, W, 3]`` frames as an H.264 MP4 (yuv420p, plays in browsers), atomically. Returns the path.

    Uses imageio's ffmpeg plugin with the ffmpeg binary bundled by the ``imageio-ffmpeg`` package (nothing is
    downloaded). H.264 in yuv420p needs an even width and height: an odd size is padded with one white row or
    column at the bottom / right (never rescaled), so a frame of the file is ``[H + H % 2, W + W % 2, 3]``.

    Args:
        quality: imageio's 0-10 scale (10 = best; 8 is near-lossless for these small frames).
    Raises:
        ValueError: if there are no frames or their sizes differ.
        ImportError: if ``imageio-ffmpeg`` is not installed (the message says how to install it).
    """
    if not frames:
        raise ValueError(f"save_mp4: no frames for {path}")
    if len({f.shape for f in frames}) != 1:
        raise ValueError(f"save_mp4: frames of different sizes for {path}")
    try:
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary imageio's plugin runs)
    except ImportError:
        raise ImportError("writing MP4 needs the imageio-ffmpeg package: pip install imageio-ffmpeg") from None
    path = Path(path)
    stack = np.stack(list(frames))
    h, w = stack.shape[1:3]
    if h % 2 or w % 2:
        stack = np.pad(stack, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=255)
    # The temporary file's name does not end in .mp4: the container is named for ffmpeg with -f.
    atomic_write(path, lambda p: iio.imwrite(p, stack, extension=".mp4", plugin="FFMPEG", fps=fps, codec="libx264",
                                             quality=quality, macro_block_size=2, output_params=["-f", "mp4"]))
    return path
