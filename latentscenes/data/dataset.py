"""A multi-scene dataset: a folder of scenes in any supported layout, with an optional ``manifest.json``.

``manifest.json`` (written by ``latentscenes data build flightgear`` / ``torcs``; optional for other data) may hold:
  * ``"scenes"``: ``{scene_id: {metadata...}}``; when present it is the list of scenes;
  * ``"splits"``: ``{"train": [...], "exploit": [...]}`` dataset-level scene splits (without a manifest,
    or without ``"splits"``, every scene is in ``"train"`` and ``"exploit"`` is empty);
  * ``"render"``: ``{"near", "far", "box_size"}`` for the renderer (defaults 0.5, 2.1, 2.0: the paper's
    values for ShapeNet cars at camera radius 1.3).
A root holding an EG3D ``dataset.json`` whose labels live in several ``<scene>/...`` folders is also a
multi-scene dataset (one scene per first path component).
Without a manifest scene list every sub-folder is a scene, except names starting with ``.`` or ``_`` and
``validation/`` (``data validate``'s figures): a sub-folder of unknown layout is an error, never skipped.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

from latentscenes.data.loaders import _load_json, detect_layout, load_eg3d_scene, load_scene, read_eg3d_labels
from latentscenes.data.types import DatasetError, SceneViews, check_scene_id

RENDER_DEFAULTS = {"near": 0.5, "far": 2.1, "box_size": 2.0}
SPLIT_NAMES = ("train", "exploit")
#: Sub-folders of a dataset root that are not scenes: ``data validate``'s default figures folder.
NOT_SCENES = ("validation",)


def read_manifest(path: Path) -> dict[str, Any]:
    """A dataset's ``manifest.json``, read and checked (:func:`_check_manifest`).

    Raises:
        DatasetError: naming ``path``: missing, not JSON, not an object, or a section of the wrong shape.
    """
    manifest = _load_json(path)
    if not isinstance(manifest, dict):
        raise DatasetError(f"{path}: manifest must be a JSON object")
    _check_manifest(manifest, path)
    return manifest


def _check_manifest(manifest: dict, path: Path) -> None:
    """Refuse manifest sections of the wrong shape: they would be ignored, or misread (a split given as one
    string would be read letter by letter).

    Raises:
        DatasetError: naming ``path`` and the section: ``scenes`` not an object; ``splits`` not an object of
            scene-id lists; ``render`` not an object, or its near/far/box_size not finite numbers.
    """
    if "scenes" in manifest and not isinstance(manifest["scenes"], dict):
        raise DatasetError(f"{path}: 'scenes' must be an object {{scene_id: {{...}}}}, not "
                           f"{type(manifest['scenes']).__name__}")
    splits = manifest.get("splits")
    if splits is not None and not (isinstance(splits, dict) and all(
            isinstance(ids, list) and all(isinstance(s, str) for s in ids) for ids in splits.values())):
        raise DatasetError(f"{path}: 'splits' must be an object of scene-id lists, e.g. "
                           '{"train": ["s0", "s1"], "exploit": ["s2"]}')
    render = manifest.get("render")
    if render is None:
        return
    if not isinstance(render, dict):
        raise DatasetError(f"{path}: 'render' must be an object with near, far and box_size")
    for k in RENDER_DEFAULTS:
        v = render.get(k)
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)):
            raise DatasetError(f"{path}: render.{k} must be a finite number, not {v!r}")


def _scene_folders(root: Path) -> list[str]:
    """The scene sub-folders of a root without a manifest scene list (names starting with ``.`` or ``_`` and
    :data:`NOT_SCENES` are not scenes).

    Raises:
        DatasetError: a sub-folder of unknown layout next to scenes (it would otherwise be dropped without a
            word); the message names it and how to skip it. A root with no scene at all is left to the caller
            (it may be a single scene, whose rgb/ or images/ folders are not scenes either).
    """
    ids, unknown = [], []
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.startswith((".", "_")):
            continue
        try:
            detect_layout(d)
        except DatasetError as e:
            if d.name not in NOT_SCENES:
                unknown.append(e)
            continue
        ids.append(d.name)
    if ids and unknown:
        more = f" ({len(unknown) - 1} more folder(s) like it)" if len(unknown) > 1 else ""
        raise DatasetError(f"{unknown[0]}{more}; fix it, or rename it to start with '_' to leave it out of the dataset")
    return ids


class MultiSceneDataset:
    """Scenes under ``root`` (sorted ids), loaded lazily with an LRU cache.

    Args:
        root: dataset folder.
        resolution: resize every image to this square size at load time (area averaging), or None.
        cache_size: number of loaded scenes kept in memory (a 60-view 128x128 scene is about 12 MB).

    Raises:
        DatasetError: if ``root`` does not exist, its manifest is malformed (not JSON, or a section of the wrong
            shape), it holds no scene, or (without a manifest scene list) a sub-folder of unknown layout sits
            next to its scenes.
    """

    def __init__(self, root: str | Path, resolution: int | None = None, cache_size: int = 16) -> None:
        self.root = Path(root)
        self.resolution = resolution
        self.cache_size = max(1, int(cache_size))
        self._cache: OrderedDict[str, SceneViews] = OrderedDict()
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset folder not found")
        mp = self.root / "manifest.json"
        self.manifest: dict[str, Any] = read_manifest(mp) if mp.is_file() else {}
        self._eg3d_root = None
        if isinstance(self.manifest.get("scenes"), dict) and self.manifest["scenes"]:
            ids = list(self.manifest["scenes"])
        elif (self.root / "dataset.json").is_file() and not (self.root / "rgb").is_dir():
            labels = read_eg3d_labels(self.root / "dataset.json")
            ids = sorted({Path(p).parts[0] for p, _, _ in labels if len(Path(p).parts) > 1})
            self._eg3d_root = self.root / "dataset.json"
        else:
            ids = _scene_folders(self.root)
        if not ids:
            raise DatasetError(f"{self.root}: no scenes found (no manifest scenes and no scene sub-folders)")
        for sid in ids:
            check_scene_id(sid, str(mp if mp.is_file() else self.root))
        self._ids = sorted(ids)

    @property
    def scene_ids(self) -> list[str]:
        """All scene ids, sorted (deterministic)."""
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def split_scene_ids(self, name: str) -> list[str]:
        """Scene ids of the dataset-level split ``name`` (``"train"`` or ``"exploit"``), sorted.

        Raises:
            DatasetError: for an unknown split name (the message lists the available ones), or if the
                manifest's split lists a scene that is not in the dataset.
        """
        splits = self.manifest.get("splits")
        if not isinstance(splits, dict):
            if name == "train":
                return list(self._ids)
            if name in SPLIT_NAMES:
                return []
            raise DatasetError(f"{self.root}: unknown split {name!r}; available: {', '.join(SPLIT_NAMES)}")
        if name not in splits:
            if name in SPLIT_NAMES:
                return []
            known = sorted(set(splits) | set(SPLIT_NAMES))
            raise DatasetError(f"{self.root}: unknown split {name!r}; available: {', '.join(known)}")
        ids = sorted(splits[name])
        known = set(self._ids)
        bad = [s for s in ids if s not in known]
        if bad:
            raise DatasetError(f"{self.root / 'manifest.json'}: split {name!r} lists unknown scenes {bad[:3]}")
        return ids

    @property
    def render_defaults(self) -> dict[str, float]:
        """``{"near", "far", "box_size"}`` from the manifest's ``"render"`` (defaults 0.5, 2.1, 2.0)."""
        r = self.manifest.get("render") or {}
        return {k: float(r.get(k, v)) for k, v in RENDER_DEFAULTS.items()}

    def scene_meta(self, scene_id: str) -> dict[str, Any]:
        """Metadata of a scene: the manifest entry (aircraft type, livery, mesh id, split...) or ``{}``.

        Raises:
            KeyError: for an unknown scene id.
        """
        if scene_id not in self._ids:
            raise KeyError(f"unknown scene {scene_id!r} in {self.root}")
        scenes = self.manifest.get("scenes")
        if isinstance(scenes, dict) and isinstance(scenes.get(scene_id), dict):
            return dict(scenes[scene_id])
        return {}

    def scene_path(self, scene_id: str) -> Path:
        """Folder of a scene (``root / scene_id``; for an EG3D root, the folder its labels point into)."""
        return self.root / scene_id

    def load(self, scene_id: str) -> SceneViews:
        """Load a scene (LRU-cached; treat the returned tensors as read-only).

        Raises:
            KeyError: for an unknown scene id.
            DatasetError: for bad data (naming the file).
        """
        if scene_id not in self._ids:
            raise KeyError(f"unknown scene {scene_id!r} in {self.root}")
        if scene_id in self._cache:
            self._cache.move_to_end(scene_id)
            return self._cache[scene_id]
        if self._eg3d_root is not None:
            sv = load_eg3d_scene(self._eg3d_root, self.resolution, prefix=scene_id, scene_id=scene_id)
        else:
            path = self.root / scene_id
            if not path.exists():
                raise DatasetError(f"{path}: scene folder listed in {self.root / 'manifest.json'} is missing")
            sv = load_scene(path, self.resolution)
            sv.scene_id = scene_id
        meta = self.scene_meta(scene_id)
        if meta:
            sv.meta = {**sv.meta, **meta}
        self._cache[scene_id] = sv
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return sv
