"""Training views in memory, the Encode-Scene latent cache, and the deterministic batch order.

* :class:`ViewTable` holds the train views of a list of scenes (every view of every scene, one row each), with
  the row of its scene, so that a mini-batch can mix views of many scenes (Alg. 1-2, "for {s, p, x_p} in
  shuffle(X)"). Its images are resident as **integer pixel codes** (``uint8`` for 8-bit images at their own
  size, ``uint16`` for 8-bit images area-resized by an integer factor), converted to float per batch
  (:meth:`ViewTable.batch_images`); the copies at sub-latent-pixel offsets (:func:`shift_views`) are cut per
  batch from the same codes, never stored. docs/scale.md gives the bytes per scene.
* :func:`build_view_table` takes the scenes as an iterable, so a caller that loads them one at a time
  (:func:`latentscenes.training.pipeline.load_view_table`) never holds more than one loaded scene.
* :func:`cache_latents` encodes every view once with the frozen autoencoder (Encode-Scene targets, paper
  Sec. 3.2.1); :func:`save_latent_cache` writes them as **one** safetensors file (the authors' ``CachedDataset``
  wrote one ``.pt`` per image) and :func:`load_latent_cache` memory-maps it (read-only pages of the file, not a
  copy in the process's heap).
* :func:`batch_indices` is a pure function of (seed, step): resuming at step k draws exactly the batches an
  uninterrupted run would have drawn.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open

from latentscenes.data.loaders import resize_area
from latentscenes.data.types import DatasetError, SceneViews
from latentscenes.rendering.offsets import offset_intrinsics, pixel_offsets
from latentscenes.utils.io import UnreadableFileError, atomic_save_safetensors, atomic_write, disk_full

#: Denominators tried for integer pixel codes, smallest first: an 8-bit image is ``k / 255``; its area-resize by an
#: integer factor f averages f^2 such values (``S / (255 f^2)``); RGBA composited on white is ``m / 255^2``. All fit
#: ``uint16``. Smaller denominators are tried first, so 8-bit images at their own size get ``uint8`` codes.
CODE_DENOMINATORS = tuple(sorted({255 * f * f for f in range(1, 17)} | {255 * 255}))
#: Largest difference between a decoded code and the value it stands for that is accepted as float rounding: 4 ulps
#: of float32 at 1 (the loader's area average of f^2 rounded values carries a few ulps of its own). A value that is not
#: a code over D lies ~1 / (4 D) away on average; one such pixel in a scene refuses D.
CODE_TOLERANCE = 4 * torch.finfo(torch.float32).eps


def pixel_codes(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Integer codes of images whose values are multiples of ``1 / D`` for one ``D`` of :data:`CODE_DENOMINATORS`.

    Args:
        x: ``[V, 3, H, W]`` float in [0, 1] (a loader's images).
    Returns:
        ``(codes, D)``: ``codes`` ``uint8`` (D = 255) or ``uint16``, the smallest D whose decoded codes
        (``codes.float() / D``, as :meth:`ViewTable.batch_images` computes them) lie within
        :data:`CODE_TOLERANCE` of ``x`` everywhere (bit-identical for 8-bit images at their own size); or
        ``(x as float32, 1.0)`` when no denominator fits (images already in float, e.g. bilinear-resized or
        synthetic): those stay float32, exact, at 4 bytes per value.
    """
    xf = x.detach().float()
    if xf.numel() and float(xf.min()) >= 0.0 and float(xf.max()) <= 1.0:
        for D in CODE_DENOMINATORS:
            codes = (xf.double() * D).round()
            if float((codes.float() / D - xf).abs().max()) <= CODE_TOLERANCE:
                return codes.to(torch.uint8 if D <= 255 else torch.uint16), float(D)
    return xf.contiguous(), 1.0


