"""Data views: a dataset folder whose scenes are symlinks into other built datasets, with a merged ``manifest.json``
whose ``splits`` name them (``latentscenes data view``).

A view trains or evaluates on a chosen subset or mix of built scenes without copying images: a benchmark's exploit
scenes on their own, or the built-in airliners next to other objects (a user's products, the pre-training mix's
procedural and URDF objects). This module owns the view's manifest (:func:`build_view`): the sources' shared
conventions, ``splits`` and ``scenes`` of the taken scenes, and a ``view`` section naming the sources and the command
that made it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

from latentscenes.data.dataset import read_manifest
from latentscenes.data.types import DatasetError, check_scene_id
from latentscenes.utils.io import atomic_write_text

#: manifest sections every source of a view must share: mixing them would mix camera or bound conventions
SHARED_SECTIONS = ("camera", "render", "resolution")


@dataclasses.dataclass(frozen=True)
class Take:
    """Scenes taken from one split of one built dataset: the first ``n`` (all when ``n`` and ``ids`` are None), or
    the named ``ids``, in order, into the view's split of the same name."""

    root: Path
    split: str
    n: int | None = None
    ids: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, spec: str) -> "Take":
        """``ROOT:SPLIT``, ``ROOT:SPLIT:N`` or ``ROOT:SPLIT:ID,ID,...``. Raises ValueError on another shape."""
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1] or (len(parts) == 3 and not parts[2]):
            raise ValueError(f"--take {spec!r}: expected ROOT:SPLIT, ROOT:SPLIT:N or ROOT:SPLIT:ID,ID,...")
        root, split = Path(parts[0]), parts[1]
        if len(parts) == 2:
            return cls(root, split)
        if parts[2].isdigit():  # a lone all-digit scene id is read as a count: name it with another beside it
            if int(parts[2]) < 1:
                raise ValueError(f"--take {spec!r}: N must be at least 1")
            return cls(root, split, n=int(parts[2]))
        return cls(root, split, ids=tuple(parts[2].split(",")))

    def spec(self) -> str:
        tail = "" if self.n is None and self.ids is None else ":" + (str(self.n) if self.n is not None else ",".join(self.ids or ()))
        return f"{self.root}:{self.split}{tail}"


def _read_manifest(root: Path) -> dict[str, Any]:
    mp = root / "manifest.json"
    if not mp.is_file():
        raise DatasetError(f"{mp}: no manifest.json (a view takes scenes by their manifest split)")
    return read_manifest(mp)


def _check_replaceable(out: Path) -> None:
    """Refuse an ``out`` that is not absent or an earlier view (symlinks and a manifest only)."""
    if not (out.exists() or out.is_symlink()):
        return
    if out.is_symlink() or not out.is_dir():
        raise DatasetError(f"{out}: exists and is not a folder")
    stray = [p for p in out.iterdir() if p.name != "manifest.json" and not p.is_symlink()]
    if stray:
        raise DatasetError(f"{out}: holds {stray[0].name!r}, not a symlink: not a view, not replaced")


def _clear_view(out: Path) -> None:
    """Remove an earlier view in ``out`` (checked by :func:`_check_replaceable`)."""
    if out.exists():
        for p in out.iterdir():
            p.unlink()
        out.rmdir()


