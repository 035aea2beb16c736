"""The one internal representation every loader produces.

Conventions, fixed here at the loader boundary and nowhere else:
  * images: ``float32`` in ``[0, 1]``, shape ``[V, 3, H, W]`` (RGB, alpha already composited on the
    dataset's background, white for the built-in dataset). Model code maps to ``[-1, 1]`` itself.
  * masks: optional ``float32`` in ``[0, 1]``, shape ``[V, 1, H, W]`` (1 = object).
  * c2w: ``float32`` ``[V, 4, 4]`` camera-to-world in the **OpenCV** convention (x right, y down,
    z forward), world z-up for the built-in dataset.
  * K: ``float32`` ``[V, 3, 3]`` intrinsics **normalised by image size** (fx/W, fy/H, cx/W, cy/H), so
    the same camera renders the RGB image and its 8x smaller latent (docs/ARCHITECTURE.md, "Conventions").
  * split: per view, ``"train"`` or ``"test"`` (held-out views).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch


class DatasetError(ValueError):
    """Bad input data. The message names the file (or scene folder) and the problem."""


def check_scene_id(scene_id: str, where: str) -> str:
    """Return ``scene_id`` if it can name a file or folder inside an output folder, else raise.

    Scene ids become file names (``scenes/<id>.safetensors``, turntable folders), so each must be one plain
    path component: not empty, not ``.`` or ``..``, no ``/`` or ``\\`` and no NUL.

    Raises:
        DatasetError: naming ``where`` (the file the id came from) and the id.
    """
    if (not isinstance(scene_id, str) or scene_id in ("", ".", "..") or "/" in scene_id or "\\" in scene_id
            or "\x00" in scene_id):
        raise DatasetError(f"{where}: scene id {scene_id!r} is not a plain name (it would be used as a file name; "
                           "no path separators, '.' or '..')")
    return scene_id


def confined_path(root: Path, rel: Any, where: str) -> Path:
    """``root / rel`` for a file path read from a dataset file (``transforms.json``, ``dataset.json``), refusing
    one that would read outside ``root``.

    A path is refused when it is absolute (POSIX or Windows style), or when it uses ``..`` and, resolved
    (symlinks followed), does not lie inside the resolved ``root``. A path without ``..`` that passes through a
    symlinked folder of the user's own dataset is kept: only the path strings in the files are confined.

    Raises:
        DatasetError: naming ``where`` (the file and entry) and the path.
    """
    if not isinstance(rel, str) or not rel.strip() or "\x00" in rel:
        raise DatasetError(f"{where}: file path {rel!r} is not a relative path")
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or PureWindowsPath(rel).drive:
        raise DatasetError(f"{where}: file path {rel!r} is absolute; paths must be relative to {root}")
    p = Path(root) / rel
    if ".." in PurePosixPath(rel.replace("\\", "/")).parts:
        base = Path(root).resolve()
        target = p.resolve()
        if target != base and base not in target.parents:
            raise DatasetError(f"{where}: file path {rel!r} leads outside {root}; paths must stay inside it")
    return p


@dataclass
class SceneViews:
    """All views of one scene, in the internal convention above.

    Attributes:
        scene_id: stable identifier (the scene's folder name).
        images: ``[V, 3, H, W]`` float32 in [0, 1].
        c2w: ``[V, 4, 4]`` float32, OpenCV camera-to-world.
        K: ``[V, 3, 3]`` float32, intrinsics normalised by image width/height.
        split: length-V list of ``"train"`` / ``"test"``.
        masks: optional ``[V, 1, H, W]`` float32 in [0, 1].
        view_names: length-V list of source file stems (for error messages and reports).
        meta: free-form per-scene metadata (aircraft type, livery, mesh id, ...).
    """

    scene_id: str
    images: torch.Tensor
    c2w: torch.Tensor
    K: torch.Tensor
    split: list[str]
    masks: torch.Tensor | None = None
    view_names: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_views(self) -> int:
        return int(self.images.shape[0])

    @property
    def resolution(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    def view_indices(self, split: str) -> list[int]:
        """Indices of the views in ``split`` ("train" or "test")."""
        return [i for i, s in enumerate(self.split) if s == split]

    def subset(self, indices: list[int]) -> "SceneViews":
        idx = torch.as_tensor(indices, dtype=torch.long)
        return SceneViews(
            scene_id=self.scene_id,
            images=self.images[idx],
            c2w=self.c2w[idx],
            K=self.K[idx],
            split=[self.split[i] for i in indices],
            masks=None if self.masks is None else self.masks[idx],
            view_names=[self.view_names[i] for i in indices] if self.view_names else [],
            meta=dict(self.meta),
        )
