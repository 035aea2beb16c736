"""Reuse or build the smallest subset of a built-in dataset that a job needs (``demo``, ``bench``, tests,
experiments).

A job asks for ``n_train`` scenes of the ``train`` split and ``n_exploit`` of the ``exploit`` split at one
resolution. :func:`ensure_flightgear_subset` (airliners), :func:`ensure_torcs_subset` (cars) and
``ensure_subset("pretrain-mix", ...)`` (the base autoencoder's pre-training mix, whose ``num_instances`` is shared
over its sources) reuse a dataset folder that already holds enough scenes (any supported dataset with a ``manifest.json``), and
otherwise build a subset of their source into it, or grow one that an earlier, smaller job built (the
builders resume: finished scenes are kept).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from pathlib import Path
from typing import Any

from latentscenes.config import apply_overrides
from latentscenes.data import MultiSceneDataset
from latentscenes.data.builder import assign_splits, select_instances
from latentscenes.data.types import DatasetError


@dataclasses.dataclass(frozen=True)
class _Source:
    """A built-in dataset source: where its builder lives, and how its manifests name it."""

    label: str  # in messages
    module: str  # holds ``config``, ``build``, ``enumerate_instances``
    config: str
    build: str
    marker: str  # found in a manifest's ``source`` section of this source's builds
    needed: str = ""  # module function ``(n_train, n_exploit, cfg) -> num_instances``; "" = :func:`instances_needed`

    def load(self) -> tuple[Any, Any, Any]:
        """``(config class, build function, enumerate_instances)``, imported on demand (they need pybullet)."""
        mod = importlib.import_module(self.module)
        return getattr(mod, self.config), getattr(mod, self.build), mod.enumerate_instances


SOURCES = {
    "flightgear": _Source("FlightGear", "latentscenes.data.flightgear", "FlightGearBuildConfig", "build_flightgear", "flightgear"),
    "torcs": _Source("TORCS", "latentscenes.data.torcs", "TorcsBuildConfig", "build_torcs", "torcs"),
    # the base autoencoder's pre-training set (several sources; ``num_instances`` is shared over them)
    "pretrain-mix": _Source("pre-training mix", "latentscenes.data.pretrain_mix", "MixBuildConfig", "build_pretrain_mix",
                            "pretrain-mix", needed="instances_needed"),
}


def _source(name: str) -> _Source:
    if name not in SOURCES:
        raise ValueError(f"unknown dataset source {name!r}; known: {', '.join(SOURCES)}")
    return SOURCES[name]


def default_subset_dir(resolution: int, source: str = "flightgear") -> Path:
    """Where ``demo`` and ``bench`` build a subset when no ``--data`` is given (``data/<source>-demo-<res>``)."""
    _source(source)
    return Path("data") / f"{source}-demo-{int(resolution)}"


def instances_needed(n_train: int, n_exploit: int, root: Any, seed: int, exploit_mesh_fraction: float,
                     source: str = "flightgear") -> int:
    """Smallest ``num_instances`` whose deterministic subset of ``source`` (read from its package folder
    ``root``) holds >= ``n_train`` train-split and >= ``n_exploit`` exploit-split instances (the builder keeps
    the full set's exploit share).

    Raises:
        DatasetError: if even every usable instance is not enough.
    """
    src = _source(source)
    _, _, enumerate_instances = src.load()
    inst, _ = enumerate_instances(root)
    splits, _ = assign_splits(inst, exploit_mesh_fraction, seed)
    n_tr_all = sum(1 for v in splits.values() if v == "train")
    n_ex_all = len(inst) - n_tr_all
    if n_train > n_tr_all or n_exploit > n_ex_all:
        raise DatasetError(f"{src.label} has {n_tr_all} train-split and {n_ex_all} exploit-split instances; "
                           f"asked for {n_train} and {n_exploit}")
    share = n_ex_all / len(inst)
    # the subset's exploit count is round(num * share): start just below where it can reach n_exploit
    num = max(n_train + n_exploit, math.floor((n_exploit - 0.5) / share) - 1)
    while num <= len(inst):
        ch = select_instances(inst, splits, num, seed)
        ex = sum(1 for i in ch if splits[i.scene_id] == "exploit")
        if ex >= n_exploit and len(ch) - ex >= n_train:
            return num
        num += 1
    return len(inst)


def _split_counts(root: Path, resolution: int | None) -> tuple[int, int, str]:
    ds = MultiSceneDataset(root, resolution=resolution)
    return len(ds.split_scene_ids("train")), len(ds.split_scene_ids("exploit")), str(ds.manifest.get("name", ""))


def ensure_flightgear_subset(root: str | Path, n_train: int, n_exploit: int, **kw: Any) -> dict[str, Any]:
    """:func:`ensure_subset` of the FlightGear airliners (``data build flightgear``)."""
    return ensure_subset("flightgear", root, n_train, n_exploit, **kw)


def ensure_torcs_subset(root: str | Path, n_train: int, n_exploit: int, **kw: Any) -> dict[str, Any]:
    """:func:`ensure_subset` of the TORCS cars (``data build torcs``): the held-out category."""
    return ensure_subset("torcs", root, n_train, n_exploit, **kw)


def ensure_subset(
    source: str,
    root: str | Path,
    n_train: int,
    n_exploit: int,
    *,
    views: int,
    test_views: int,
    resolution: int,
    seed: int = 0,
    workers: int = 2,
    build_overrides: list[str] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Return once ``root`` holds >= ``n_train`` train-split and >= ``n_exploit`` exploit-split scenes.

    A folder with a ``manifest.json`` and enough scenes is reused as it is (its images are resized to
    ``resolution`` at load time). A build of ``source`` (its name in ``manifest["source"]``, or no manifest
    yet) with too few scenes is built, or grown, with ``num_instances`` from :func:`instances_needed` (or
    ``build_overrides``).

    Args:
        source: ``"flightgear"``, ``"torcs"`` or ``"pretrain-mix"`` (:data:`SOURCES`).
        root: dataset folder. n_train / n_exploit: scenes needed per split.
        views / test_views / resolution / seed / workers: the build's settings (the source's build config).
        build_overrides: ``key=value`` overrides of the build config; any override forces a build
            (which resumes, keeping finished scenes).
        log: called with one line before a build starts.
    Returns:
        ``{"root", "built": bool, "num_instances"?, "train_scenes", "exploit_scenes", "manifest"}``.
    Raises:
        DatasetError: the folder has too few scenes and is not a build of ``source``, a previous build used
            other settings (views, resolution, seed, cameras, split fraction), or the source has too few.
        FlightGearMissing / TorcsMissing: the source's Debian package is not installed (the message gives
            the command).
    """
    src = _source(source)
    root = Path(root)
    info: dict[str, Any] = {"root": str(root), "built": False}
    man_path = root / "manifest.json"
    if man_path.is_file() and not build_overrides:
        n_tr, n_ex, name = _split_counts(root, resolution)
        if n_tr >= n_train and n_ex >= n_exploit:
            return {**info, "train_scenes": n_tr, "exploit_scenes": n_ex, "manifest": name}
        man = json.loads(man_path.read_text())
        if src.marker not in json.dumps(man.get("source", "")).lower():
            raise DatasetError(f"{root}: has {n_tr} train-split and {n_ex} exploit-split scenes; this job needs "
                               f"{n_train} and {n_exploit} (lower the scene counts, or point to a larger dataset)")

    config_cls, build, _ = src.load()
    cfg = config_cls(out=root, views=views, test_views=test_views, resolution=resolution, seed=seed, workers=workers)
    cfg = dataclasses.replace(apply_overrides(cfg, list(build_overrides or [])), out=root)
    if man_path.is_file():
        man = json.loads(man_path.read_text())
        # another builder's output is never grown (the pre-training mix's manifest also names flightgear-data-ai)
        if man.get("generator") not in (None, config_cls.COMMAND):
            raise DatasetError(f"{root} was built by `{man['generator']}`, not `{config_cls.COMMAND}`; "
                               "use another --data folder")
        old = man.get("config", {})
        for k in ("views", "test_views", "resolution", "seed", "distance", "fov_deg", "exploit_mesh_fraction"):
            if k in old and old[k] != getattr(cfg, k):
                raise DatasetError(f"{root} was built with {k}={old[k]} (asked {getattr(cfg, k)}); "
                                   "use another --data folder or remove it")
    if cfg.num_instances is None and src.needed:
        cfg = dataclasses.replace(cfg, num_instances=getattr(importlib.import_module(src.module), src.needed)(
            n_train, n_exploit, cfg))
    elif cfg.num_instances is None:
        cfg = dataclasses.replace(cfg, num_instances=instances_needed(
            n_train, n_exploit, cfg.mesh_root(), cfg.seed, cfg.exploit_mesh_fraction, source=source))
    log(f"building {cfg.num_instances} {src.label} instances into {root} "
        f"({cfg.views}+{cfg.test_views} views at {cfg.resolution} px, {cfg.workers} workers)")
    build(cfg, progress=True)
    n_tr, n_ex, name = _split_counts(root, resolution)
    if n_tr < n_train or n_ex < n_exploit:
        raise DatasetError(f"{root}: has {n_tr} train-split and {n_ex} exploit-split scenes after building; this "
                           f"job needs {n_train} and {n_exploit}")
    return {**info, "built": True, "num_instances": cfg.num_instances, "train_scenes": n_tr,
            "exploit_scenes": n_ex, "manifest": name}