@dataclass
class ViewTable:
    """Train views of several scenes, flattened; images held as pixel codes and decoded per batch.

    Rows: ``copies * n`` rows for ``n`` source views. Row ``r`` is copy ``c = r // n`` of source view ``r % n``;
    copy ``c`` is the image moved by ``(ox, oy) = ((c % g) * downsample // g, (c // g) * downsample // g)``
    pixels (:func:`shift_views`; g = ``shift_grid``, copy 0 is the view itself).

    Attributes:
        scene_ids: ``S`` scene ids; ``scene_rows[i]`` indexes this list.
        codes: ``[n, 3, H, W]`` pixel codes of the source views: ``uint8`` / ``uint16`` integers, or ``float32``
            values (see :func:`pixel_codes`). The only per-view image memory of the table.
        scale: ``[n]`` float32, the denominator of each source view's codes (pixel value in [0, 1] = code / scale).
        c2w: ``[copies * n, 4, 4]`` float32, OpenCV camera-to-world of every row.
        K: ``[copies * n, 3, 3]`` float32, intrinsics normalised by image size (serve the image and its latent);
            the principal point of a shifted copy is moved with its image.
        scene_rows: ``[copies * n]`` int64, index into ``scene_ids`` of each row.
        copies: how many copies of every source view the table has (``shift_views``: g^2; else 1).
        shift_grid: g (``copies == shift_grid ** 2``).
        downsample: the autoencoder's image-to-latent factor the shifts are measured against (8).
        codes_file: the file ``codes`` is memory-mapped from (:func:`build_view_table` with ``codes_path``), or
            None when they are in the process's heap.
    """

    scene_ids: list[str]
    codes: torch.Tensor
    scale: torch.Tensor
    c2w: torch.Tensor
    K: torch.Tensor
    scene_rows: torch.Tensor
    copies: int = 1
    shift_grid: int = 1
    downsample: int = 8
    codes_file: str | None = None

    @classmethod
    def from_images(cls, scene_ids: list[str], images: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor,
                    scene_rows: torch.Tensor) -> "ViewTable":
        """A table of one copy per view from images ``[n, 3, H, W]`` in [0, 1] (stored as :func:`pixel_codes`)."""
        codes, d = pixel_codes(images)
        return cls(list(scene_ids), codes, torch.full((codes.shape[0],), d), c2w.float(), K.float(),
                   torch.as_tensor(scene_rows, dtype=torch.long))

    def __len__(self) -> int:
        return int(self.scene_rows.shape[0])

    @property
    def n_source_views(self) -> int:
        """Views before :func:`shift_views` copied them: what a stage's ``epochs`` count passes over, so a
        stage's budget per scene does not change with ``shift_grid``."""
        return int(self.codes.shape[0])

    @property
    def resolution(self) -> tuple[int, int]:
        return int(self.codes.shape[-2]), int(self.codes.shape[-1])

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of every row's images as one tensor ``[copies * n, 3, H, W]`` (never materialised)."""
        return (len(self), *self.codes.shape[1:])

    def offsets(self, copy: int) -> tuple[int, int]:
        """``(ox, oy)`` pixels by which copy ``copy`` of a view is moved (left, up)."""
        return pixel_offsets(self.shift_grid, self.downsample)[copy]

    def batch_images(self, rows: torch.Tensor) -> torch.Tensor:
        """The images of ``rows`` in model space, decoded now.

        Args:
            rows: ``[B]`` int64 rows (any order, repeats allowed).
        Returns:
            ``[B, 3, H, W]`` float32 in [-1, 1] (``2 x - 1`` of the dataset images), a new tensor. A shifted copy's
            new pixel (i, j) is the view's pixel (i + oy, j + ox), the uncovered right / bottom border repeating
            the edge pixels (:func:`shift_views`).
        """
        rows = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
        n = self.n_source_views
        src, copy = rows % n, rows // n
        # Decode exactly as the float table used to be computed: x in [0, 1] (one division), then 2 x - 1.
        x = self.codes[src].float() / self.scale[src].view(-1, 1, 1, 1)
        x = x * 2.0 - 1.0
        if self.copies > 1:
            H, W = self.resolution
            for c in torch.unique(copy).tolist():
                if c == 0:
                    continue
                ox, oy = self.offsets(c)
                sel = (copy == c).nonzero().flatten()
                padded = F.pad(x[sel], (0, ox, 0, oy), mode="replicate")
                x[sel] = padded[..., oy : oy + H, ox : ox + W]
        return x

    def resident_bytes(self) -> dict[str, int]:
        """Bytes the table holds in the process's heap: ``{"images": codes (0 when memory-mapped from
        ``codes_file``: page cache, reclaimable) + scales, "cameras": c2w + K + scene rows}``."""
        codes = 0 if self.codes_file is not None else int(self.codes.nbytes)
        return {"images": codes + int(self.scale.nbytes),
                "cameras": int(self.c2w.nbytes + self.K.nbytes + self.scene_rows.nbytes)}

    def storage(self) -> dict[str, object]:
        """What the images are stored as (recorded in run manifests): code dtype, denominators, heap bytes
        (``bytes``), the codes' bytes wherever they are (``code_bytes``) and whether they are memory-mapped."""
        return {"dtype": str(self.codes.dtype).replace("torch.", ""),
                "denominators": sorted({float(d) for d in self.scale.unique().tolist()}),
                "bytes": self.resident_bytes()["images"], "code_bytes": int(self.codes.nbytes),
                "memory_mapped": self.codes_file is not None,
                "source_views": self.n_source_views, "copies": self.copies}


