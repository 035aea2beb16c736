"""Training views in memory, the Encode-Scene latent cache, and the deterministic batch order.

* :class:`ViewTable` holds the train views of a list of scenes as flat tensors (every view of every scene,
  one row each), with the row of its scene, so that a mini-batch can mix views of many scenes (Alg. 1-2,
  "for {s, p, x_p} in shuffle(X)").
* :func:`cache_latents` encodes every view once with the frozen autoencoder (Encode-Scene targets, paper
  Sec. 3.2.1) and keeps them in memory; :func:`save_latent_cache` / :func:`load_latent_cache` write them
  as **one** safetensors file (the authors' ``CachedDataset`` wrote one ``.pt`` per image).
* :func:`batch_indices` is a pure function of (seed, step): resuming at step k draws exactly the batches an
  uninterrupted run would have drawn.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from latentscenes.data.types import DatasetError, SceneViews
from latentscenes.utils.io import atomic_save_safetensors


@dataclass
class ViewTable:
    """Train views of several scenes, flattened.

    Attributes:
        scene_ids: ``S`` scene ids; ``scene_rows[i]`` indexes this list.
        images: ``[N, 3, H, W]`` float32 in [-1, 1] (model space, ``2 x - 1`` of the dataset images).
        c2w: ``[N, 4, 4]`` float32, OpenCV camera-to-world.
        K: ``[N, 3, 3]`` float32, intrinsics normalised by image size (serve the image and its latent).
        scene_rows: ``[N]`` int64, index into ``scene_ids`` of each view.
        copies: how many copies of every source view the table holds (``shift_views``: g^2; else 1).
    """

    scene_ids: list[str]
    images: torch.Tensor
    c2w: torch.Tensor
    K: torch.Tensor
    scene_rows: torch.Tensor
    copies: int = 1

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def n_source_views(self) -> int:
        """Views before :func:`shift_views` copied them: what a stage's ``epochs`` count passes over, so a
        stage's budget per scene does not change with ``shift_grid``."""
        return len(self) // self.copies

    @property
    def resolution(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])


def build_view_table(
    scenes: Sequence[SceneViews], split: str = "train", max_views: int | None = None, resolution: int | None = None
) -> ViewTable:
    """Flatten the ``split`` views of ``scenes`` into a :class:`ViewTable`.

    Args:
        scenes: loaded scenes (images ``[V,3,H,W]`` in [0,1]).
        split: which views to keep (``"train"``; evaluation uses ``"test"``).
        max_views: keep the first ``max_views`` views of that split per scene (``None`` = all).
        resolution: resize images to ``resolution x resolution`` (antialiased bilinear) when they differ;
            the normalised intrinsics stay valid.
    Raises:
        DatasetError: if a scene has no view in ``split``, or the scenes' image sizes differ.
    """
    imgs, c2ws, Ks, rows = [], [], [], []
    size = None
    for r, sc in enumerate(scenes):
        idx = sc.view_indices(split)
        if not idx:
            raise DatasetError(f"scene {sc.scene_id!r}: no {split!r} views")
        if max_views is not None:
            idx = idx[:max_views]
        x = sc.images[idx].float()
        if resolution is not None and tuple(x.shape[-2:]) != (resolution, resolution):
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
            x = x.clamp(0.0, 1.0)
        if size is None:
            size = tuple(x.shape[-2:])
        elif tuple(x.shape[-2:]) != size:
            raise DatasetError(f"scene {sc.scene_id!r}: image size {tuple(x.shape[-2:])} differs from {size}; set data.resolution")
        imgs.append(x * 2.0 - 1.0)
        c2ws.append(sc.c2w[idx].float())
        Ks.append(sc.K[idx].float())
        rows.append(torch.full((len(idx),), r, dtype=torch.long))
    if not imgs:
        raise DatasetError("no scenes selected")
    return ViewTable(
        scene_ids=[s.scene_id for s in scenes],
        images=torch.cat(imgs),
        c2w=torch.cat(c2ws),
        K=torch.cat(Ks),
        scene_rows=torch.cat(rows),
    )


