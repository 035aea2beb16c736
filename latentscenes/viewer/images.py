"""Images the viewer shows (pure numpy functions; every output is ``uint8 [H, W, 3]``, top row first).

Display modes of one rendered view (:func:`mode_image`):
  * ``rgb``: the decoded (latent runs) or rendered (RGB runs) image, [0, 1] -> 0..255;
  * ``latent``: the first 3 channels of the normalised latent as R, G, B, each ``(v + 1) / 2`` clamped to
    [0, 1] (a fixed scale, so views and scenes are comparable), upsampled with nearest neighbours;
  * ``depth``: distance along the ray mapped from [near, far] to the plasma colour map, blended over white by
    the opacity (empty space is white);
  * ``opacity``: accumulated opacity, black (0) to white (1).
Ground truth comparisons use :func:`error_image`: mean absolute RGB error, 0 black to ``max_error`` (0.25 by
default) bright yellow on the magma colour map.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["MODES", "to_uint8", "mode_image", "error_image", "hstack", "vstack", "letterbox", "blank",
           "contact_sheet"]

#: display mode -> label in the viewer
MODES = {"rgb": "RGB (decoded)", "latent": "Latent channels 0-2", "depth": "Depth", "opacity": "Opacity",
         "gt": "Nearest ground-truth view + error"}


def to_uint8(img: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` (or ``[H, W]``, shown grey) floats in [0, 1] -> uint8 (clamped, rounded)."""
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _upsample(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = arr.shape[:2]
    rows = (np.arange(size[0]) * h // size[0]).clip(0, h - 1)
    cols = (np.arange(size[1]) * w // size[1]).clip(0, w - 1)
    return arr[rows][:, cols]


def mode_image(out: Mapping[str, np.ndarray], mode: str, size: tuple[int, int], near: float,
               far: float) -> np.ndarray:
    """The picture of one :meth:`latentscenes.api.Run.render` output in display ``mode``, ``size = (H, W)``.

    Args:
        out: ``rgb [H, W, 3]``, ``latent [h, w, C]``, ``depth [h, w]``, ``opacity [h, w]`` (only the ones the
            mode needs).
        mode: ``rgb``, ``latent``, ``depth`` or ``opacity``.
        near, far: the run's depth range (world units) for ``depth``.
    Raises:
        KeyError: the output lacks what the mode needs (e.g. ``latent`` of an RGB run). ValueError: unknown mode.
    """
    if mode == "rgb":
        img = to_uint8(out["rgb"])
    elif mode == "latent":
        lat = np.asarray(out["latent"], dtype=np.float32)
        if lat.shape[-1] < 3:
            lat = np.concatenate([lat, np.full(lat.shape[:2] + (3 - lat.shape[-1],), -1.0, np.float32)], axis=-1)
        img = to_uint8((lat[..., :3] + 1.0) * 0.5)
    elif mode == "depth":
        from matplotlib import colormaps  # imported on use: matplotlib (~0.5 s) only for colour maps and plots

        d = np.nan_to_num(np.asarray(out["depth"], dtype=np.float32), nan=far, posinf=far, neginf=near)
        col = colormaps["plasma"](np.clip((d - near) / max(far - near, 1e-8), 0.0, 1.0))[..., :3]
        if "opacity" in out:
            a = np.clip(np.asarray(out["opacity"], dtype=np.float32), 0.0, 1.0)[..., None]
            col = col * a + (1.0 - a)
        img = to_uint8(col)
    elif mode == "opacity":
        img = to_uint8(np.asarray(out["opacity"], dtype=np.float32))
    else:
        raise ValueError(f"unknown display mode {mode!r}: choose one of {list(MODES)}")
    return img if img.shape[:2] == tuple(size) else _upsample(img, size)


def error_image(pred: np.ndarray, gt: np.ndarray, max_error: float = 0.25) -> np.ndarray:
    """Per-pixel mean absolute error of ``pred`` vs ``gt`` (both ``[H, W, 3]`` in [0, 1]) on the magma map.

    0 is black, ``max_error`` and above the map's bright end. Raises ``ValueError`` for different shapes.
    """
    from matplotlib import colormaps  # imported on use: matplotlib (~0.5 s) only for colour maps and plots

    p, g = np.asarray(pred, dtype=np.float32), np.asarray(gt, dtype=np.float32)
    if p.shape != g.shape:
        raise ValueError(f"error_image: shapes differ {p.shape} vs {g.shape}")
    e = np.abs(p - g).mean(axis=-1) / max(float(max_error), 1e-8)
    return to_uint8(colormaps["magma"](np.clip(e, 0.0, 1.0))[..., :3])


def blank(size: tuple[int, int], value: int = 48) -> np.ndarray:
    """A grey ``uint8 [H, W, 3]`` image."""
    return np.full((int(size[0]), int(size[1]), 3), value, np.uint8)


def hstack(images: Sequence[np.ndarray], gap: int = 0, value: int = 48) -> np.ndarray:
    """Images of equal height side by side, ``gap`` grey columns between them."""
    parts: list[np.ndarray] = []
    for i, im in enumerate(images):
        if i and gap:
            parts.append(blank((im.shape[0], gap), value))
        parts.append(im)
    return np.concatenate(parts, axis=1)


def vstack(images: Sequence[np.ndarray], gap: int = 0, value: int = 48) -> np.ndarray:
    """Images of equal width stacked, ``gap`` grey rows between them."""
    parts: list[np.ndarray] = []
    for i, im in enumerate(images):
        if i and gap:
            parts.append(blank((gap, im.shape[1]), value))
        parts.append(im)
    return np.concatenate(parts, axis=0)


def letterbox(img: np.ndarray, aspect: float, value: int = 48) -> np.ndarray:
    """Pad ``img`` with grey, centred, to width / height = ``aspect`` (within one pixel), so that stretching it
    over a canvas of that aspect does not distort it."""
    h, w = img.shape[:2]
    if w / h < aspect:
        W = int(round(h * aspect))
        left = (W - w) // 2
        out = blank((h, W), value)
        out[:, left : left + w] = img
        return out
    H = int(round(w / aspect))
    top = (H - h) // 2
    out = blank((H, w), value)
    out[top : top + h] = img
    return out


def contact_sheet(thumbs: Sequence[np.ndarray | None], labels: Sequence[str], cols: int = 3,
                  size: int = 64) -> np.ndarray:
    """Thumbnails ``size x size`` in a grid of ``cols`` columns, each with its label underneath.

    A ``None`` thumbnail (not rendered yet) is drawn grey. Returns ``uint8 [rows * (size + 14), cols * size
    + gaps, 3]`` (white label strips); an empty list gives one grey tile.
    """
    n = max(1, len(labels))
    rows = (n + cols - 1) // cols
    lab_h, gap = 14, 4
    W, H = cols * size + (cols - 1) * gap, rows * (size + lab_h) + (rows - 1) * gap
    sheet = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i in range(n):
        r, c = divmod(i, cols)
        x, y = c * (size + gap), r * (size + lab_h + gap)
        t = thumbs[i] if i < len(thumbs) else None
        tile = blank((size, size), 200) if t is None else _upsample(np.asarray(t, np.uint8), (size, size))
        sheet.paste(Image.fromarray(tile), (x, y))
        if i < len(labels):
            text = labels[i]
            while text and draw.textlength(text, font=font) > size:
                text = text[:-1]
            draw.text((x + 1, y + size + 1), text, fill=(0, 0, 0), font=font)
    return np.asarray(sheet)