def build_view_table(
    scenes: Iterable[SceneViews], split: str = "train", max_views: int | None = None, resolution: int | None = None,
    codes_path: str | Path | None = None,
) -> ViewTable:
    """Flatten the ``split`` views of ``scenes`` into a :class:`ViewTable` (images as pixel codes).

    Args:
        scenes: loaded scenes (images ``[V,3,H,W]`` in [0,1]); any iterable: a generator that loads one scene
            at a time keeps only that scene in memory next to the table's codes.
        split: which views to keep (``"train"``; evaluation uses ``"test"``).
        max_views: keep the first ``max_views`` views of that split per scene (``None`` = all).
        resolution: resize images to ``resolution x resolution`` when they differ, with the loaders' area
            average (``data.loaders.resize_area``: the one resize filter of the project, so a scene given in
            memory trains on the values the loader would give); the normalised intrinsics stay valid.
        codes_path: write the codes to this file scene by scene (:class:`ImageCodesWriter`) and memory-map
            them from it (:func:`load_image_codes`): the images then take no heap memory, and the process never
            holds more than one scene's codes (issue 12's memory model, docs/scale.md). None: codes in memory.
    Raises:
        DatasetError: if a scene has no view in ``split``, or the scenes' image sizes differ.
        DiskFullError: no room for the codes file (it is written atomically; nothing is left behind).
    """
    writer = ImageCodesWriter(codes_path) if codes_path is not None else None
    try:
        return _build_view_table(scenes, split, max_views, resolution, writer)
    finally:
        if writer is not None:
            writer.discard()


