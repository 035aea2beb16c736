"""Data views: a dataset folder whose scenes are symlinks into other built datasets, with a merged ``manifest.json``
whose ``splits`` name them (``latentscenes data view``).

A view trains or evaluates on a chosen subset or mix of built scenes without copying images: a benchmark's exploit
scenes on their own, or the built-in airliners next to other objects (a user's products, the pre-training mix's
procedural and URDF objects). This module owns the view's manifest: it is the first source's manifest with
``scenes`` and ``splits`` replaced and a ``view`` section naming the sources and the command that made it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from latentscenes.data.types import DatasetError
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
        if parts[2].isdigit():
            return cls(root, split, n=int(parts[2]))
        return cls(root, split, ids=tuple(parts[2].split(",")))

    def spec(self) -> str:
        tail = "" if self.n is None and self.ids is None else ":" + (str(self.n) if self.n is not None else ",".join(self.ids or ()))
        return f"{self.root}:{self.split}{tail}"


def _read_manifest(root: Path) -> dict[str, Any]:
    mp = root / "manifest.json"
    if not mp.is_file():
        raise DatasetError(f"{mp}: no manifest.json (a view takes scenes by their manifest split)")
    try:
        m = json.loads(mp.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{mp}: not valid JSON ({e})") from e
    if not isinstance(m, dict):
        raise DatasetError(f"{mp}: manifest must be a JSON object")
    return m


def build_view(out: str | Path, takes: list[Take], name: str | None = None) -> dict[str, Any]:
    """Write the view ``out``: one symlink per taken scene (to its resolved folder) and ``out/manifest.json``.

    Args:
        out: the view's folder. An existing view there is replaced (its symlinks and manifest only).
        takes: the scenes to take, in order (see :class:`Take`).
        name: the manifest's ``name`` (default: ``view of <sources>``).
    Returns:
        the view's manifest (as written).
    Raises:
        DatasetError: a source without a manifest or the split, an unknown scene id, ``n`` above the split's size,
            a scene taken twice, sources whose camera / render bounds / image size differ, or ``out`` holding
            anything but symlinks and a manifest (it is not a view: never replaced).
    """
    out = Path(out)
    if not takes:
        raise DatasetError(f"{out}: a view needs at least one --take")
    manifests: dict[Path, dict[str, Any]] = {}
    links: dict[str, Path] = {}
    scenes: dict[str, Any] = {}
    splits: dict[str, list[str]] = {}
    for t in takes:
        m = manifests.get(t.root) or manifests.setdefault(t.root, _read_manifest(t.root))
        mp = t.root / "manifest.json"
        src = (m.get("splits") or {}).get(t.split)
        if not isinstance(src, list):
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
            if i in links:
                raise DatasetError(f"scene {i!r} taken twice (from {links[i].parent} and {t.root})")
            folder = (t.root / i).resolve()
            if not folder.is_dir():
                raise DatasetError(f"{t.root / i}: scene folder missing (listed in {mp})")
            links[i] = folder
            scenes[i] = (m.get("scenes") or {}).get(i, {"scene_id": i})
            splits.setdefault(t.split, []).append(i)
    first_root, first = next(iter(manifests.items()))
    for root, m in manifests.items():
        for key in SHARED_SECTIONS:
            if m.get(key) != first.get(key):
                raise DatasetError(f"{root / 'manifest.json'}: {key} {m.get(key)} differs from {first_root}'s "
                                   f"{first.get(key)}: a view's scenes must share camera, bounds and image size")

    if out.exists():
        stray = [p for p in out.iterdir() if p.name != "manifest.json" and not p.is_symlink()]
        if stray:
            raise DatasetError(f"{out}: holds {stray[0].name!r}, not a symlink: not a view, not replaced")
        for p in out.iterdir():
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    for i, folder in links.items():
        os.symlink(folder, out / i)
    # counts / views_per_scene describe a build's own scenes: kept only where they still hold
    manifest = {k: v for k, v in first.items() if k not in ("scenes", "splits", "counts", "views_per_scene")}
    per_view = {json.dumps(m.get("views_per_scene"), sort_keys=True) for m in manifests.values()}
    if len(per_view) == 1 and first.get("views_per_scene") is not None:
        manifest["views_per_scene"] = first["views_per_scene"]
    manifest["name"] = name or "view of " + ", ".join(str(r) for r in manifests)
    manifest["view"] = {
        "command": f"latentscenes data view --out {out}" + "".join(f" --take {t.spec()}" for t in takes),
        "sources": {str(r): m.get("name") for r, m in manifests.items()},
    }
    manifest["splits"] = splits
    manifest["scenes"] = scenes
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest
