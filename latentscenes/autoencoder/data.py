"""Images for autoencoder pre-training and evaluation: a multi-scene dataset's views, or a folder of images.

Images are kept as ``uint8`` ``[N, 3, H, W]`` (RGB, composited on white) to hold tens of thousands of views in
memory; :func:`to_model_space` maps them to float [-1, 1] (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from latentscenes.data import MultiSceneDataset
from latentscenes.data.types import DatasetError
from latentscenes.utils.progress import progress_bar

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[N, 3, H, W]`` float in [0, 1] -> uint8 (rounded)."""
    return (images.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)


def to_model_space(images_u8: torch.Tensor) -> torch.Tensor:
    """``[N, 3, H, W]`` uint8 -> float32 in [-1, 1]."""
    return images_u8.float() / 127.5 - 1.0


def load_dataset_views(
    root: str | Path,
    scene_split: str = "train",
    view_split: str | None = "train",
    max_scenes: int = 0,
    views_per_scene: int = 0,
    resolution: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[torch.Tensor, list[str]]:
    """Views of a multi-scene dataset (``latentscenes.data.MultiSceneDataset``) as one uint8 tensor.

    Args:
        root: dataset folder.
        scene_split: ``"train"`` or ``"exploit"`` scenes (``MultiSceneDataset.split_scene_ids``); ``"all"`` for every scene.
        view_split: ``"train"`` / ``"test"`` views of each scene, or None for all views.
        max_scenes: keep at most this many scenes (a seeded random subset; 0 = all).
        views_per_scene: keep at most this many views per scene (seeded; 0 = all).
        resolution: square resolution to load at (None = the dataset's own).
    Returns:
        (``[N, 3, H, W]`` uint8 images, the scene id of each image).
    Raises:
        DatasetError / FileNotFoundError: from the dataset loader (the message names the folder).
    """
    ds = MultiSceneDataset(root, resolution=resolution)
    ids = list(ds.scene_ids) if scene_split == "all" else list(ds.split_scene_ids(scene_split))
    rng = np.random.default_rng(seed)
    if max_scenes and len(ids) > max_scenes:
        ids = [ids[i] for i in sorted(rng.choice(len(ids), max_scenes, replace=False))]
    chunks: list[torch.Tensor] = []
    owners: list[str] = []
    it: Iterable[str] = ids
    if progress:
        with progress_bar(f"loading {scene_split} scenes", len(ids)) as (bar, task):
            for sid in ids:
                _add_scene(ds, sid, view_split, views_per_scene, rng, chunks, owners)
                bar.update(task, advance=1)
    else:
        for sid in it:
            _add_scene(ds, sid, view_split, views_per_scene, rng, chunks, owners)
    if not chunks:
        raise DatasetError(f"{root}: no {view_split or 'any'} views in the {scene_split!r} scenes")
    return torch.cat(chunks), owners


def _add_scene(ds, sid, view_split, views_per_scene, rng, chunks, owners) -> None:
    sv = ds.load(sid)
    idx = list(range(sv.num_views)) if view_split is None else sv.view_indices(view_split)
    if views_per_scene and len(idx) > views_per_scene:
        idx = sorted(rng.choice(idx, views_per_scene, replace=False).tolist())
    if not idx:
        return
    chunks.append(to_uint8(sv.images[idx]))
    owners.extend([sid] * len(idx))


def load_image_folder(folder: str | Path, resolution: int = 128, max_images: int = 0) -> torch.Tensor:
    """Every image under ``folder`` (recursive; png/jpg/webp/bmp), alpha composited on white, centre-cropped
    to a square and resized to ``resolution``.

    Returns:
        ``[N, 3, resolution, resolution]`` uint8.
    Raises:
        FileNotFoundError: if the folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if max_images:
        files = files[:max_images]
    if not files:
        raise FileNotFoundError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    out = []
    for f in files:
        im = Image.open(f)
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im).convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        im = im.resize((resolution, resolution), Image.Resampling.BOX if s > resolution else Image.Resampling.BICUBIC)
        out.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))
    return torch.stack(out)


def content_boxes(images_u8: torch.Tensor, white_threshold: int = 250) -> torch.Tensor:
    """Bounding box of the non-white pixels of each image: ``[N, 4]`` long (row0, row1, col0, col1), inclusive.

    An all-white image gets the whole frame.
    """
    n, _, h, w = images_u8.shape
    boxes = torch.empty(n, 4, dtype=torch.long)
    for i0 in range(0, n, 512):
        fg = (images_u8[i0 : i0 + 512] < white_threshold).any(dim=1)  # [b, H, W]
        rows = fg.any(dim=2)
        cols = fg.any(dim=1)
        for j in range(fg.shape[0]):
            r = torch.nonzero(rows[j]).flatten()
            c = torch.nonzero(cols[j]).flatten()
            if len(r) == 0:
                boxes[i0 + j] = torch.tensor([0, h - 1, 0, w - 1])
            else:
                boxes[i0 + j] = torch.tensor([int(r[0]), int(r[-1]), int(c[0]), int(c[-1])])
    return boxes


class CropSampler:
    """Random training crops, biased towards the object (a conv autoencoder is translation-equivariant, so
    crops train it for full frames at a fraction of the cost per step).

    Deterministic given its ``torch.Generator`` state (saved in pre-training checkpoints for exact resume).
    """

    def __init__(self, images_u8: torch.Tensor, crop: int, object_prob: float = 0.8, flip: bool = True, seed: int = 0,
                 downscale_prob: float = 0.0):
        """``downscale_prob``: probability that a sample is a crop of twice the size, area-averaged 2x down to
        ``crop`` (the objects then appear as in images of half the resolution: one autoencoder serves 128 px and
        64 px datasets). Ignored when the images are smaller than twice the crop."""
        self.images = images_u8
        self.h, self.w = int(images_u8.shape[-2]), int(images_u8.shape[-1])
        self.crop = min(int(crop), self.h, self.w) if crop else min(self.h, self.w)
        self.crop -= self.crop % 8
        self.object_prob = float(object_prob)
        self.flip = bool(flip)
        self.boxes = content_boxes(images_u8)
        self.generator = torch.Generator().manual_seed(int(seed))
        can_downscale = 2 * self.crop <= min(self.h, self.w)
        self.downscale_prob = float(downscale_prob) if can_downscale else 0.0

    def sample(self, batch: int) -> torch.Tensor:
        """A batch ``[batch, 3, crop, crop]`` float32 in [-1, 1]."""
        g = self.generator
        idx = torch.randint(0, self.images.shape[0], (batch,), generator=g)
        # the 5th number is drawn only when used, so runs without down-scaling keep their random stream
        u = torch.rand(batch, 5 if self.downscale_prob > 0 else 4, generator=g)
        out = torch.empty(batch, 3, self.crop, self.crop, dtype=torch.uint8)
        for b in range(batch):
            down = self.downscale_prob > 0 and bool(u[b, 4] < self.downscale_prob)
            c = 2 * self.crop if down else self.crop
            i = int(idx[b])
            if u[b, 0] < self.object_prob:
                r0, r1, c0, c1 = (int(v) for v in self.boxes[i])
                cy = r0 + u[b, 1].item() * (r1 - r0)
                cx = c0 + u[b, 2].item() * (c1 - c0)
                y0 = int(round(cy - c / 2))
                x0 = int(round(cx - c / 2))
            else:
                y0 = int(u[b, 1].item() * (self.h - c + 1))
                x0 = int(u[b, 2].item() * (self.w - c + 1))
            y0 = max(0, min(self.h - c, y0))
            x0 = max(0, min(self.w - c, x0))
            crop = self.images[i, :, y0 : y0 + c, x0 : x0 + c]
            if self.flip and u[b, 3] < 0.5:
                crop = crop.flip(-1)
            if down:  # area average, as MultiSceneDataset(resolution=...) resizes
                crop = to_uint8(F.avg_pool2d(crop[None].float() / 255.0, 2)[0])
            out[b] = crop
        return to_model_space(out)