def _build_view_table(scenes: Iterable[SceneViews], split: str, max_views: int | None, resolution: int | None,
                      writer: "ImageCodesWriter | None") -> ViewTable:
    codes, scales, c2ws, Ks, rows, ids = [], [], [], [], [], []
    size = None
    for r, sc in enumerate(scenes):
        idx = sc.view_indices(split)
        if not idx:
            raise DatasetError(f"scene {sc.scene_id!r}: no {split!r} views")
        if max_views is not None:
            idx = idx[:max_views]
        x = sc.images[idx].float()
        if resolution is not None and tuple(x.shape[-2:]) != (resolution, resolution):
            x = resize_area(x, resolution)
        if size is None:
            size = tuple(x.shape[-2:])
        elif tuple(x.shape[-2:]) != size:
            raise DatasetError(f"scene {sc.scene_id!r}: image size {tuple(x.shape[-2:])} differs from {size}; set data.resolution")
        c, d = pixel_codes(x)
        if writer is not None:
            writer.append(c)
        else:
            codes.append(c)
        scales.append(torch.full((len(idx),), d, dtype=torch.float32))
        c2ws.append(sc.c2w[idx].float())
        Ks.append(sc.K[idx].float())
        rows.append(torch.full((len(idx),), r, dtype=torch.long))
        ids.append(sc.scene_id)
    if not ids:
        raise DatasetError("no scenes selected")
    codes_file = None
    if writer is not None:
        all_codes = writer.close()
        codes_file = str(writer.path)
    else:
        all_codes = torch.cat([c.to(_widest(c.dtype for c in codes)) for c in codes])
    return ViewTable(
        scene_ids=ids,
        codes=all_codes,
        scale=torch.cat(scales),
        c2w=torch.cat(c2ws),
        K=torch.cat(Ks),
        scene_rows=torch.cat(rows),
        codes_file=codes_file,
    )


#: Code dtypes from the narrowest; a table takes the widest its scenes need (every value is kept exactly).
_CODE_DTYPES = (torch.uint8, torch.uint16, torch.float32)
_ST_DTYPES = {torch.uint8: "U8", torch.uint16: "U16", torch.float32: "F32"}
_NP_DTYPES = {"U8": np.uint8, "U16": np.uint16, "F32": np.float32}
#: ``__metadata__["format"]`` of an image codes file.
IMAGE_CODES_FORMAT = "latentscenes-image-codes-1"


def _widest(dtypes: Iterable[torch.dtype]) -> torch.dtype:
    return max(dtypes, key=_CODE_DTYPES.index)