def build_view(out: str | Path, takes: list[Take], name: str | None = None) -> dict[str, Any]:
    """Write the view ``out``: one relative symlink per taken scene (to its real folder) and ``out/manifest.json``.

    The view is assembled in a hidden sibling folder and moved into place at the end, so an error leaves an earlier
    view in ``out`` as it was. Its manifest keeps the sources' shared sections (``format``, ``camera``, ``render``,
    ``resolution``; ``views_per_scene`` where all agree; ``held_out_meshes`` merged) and records each source's
    ``name``, ``generator`` and ``source`` (licences) under ``view.sources``; build statistics and configs are
    dropped (the view is no build: ``ensure_subset`` never grows one).

    Args:
        out: the view's folder. An existing view there is replaced (its symlinks and manifest only).
        takes: the scenes to take, in order (see :class:`Take`; the manifest keeps that order, while
            ``MultiSceneDataset`` lists scene ids sorted).
        name: the manifest's ``name`` (default: ``view of <sources>``).
    Returns:
        the view's manifest (as written).
    Raises:
        DatasetError: a source without a manifest or the split, a malformed source manifest or scene id, an unknown
            scene id, ``n`` above the split's size, a scene taken twice, no scene taken at all, sources whose camera
            / render bounds / image size differ, ``out`` being a file or holding anything but symlinks and a
            manifest (it is not a view: never replaced), or a file-system error while writing (naming the path).
    """
    out = Path(out)
    if not takes:
        raise DatasetError(f"{out}: a view needs at least one --take")
    manifests: dict[Path, dict[str, Any]] = {}
    links: dict[str, tuple[Path, Path]] = {}  # id -> (real folder, the root it was taken from)
    scenes: dict[str, Any] = {}
    splits: dict[str, list[str]] = {}
    for t in takes:
        m = manifests.get(t.root) or manifests.setdefault(t.root, _read_manifest(t.root))
        mp = t.root / "manifest.json"
        src = (m.get("splits") or {}).get(t.split)
        if src is None:
            raise DatasetError(f"{mp}: no split {t.split!r} (has {sorted(m.get('splits') or {})})")
        if t.ids is not None:
            ids = list(t.ids)
            unknown = [i for i in ids if i not in src]
            if unknown:
                raise DatasetError(f"{mp}: scene(s) {unknown} not in split {t.split!r}")
        else:
            if t.n is not None and t.n > len(src):
                raise DatasetError(f"{mp}: split {t.split!r} has {len(src)} scenes, {t.n} asked")
            ids = src[: t.n] if t.n is not None else list(src)
        for i in ids:
            check_scene_id(i, str(mp))
            if i in links:
                raise DatasetError(f"scene {i!r} taken twice (from {links[i][1]} and {t.root})")
            folder = (t.root / i).resolve()
            if not folder.is_dir():
                raise DatasetError(f"{t.root / i}: scene folder missing (listed in {mp})")
            links[i] = (folder, t.root)
            scenes[i] = (m.get("scenes") or {}).get(i, {"scene_id": i})
            splits.setdefault(t.split, []).append(i)
    if not links:
        raise DatasetError(f"{out}: the takes select no scene")
    first_root, first = next(iter(manifests.items()))
    for root, m in manifests.items():
        for key in SHARED_SECTIONS:
            if m.get(key) != first.get(key):
                raise DatasetError(f"{root / 'manifest.json'}: {key} {m.get(key)} differs from {first_root}'s "
                                   f"{first.get(key)}: a view's scenes must share camera, bounds and image size")

    manifest: dict[str, Any] = {k: first[k] for k in ("format", *SHARED_SECTIONS) if k in first}
    manifest["name"] = name or "view of " + ", ".join(str(r) for r in manifests)
    per_view = {json.dumps(m.get("views_per_scene"), sort_keys=True) for m in manifests.values()}
    if len(per_view) == 1 and first.get("views_per_scene") is not None:
        manifest["views_per_scene"] = first["views_per_scene"]
    held_out = sorted({h for m in manifests.values() for h in (m.get("held_out_meshes") or [])})
    if held_out:
        manifest["held_out_meshes"] = held_out
    manifest["view"] = {
        "command": f"latentscenes data view --out {out}" + "".join(f" --take {t.spec()}" for t in takes),
        "sources": {str(r): {k: m.get(k) for k in ("name", "generator", "source") if k in m}
                    for r, m in manifests.items()},
    }
    manifest["splits"] = splits
    manifest["scenes"] = scenes

    _check_replaceable(out)
    out_abs = out.absolute()
    tmp = out_abs.parent / f".{out_abs.name}.view-tmp"
    base = out_abs.parent.resolve() / out_abs.name  # where the links will live; tmp is its sibling
    try:
        if tmp.exists():  # an interrupted earlier call's
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for i, (folder, _) in links.items():
            # relative: the view survives moving or re-mounting the folder that holds it and its sources
            os.symlink(os.path.relpath(folder, base), tmp / i)
        atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=1) + "\n")
        _clear_view(out)
        tmp.rename(out_abs)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(f"{out}: could not write the view ({e})") from e
    return manifest