def shift_views(table: ViewTable, grid: int, downsample: int = 8) -> ViewTable:
    """The views of ``table`` at ``grid x grid`` sub-latent-pixel offsets (exploit ``shift_grid``).

    Copy (k, l) of a view holds the image moved by ``ox = k * downsample // grid`` pixels left and
    ``oy = l * downsample // grid`` pixels up (new pixel (i, j) = old pixel (i + oy, j + ox); the uncovered
    right / bottom border repeats the edge pixels, i.e. the background of an object-centred view), with the
    normalised principal point moved by ``(-ox / W, -oy / H)`` so the camera still explains every pixel.
    Encoded, each copy gives latents whose pixels sit ``(ox, oy)`` image pixels away from the original's:
    together they sample the scene at ``grid`` times the latent resolution along each axis.

    Args:
        table: views with images ``[N, 3, H, W]``.
        grid: g >= 1 (1 returns ``table`` unchanged); ``downsample`` must be a multiple of g.
        downsample: the autoencoder's image-to-latent factor (8).
    Returns:
        a table of ``g^2 * N`` rows (``copies`` g^2): copy 0 is ``table`` itself, then the shifted copies in
        (l, k) order.
    Raises:
        ValueError: ``grid < 1`` or ``downsample`` not a multiple of ``grid``.
    """
    if grid < 1 or downsample % grid:
        raise ValueError(f"shift_grid must be >= 1 and divide the downsampling factor {downsample}, got {grid}")
    if grid == 1:
        return table
    H, W = table.resolution
    imgs, Ks = [table.images], [table.K]
    for oy in range(0, downsample, downsample // grid):
        for ox in range(0, downsample, downsample // grid):
            if ox == 0 and oy == 0:
                continue
            padded = F.pad(table.images, (0, ox, 0, oy), mode="replicate")
            imgs.append(padded[..., oy : oy + H, ox : ox + W])
            K = table.K.clone()
            K[:, 0, 2] -= ox / W
            K[:, 1, 2] -= oy / H
            Ks.append(K)
    n = len(imgs)
    return ViewTable(
        scene_ids=list(table.scene_ids), images=torch.cat(imgs), c2w=table.c2w.repeat(n, 1, 1), K=torch.cat(Ks),
        scene_rows=table.scene_rows.repeat(n), copies=table.copies * n,
    )


@torch.no_grad()
def cache_latents(
    table: ViewTable, encode: Callable[[torch.Tensor], torch.Tensor], device: torch.device, batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Encode every view once (Encode-Scene targets, paper Sec. 3.2.1 "encoded once, and then cached").

    Args:
        table: views to encode.
        encode: maps ``[B,3,H,W]`` in [-1,1] to the **normalised** latent ``[B,C,H/8,W/8]`` in (-1, 1), e.g.
            ``lambda x: ae.normalize(ae.encode(x))``. Called under ``no_grad``.
        device: where to run the encoder.
        batch_size: views per forward pass.
        progress: optional callback receiving the number of views just encoded.
    Returns:
        ``[N, C, h, w]`` float32 on the CPU, row-aligned with ``table``.
    """
    out = []
    for i in range(0, len(table), batch_size):
        x = table.images[i : i + batch_size].to(device)
        out.append(encode(x).float().cpu())
        if progress is not None:
            progress(int(x.shape[0]))
    return torch.cat(out)


def table_fingerprint(table: ViewTable) -> str:
    """Short hash of the scene ids, view count and image content (detects a stale latent cache)."""
    h = hashlib.sha256()
    h.update("|".join(table.scene_ids).encode())
    h.update(str(tuple(table.images.shape)).encode())
    # Subsample pixels: hashing every byte of a large table costs seconds; these catch changed data.
    flat = table.images.reshape(-1)
    step = max(1, flat.numel() // 65536)
    h.update(flat[::step].numpy().tobytes())
    h.update(table.c2w.numpy().tobytes())
    return h.hexdigest()[:16]


def save_latent_cache(latents: torch.Tensor, path: Path, fingerprint: str, ae_fingerprint: str) -> None:
    """Write the cached latents as one safetensors file (atomically)."""
    atomic_save_safetensors({"latents": latents}, path, metadata={"views": fingerprint, "ae": ae_fingerprint})


def load_latent_cache(path: Path, fingerprint: str, ae_fingerprint: str) -> torch.Tensor | None:
    """The cached latents if ``path`` exists and matches both fingerprints, else ``None``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        return None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("views") != fingerprint or meta.get("ae") != ae_fingerprint:
            return None
        return f.get_tensor("latents")


def step_generator(seed: int, stage: str, step: int) -> int:
    """A 63-bit seed derived from (seed, stage, step); the stage's random draws at ``step`` use it."""
    h = hashlib.sha256(f"{seed}/{stage}/{step}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def batch_indices(n: int, batch_size: int, seed: int, stage: str, step: int) -> torch.Tensor:
    """Rows of the mini-batch number ``step`` (0-based): consecutive slices of per-epoch permutations.

    Epoch ``e`` is a permutation of ``range(n)`` drawn from (seed, stage, e), so every view is used once per
    epoch (Alg. 1 "for {s, p, x_p} in shuffle(X_train)") and the result depends only on the arguments.

    Args:
        n: number of views (> 0); batch_size: views per batch (> 0, may exceed ``n``).
    Returns:
        ``[batch_size]`` int64.
    Raises:
        ValueError: if ``n`` or ``batch_size`` is not positive.
    """
    if n <= 0 or batch_size <= 0:
        raise ValueError(f"batch_indices: n={n} and batch_size={batch_size} must be > 0")
    start = step * batch_size
    out = []
    pos = start
    while len(out) < batch_size:
        epoch, off = divmod(pos, n)
        g = torch.Generator().manual_seed(step_generator(seed, stage + "/epoch", epoch))
        perm = torch.randperm(n, generator=g)
        take = min(n - off, batch_size - len(out))
        out.extend(perm[off : off + take].tolist())
        pos += take
    return torch.tensor(out, dtype=torch.long)