class ImageCodesWriter:
    """Writes a :class:`ViewTable`'s pixel codes ``[n, 3, H, W]`` to one safetensors file, a scene at a time.

    The rows are appended to a scratch file next to ``path`` as they come (each in its own dtype, so nothing but
    the current scene is held); :meth:`close` writes ``path`` atomically (header, then the rows converted to the
    widest dtype) and returns the codes memory-mapped from it. Format: one tensor ``codes`` (``U8``, ``U16`` or
    ``F32``), metadata ``format`` = :data:`IMAGE_CODES_FORMAT`; read by :func:`load_image_codes`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary name remove_temporaries() recognises, so a crash leaves nothing a resume keeps.
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part.tmp", dir=self.path.parent)
        self._scratch = Path(tmp)
        self._fh = open(fd, "wb")
        self._segments: list[tuple[torch.dtype, int]] = []  # (dtype, rows) in file order
        self._shape: tuple[int, ...] | None = None

    def append(self, codes: torch.Tensor) -> None:
        """Append ``[v, 3, H, W]`` codes (``uint8`` / ``uint16`` / ``float32``, the shape of the earlier rows)."""
        if self._shape is not None and tuple(codes.shape[1:]) != self._shape:
            raise ValueError(f"{self.path}: rows of shape {tuple(codes.shape[1:])} after {self._shape}")
        self._shape = tuple(codes.shape[1:])
        with self._no_room_named():
            self._fh.write(codes.contiguous().numpy().tobytes())
        self._segments.append((codes.dtype, int(codes.shape[0])))

    @contextlib.contextmanager
    def _no_room_named(self) -> Iterator[None]:
        """A full disk (or file size limit) while writing the scratch file, reported as the codes file's
        :class:`~latentscenes.utils.io.DiskFullError` (buffered writes may fail only when the file is closed)."""
        try:
            yield
        except OSError as e:
            full = disk_full(e, self.path)
            if full is None:
                raise
            raise full from None

    def close(self) -> torch.Tensor:
        """Write ``path`` (atomically) and return its codes ``[n, 3, H, W]``, memory-mapped."""
        with self._no_room_named():
            self._fh.close()
        if self._shape is None:
            raise ValueError(f"{self.path}: no image codes were written")
        dtype = _widest(d for d, _ in self._segments)
        n = sum(r for _, r in self._segments)
        per_row = int(np.prod(self._shape))
        shape = [n, *self._shape]
        nbytes = n * per_row * torch.empty((), dtype=dtype).element_size()
        header = {"codes": {"dtype": _ST_DTYPES[dtype], "shape": shape, "data_offsets": [0, nbytes]},
                  "__metadata__": {"format": IMAGE_CODES_FORMAT}}
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as out, open(self._scratch, "rb") as src:
                out.write(struct.pack("<Q", len(blob)))
                out.write(blob)
                for d, rows in self._segments:  # one scene's rows at a time
                    np_d = _NP_DTYPES[_ST_DTYPES[d]]
                    arr = np.frombuffer(src.read(rows * per_row * np.dtype(np_d).itemsize), dtype=np_d)
                    out.write(arr.astype(_NP_DTYPES[_ST_DTYPES[dtype]], copy=False).tobytes())

        atomic_write(self.path, write)
        self.discard()
        return load_image_codes(self.path, rows=n)

    def discard(self) -> None:
        """Remove the scratch file (idempotent; a write error of the unflushed rest is moot then)."""
        if not self._fh.closed:
            try:
                self._fh.close()
            except OSError:
                pass
        self._scratch.unlink(missing_ok=True)


def load_image_codes(path: str | Path, rows: int | None = None) -> torch.Tensor:
    """The pixel codes of an :class:`ImageCodesWriter` file, memory-mapped (copy-on-write pages of the file).

    Returns:
        ``[n, 3, H, W]`` ``uint8`` / ``uint16`` / ``float32`` (CPU).
    Raises:
        UnreadableFileError: naming ``path``: missing, truncated or damaged, not an image codes file, or another
            number of rows than ``rows`` (None: not checked).
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableFileError(f"{path}: image codes file is missing")
    arr, meta = _memmap_single(path, "codes", UnreadableFileError, "run the command again (it is written again)",
                               "image codes file")
    if meta.get("format") != IMAGE_CODES_FORMAT:
        raise UnreadableFileError(f"{path}: not an image codes file (format {meta.get('format')!r})")
    if arr.ndim != 4 or (rows is not None and arr.shape[0] != rows):
        raise UnreadableFileError(f"{path}: image codes of shape {list(arr.shape)}, expected {rows} rows [n, 3, H, W]")
    return torch.from_numpy(arr)


def _memmap_single(path: Path, key: str, error: type[Exception], fix: str,
                   what: str = "file") -> tuple[np.memmap, dict[str, str]]:
    """``(array, metadata)`` of a safetensors file holding the one tensor ``key``, memory-mapped copy-on-write
    (numpy ``memmap`` at the offset the header gives). Raises ``error`` naming ``path`` when the file is damaged
    or holds other tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:  # validates the header against the file's size
            meta = f.metadata() or {}
            keys = list(f.keys())
    except SafetensorError as e:
        raise error(f"{path}: {what} is truncated or damaged ({e}); {fix}") from None
    if keys != [key]:
        raise error(f"{path}: {what} holds tensors {keys}, expected only {key!r}; {fix}")
    with open(path, "rb") as fh:
        (n_header,) = struct.unpack("<Q", fh.read(8))
        info = json.loads(fh.read(n_header))[key]
    shape, (begin, end) = tuple(info["shape"]), info["data_offsets"]
    np_d = _NP_DTYPES.get(info["dtype"])
    if np_d is None or end - begin != np.dtype(np_d).itemsize * int(np.prod(shape)):
        raise error(f"{path}: {what} tensor {key!r} is {info['dtype']} of shape {list(shape)}; {fix}")
    # mode "c": pages shared with the page cache until written (nothing writes them); a writable array, so
    # torch.from_numpy does not warn about read-only memory.
    arr = np.memmap(path, dtype=np_d, mode="c", offset=8 + n_header + begin, shape=shape)
    return arr, meta


def shift_views(table: ViewTable, grid: int, downsample: int = 8) -> ViewTable:
    """The views of ``table`` at ``grid x grid`` sub-latent-pixel offsets (``data.shift_grid``).

    Copy (k, l) of a view holds the image moved by ``ox = k * downsample // grid`` pixels left and
    ``oy = l * downsample // grid`` pixels up (new pixel (i, j) = old pixel (i + oy, j + ox); the uncovered
    right / bottom border repeats the edge pixels, i.e. the background of an object-centred view), with the
    normalised principal point moved by ``(-ox / W, -oy / H)`` so the camera still explains every pixel.
    Encoded, each copy gives latents whose pixels sit ``(ox, oy)`` image pixels away from the original's:
    together they sample the scene at ``grid`` times the latent resolution along each axis.

    The copies share ``table``'s pixel codes: only their cameras (100 bytes a row) are stored; their images are
    cut per batch by :meth:`ViewTable.batch_images`.

    Args:
        table: views with images ``[N, 3, H, W]`` (a table without copies).
        grid: g >= 1 (1 returns ``table`` unchanged); ``downsample`` must be a multiple of g.
        downsample: the autoencoder's image-to-latent factor (8).
    Returns:
        a table of ``g^2 * N`` rows (``copies`` g^2): copy 0 is ``table`` itself, then the shifted copies in
        (l, k) order.
    Raises:
        ValueError: ``grid < 1``, ``downsample`` not a multiple of ``grid``, or ``table`` already has copies.
    """
    if grid < 1 or downsample % grid:
        raise ValueError(f"shift_grid must be >= 1 and divide the downsampling factor {downsample}, got {grid}")
    if grid == 1:
        return table
    if table.copies != 1:
        raise ValueError(f"shift_views: the table already has {table.copies} copies of each view")
    K = offset_intrinsics(table.K, grid, downsample, table.resolution)  # the one home of the offset convention
    n = grid * grid
    return ViewTable(
        scene_ids=list(table.scene_ids), codes=table.codes, scale=table.scale, c2w=table.c2w.repeat(n, 1, 1),
        K=K, scene_rows=table.scene_rows.repeat(n), copies=n, shift_grid=grid, downsample=downsample,
        codes_file=table.codes_file,
    )


@torch.no_grad()
def cache_latents(
    table: ViewTable, encode: Callable[[torch.Tensor], torch.Tensor], device: torch.device, batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Encode every view once (Encode-Scene targets, paper Sec. 3.2.1 "encoded once, and then cached").

    Args:
        table: views to encode (every row, copies included).
        encode: maps ``[B,3,H,W]`` in [-1,1] to the **normalised** latent ``[B,C,H/8,W/8]`` in (-1, 1), e.g.
            ``lambda x: ae.normalize(ae.encode(x))``. Called under ``no_grad``.
        device: where to run the encoder.
        batch_size: views per forward pass.
        progress: optional callback receiving the number of views just encoded.
    Returns:
        ``[N, C, h, w]`` float32 on the CPU, row-aligned with ``table`` (one allocation, filled batch by batch).
    """
    out: torch.Tensor | None = None
    for i in range(0, len(table), batch_size):
        rows = torch.arange(i, min(i + batch_size, len(table)))
        z = encode(table.batch_images(rows).to(device)).float().cpu()
        if out is None:
            out = torch.empty((len(table), *z.shape[1:]), dtype=torch.float32)
        out[i : i + z.shape[0]] = z
        if progress is not None:
            progress(int(z.shape[0]))
    if out is None:
        raise DatasetError("no views to encode")
    return out


#: Values hashed by :func:`table_fingerprint` (a subsample: hashing every byte of a large table costs seconds).
FINGERPRINT_SAMPLES = 65536


def table_fingerprint(table: ViewTable, chunk_rows: int = 256) -> str:
    """Short hash of the scene ids, view count and image content (detects a stale latent cache).

    The hashed values are those a table of float images in model space would give (every ``step``-th value of
    all rows, copies included, flattened), decoded ``chunk_rows`` rows at a time: a cache written before the
    images were held as codes stays valid when the decoded images are bit-identical (8-bit images at their own
    size).
    """
    h = hashlib.sha256()
    h.update("|".join(table.scene_ids).encode())
    h.update(str(table.image_shape).encode())
    per_row = int(np.prod(table.image_shape[1:]))
    numel = len(table) * per_row
    step = max(1, numel // FINGERPRINT_SAMPLES)
    flat_idx = torch.arange(0, numel, step)
    row_of = flat_idx // per_row
    needed = torch.unique(row_of)
    parts = []
    for i in range(0, needed.numel(), chunk_rows):
        rows = needed[i : i + chunk_rows]
        imgs = table.batch_images(rows).reshape(len(rows), -1)
        sel = (row_of >= rows[0]) & (row_of <= rows[-1])
        pos = torch.searchsorted(rows, row_of[sel])
        parts.append(imgs[pos, flat_idx[sel] - row_of[sel] * per_row])
    h.update(torch.cat(parts).numpy().tobytes())
    h.update(table.c2w.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class LatentCacheError(UnreadableFileError):
    """A latent cache file that cannot be used: truncated or damaged, or not the views' latents. Names the file."""


def save_latent_cache(latents: torch.Tensor, path: Path, fingerprint: str, ae_fingerprint: str) -> None:
    """Write the cached latents as one safetensors file (atomically): tensor ``latents`` ``[N, C, h, w]`` float32,
    metadata ``views`` (:func:`table_fingerprint`) and ``ae`` (the encoder's fingerprint)."""
    atomic_save_safetensors({"latents": latents.contiguous()}, path,
                            metadata={"views": fingerprint, "ae": ae_fingerprint})


def load_latent_cache(path: Path, fingerprint: str, ae_fingerprint: str,
                      rows: int | None = None) -> torch.Tensor | None:
    """The cached latents of ``path``, memory-mapped, if it exists and was written for these views and encoder.

    The tensor is backed by a copy-on-write mapping of the file (numpy ``memmap`` at the offset the safetensors
    header gives): its pages are read on first use and stay the kernel's page cache (reclaimable), not heap.

    Args:
        path: the cache file. fingerprint / ae_fingerprint: what it must have been written for.
        rows: the number of rows it must hold (the table's length); None = not checked.
    Returns:
        ``[N, C, h, w]`` float32 (CPU, memory-mapped), or ``None`` when the file does not exist or its
        fingerprints differ (other views or another encoder: a stale cache, to be encoded again).
    Raises:
        LatentCacheError: naming ``path``: the file is truncated or damaged, has no float32 ``latents``
            tensor of 4 dimensions, or holds another number of rows than ``rows`` although its fingerprints
            match (delete it: the latents are encoded again).
    """
    path = Path(path)
    if not path.exists():
        return None
    fix = "delete it and run again (the latents are encoded again)"
    arr, meta = _memmap_single(path, "latents", LatentCacheError, fix, "latent cache")
    if meta.get("views") != fingerprint or meta.get("ae") != ae_fingerprint:
        return None
    if arr.dtype != np.float32 or arr.ndim != 4:
        raise LatentCacheError(f"{path}: latent cache tensor is {arr.dtype} of shape {list(arr.shape)}, expected "
                               f"float32 [N, C, h, w]; {fix}")
    if rows is not None and arr.shape[0] != rows:
        raise LatentCacheError(f"{path}: latent cache holds {arr.shape[0]} rows for {rows} views although its "
                               f"fingerprints match; {fix}")
    return torch.from_numpy(arr)


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
