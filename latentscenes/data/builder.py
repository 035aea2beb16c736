"""The shared pipeline of the offline dataset builders (``data build flightgear``, ``data build torcs``,
``data build pretrain-mix``).

A builder turns textured meshes shipped in a Debian package into a multi-scene SRN-layout dataset. What
depends on the source lives in its own module (:mod:`latentscenes.data.flightgear`,
:mod:`latentscenes.data.torcs`): the build config (a dataclass that mixes in :class:`MeshBuildOptions`), the
enumeration of instances (one mesh + one texture set each) and the manifest's ``source`` section. Everything
else is here and identical for every source:

  1. split: a fraction of whole meshes (``exploit_mesh_fraction``, chosen by the seed) is held out of
     ``train``; every instance of those meshes forms the ``exploit`` split (never-seen geometry, not only
     new paint) (:func:`assign_splits`);
  2. optional subset (``num_instances``): deterministic, keeps both splits populated, spreads the pick over as
     many meshes as possible (:func:`select_instances`);
  3. per instance (:func:`render_instance`, in worker processes): load with Assimp
     (:mod:`latentscenes.data.meshes`), normalise (z-up, centred, farthest vertex at ``radius``), render
     ``views + test_views`` cameras (:func:`scene_cameras`) with TinyRenderer at ``supersample`` x and
     downsample (:mod:`latentscenes.data.render`), and write the SRN layout (:func:`write_srn_scene`) into a
     temporary folder renamed to its final name only when complete (``scene.json`` is its last file). An
     interrupted build resumes: finished scene folders are kept, temporary and incomplete ones are redone;
  4. ``manifest.json`` (written atomically at the end) lists every scene, its metadata, its view splits,
     the dataset splits, the camera distribution and the renderer's ``near/far/box_size``
     (:func:`build_mesh_dataset`).

A source whose instances are not one Assimp mesh file each, or whose split is not the mesh hold-out above,
overrides the config's hooks :meth:`MeshBuildOptions.load_instance_mesh`,
:meth:`MeshBuildOptions.split_instances` and :meth:`MeshBuildOptions.background_of` (the pre-training mix,
:mod:`latentscenes.data.pretrain_mix`, does all three).

An instance is any dataclass with ``scene_id``, ``mesh_id`` (path relative to ``cfg.mesh_root()``), ``xml``
(the source file that defines it, for messages), ``textures`` (``{name in the mesh file: absolute path}``)
and descriptive fields (e.g. ``aircraft_type``, ``livery``) that are copied into the scene's metadata.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
import multiprocessing as mp
import os
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from latentscenes.data.meshes import load_mesh_assimp, normalise_parts
from latentscenes.data.render import MeshPart, RenderSettings, TinyRenderer, intrinsics_from_fov
from latentscenes.data.types import DatasetError
from latentscenes.rendering.cameras import sample_band_cameras
from latentscenes.utils.io import atomic_write_text
from latentscenes.utils.progress import progress_bar

#: Instance fields that are not descriptive metadata (written in their own places in ``scene.json``).
_INSTANCE_KEYS = ("scene_id", "xml", "mesh_id", "textures")
WHITE = (255, 255, 255)


def stable_int(*parts: Any) -> int:
    """A 64-bit integer from ``parts`` that is the same on every machine and run (seeds derived from names)."""
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little")


def debian_changelog_version(doc_dir: str | Path) -> str | None:
    """The Debian package version from the first line of ``<doc_dir>/changelog.Debian.gz`` (None when not found)."""
    try:
        with gzip.open(Path(doc_dir) / "changelog.Debian.gz", "rt", encoding="utf-8", errors="replace") as f:
            m = re.match(r"\S+\s+\(([^)]+)\)", f.readline())
    except OSError:
        return None
    return m.group(1) if m else None


def files_by_licence(scenes: dict[str, Any]) -> dict[str, list[str]]:
    """``{licence: sorted used files}`` from the scenes' ``meta.licences`` (``{file: licence}``): the manifest's
    ``source.licences``."""
    out: dict[str, set[str]] = {}
    for meta in scenes.values():
        for path, lic in meta.get("licences", {}).items():
            out.setdefault(lic, set()).add(path)
    return {k: sorted(v) for k, v in sorted(out.items())}


def sanitize(s: str) -> str:
    """``s`` reduced to ``[A-Za-z0-9._-]`` (runs of other characters become one ``_``): usable as a scene id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "x"


#: The framing every built-in source shares, so that one pre-trained 3Da-AE serves all of them (its MLP and planes
#: learned in this box with these near/far): the farthest vertex of a normalised object at FRAME_RADIUS from the
#: origin, cameras at FRAME_DISTANCE looking at it, the scene box [-FRAME_BOX/2, FRAME_BOX/2]^3, one fixed
#: world-space light. Sources differ only in field of view and elevation band (their configs).
FRAME_RADIUS = 0.9
FRAME_DISTANCE = 2.3
FRAME_BOX = 2.0
FRAME_LIGHT_DIR: tuple[float, float, float] = (0.4, -0.3, 0.85)


class MeshBuildOptions:
    """Behaviour shared by the build configs; mixed into each source's dataclass (it adds no fields, so each
    config keeps its own field order and defaults, and its ``manifest.json["config"]`` stays as it was).

    The dataclass must define the fields ``out, num_instances, views, test_views, resolution, supersample,
    seed, workers, radius, distance, distance_jitter, fov_deg, elevation_min_deg, elevation_max_deg,
    box_size, exploit_mesh_fraction, light_dir``, the class attributes ``DATASET_NAME`` (manifest ``name``)
    and ``COMMAND`` (manifest ``generator``), and the methods :meth:`mesh_root` and :meth:`manifest_source`.
    """

    DATASET_NAME = ""
    COMMAND = ""
    CAMERA_DISTRIBUTION = "look-at origin, azimuth uniform, uniform area in the elevation band, z-up"

    def validate(self) -> None:
        """Raise ``ValueError`` for inconsistent options (the message names the option)."""
        if self.num_instances is not None and self.num_instances < 2:
            raise ValueError("num_instances must be >= 2 (one train and one exploit scene) or None for all")
        if self.views < 1 or self.test_views < 0:
            raise ValueError("views must be >= 1 and test_views >= 0")
        if self.resolution < 8 or self.supersample < 1:
            raise ValueError("resolution must be >= 8 and supersample >= 1")
        if not 0.0 < self.exploit_mesh_fraction < 1.0:
            raise ValueError("exploit_mesh_fraction must be in (0, 1)")
        if not 0.0 <= self.distance_jitter < 0.5:
            raise ValueError("distance_jitter must be in [0, 0.5)")
        dmin = self.distance * (1.0 - self.distance_jitter)
        half = math.radians(self.fov_deg) / 2.0
        if self.radius / dmin > math.sin(half) + 1e-9:
            raise ValueError(
                f"an object of radius {self.radius} leaves the frame at distance {dmin:.3f} with fov {self.fov_deg} deg "
                f"(needs distance >= {self.radius / math.sin(half):.3f})"
            )
        if self.radius * 1.0001 > self.box_size / 2.0:
            raise ValueError("radius must be smaller than box_size / 2")

    def render_range(self) -> dict[str, float]:
        """``near = d_min - box/2``, ``far = d_max + box/2`` (rays cross the whole sphere holding the box's object)."""
        dmin = self.distance * (1.0 - self.distance_jitter)
        dmax = self.distance * (1.0 + self.distance_jitter)
        return {"near": round(dmin - self.box_size / 2.0, 6), "far": round(dmax + self.box_size / 2.0, 6), "box_size": self.box_size}

    def mesh_root(self) -> Path:
        """The folder that instances' ``mesh_id`` paths are relative to."""
        raise NotImplementedError

    def manifest_source(self, scenes: dict[str, Any]) -> dict[str, Any]:
        """The manifest's ``source`` section (package, root, ...); ``scenes``: the built scenes' metadata."""
        raise NotImplementedError

    def scene_meta_extra(self, alphas: list[np.ndarray]) -> dict[str, Any]:
        """Extra per-scene metadata computed from the rendered coverage masks ``[H, W]`` uint8 (none by default)."""
        return {}

    def load_instance_mesh(self, task: dict[str, Any]) -> Any:
        """The normalised :class:`~latentscenes.data.meshes.LoadedMesh` of an instance (``task``: the instance as a
        dict). Parts with a texture hold its *name*, resolved through the instance's ``textures``. Default: the
        Assimp file ``mesh_root() / mesh_id``, y-up, farthest vertex at ``radius``. Workers keep the last mesh
        per ``mesh_id``: an override must give the same mesh for the same ``mesh_id``."""
        return normalise_parts(load_mesh_assimp(self.mesh_root() / task["mesh_id"]), radius=self.radius, y_up=True)

    def background_of(self, task: dict[str, Any]) -> tuple[int, int, int]:
        """The RGB (0..255) an instance's views are composited on: white by default."""
        return WHITE

    def split_instances(self, instances: list[Any]) -> tuple[dict[str, str], list[str], list[Any]]:
        """``({scene_id: "train"|"exploit"}, held_out_mesh_ids, chosen instances)`` of the enumerated instances.

        Default: hold out whole meshes (:func:`assign_splits`) and take the optional subset
        (:func:`select_instances`, ``num_instances``)."""
        splits, held = assign_splits(instances, self.exploit_mesh_fraction, self.seed)
        return splits, held, select_instances(instances, splits, self.num_instances, self.seed)

    def to_jsonable(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (paths as strings), in field order: ``manifest.json["config"]``."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_jsonable(cls, d: dict[str, Any]) -> Any:
        """Inverse of :meth:`to_jsonable`: path fields back to ``Path``, list fields with a tuple default back to tuples."""
        kw = dict(d)
        for f in dataclasses.fields(cls):
            if f.name in kw and kw[f.name] is not None:
                if isinstance(f.default, Path):
                    kw[f.name] = Path(kw[f.name])
                elif isinstance(f.default, tuple):
                    kw[f.name] = tuple(kw[f.name])
        return cls(**kw)


# ------------------------------------------------------------------------------------------------ splits
def assign_splits(instances: list[Any], exploit_mesh_fraction: float, seed: int) -> tuple[dict[str, str], list[str]]:
    """Hold out whole meshes: returns ``({scene_id: "train"|"exploit"}, held_out_mesh_ids)``.

    ``ceil(fraction * n_meshes)`` meshes (at least 1, at most n_meshes - 1) are chosen by a seeded
    permutation of the sorted mesh ids; every instance (livery) of a held-out mesh is in ``exploit``.
    """
    meshes = sorted({i.mesh_id for i in instances})
    if len(meshes) < 2:
        raise DatasetError("need at least two meshes to hold one out for the exploit split")
    k = min(len(meshes) - 1, max(1, math.ceil(exploit_mesh_fraction * len(meshes))))
    rng = np.random.default_rng(stable_int("holdout", seed) % (2**63))
    held = sorted(meshes[j] for j in rng.permutation(len(meshes))[:k])
    hs = set(held)
    return {i.scene_id: ("exploit" if i.mesh_id in hs else "train") for i in instances}, held


def spread_order(pool: list[Any], seed: int, tag: str) -> list[Any]:
    """Order a pool so that a prefix covers as many meshes as possible: round r takes the r-th livery of each mesh."""
    by_mesh: dict[str, list[Any]] = {}
    for i in pool:
        by_mesh.setdefault(i.mesh_id, []).append(i)
    rng = np.random.default_rng(stable_int("subset", tag, seed) % (2**63))
    meshes = sorted(by_mesh)
    meshes = [meshes[j] for j in rng.permutation(len(meshes))]
    for m in meshes:
        lst = sorted(by_mesh[m], key=lambda i: i.scene_id)
        by_mesh[m] = [lst[j] for j in rng.permutation(len(lst))]
    out: list[Any] = []
    r = 0
    while len(out) < len(pool):
        for m in meshes:
            if r < len(by_mesh[m]):
                out.append(by_mesh[m][r])
        r += 1
    return out


def select_instances(instances: list[Any], splits: dict[str, str], num: int | None, seed: int) -> list[Any]:
    """Deterministic subset of ``num`` instances (all when None) keeping both dataset splits populated.

    The exploit share of the subset follows the full set's share (rounded, at least 1 and at most num-1).
    """
    if num is None or num >= len(instances):
        return sorted(instances, key=lambda i: i.scene_id)
    train = [i for i in instances if splits[i.scene_id] == "train"]
    expl = [i for i in instances if splits[i.scene_id] == "exploit"]
    share = len(expl) / max(1, len(instances))
    n_ex = min(len(expl), max(1, min(num - 1, round(num * share))))
    n_tr = min(len(train), num - n_ex)
    chosen = spread_order(train, seed, "train")[:n_tr] + spread_order(expl, seed, "exploit")[:n_ex]
    return sorted(chosen, key=lambda i: i.scene_id)


# ----------------------------------------------------------------------------------------------------------
# per-process rendering state (one TinyRenderer per worker, the last mesh kept uploaded)
_STATE: dict[str, Any] = {}


def _worker_init(cfg_cls: type, cfg_dict: dict[str, Any]) -> None:
    cfg = cfg_cls.from_jsonable(cfg_dict)
    rr = cfg.render_range()
    # clip planes of the rasteriser: a little wider than the ray range so nothing is clipped
    settings = RenderSettings(resolution=cfg.resolution, supersample=cfg.supersample, fov_deg=cfg.fov_deg,
                              near=max(0.05, rr["near"] - 0.2), far=rr["far"] + 0.2, light_dir=cfg.light_dir)
    _STATE.clear()
    _STATE.update(cfg=cfg, renderer=TinyRenderer(settings), mesh_id=None, mesh=None)


def scene_cameras(cfg: Any, scene_id: str) -> np.ndarray:
    """The ``views + test_views`` OpenCV c2w ``[V, 4, 4]`` of a scene (a function of seed and scene id only)."""
    rng = np.random.default_rng([cfg.seed, stable_int("cams", scene_id) % (2**63)])
    return sample_band_cameras(rng, cfg.views + cfg.test_views, cfg.distance, cfg.elevation_min_deg,
                               cfg.elevation_max_deg, cfg.distance_jitter)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.uint8 else np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_srn_scene(folder: Path, rgbs: list[np.ndarray], alphas: list[np.ndarray], c2ws: np.ndarray,
                    K_norm: np.ndarray, splits: list[str], meta: dict[str, Any]) -> None:
    """Write one scene in the SRN layout into ``folder`` (which must not exist yet); ``scene.json`` is last.

    rgbs: ``[H, W, 3]`` uint8 (or float in [0, 1]); alphas: ``[H, W]`` uint8 (or float in [0, 1]); c2ws: ``[V, 4, 4]`` OpenCV;
    K_norm: ``[3, 3]`` normalised intrinsics (written in pixels for H x W in ``intrinsics.txt``).
    """
    for sub in ("rgb", "pose", "mask"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    H, W = rgbs[0].shape[:2]
    names = []
    for v, (rgb, a, c2w) in enumerate(zip(rgbs, alphas, c2ws)):
        name = f"{v:06d}"
        names.append(name)
        Image.fromarray(_to_u8(rgb)).save(folder / "rgb" / f"{name}.png", compress_level=1)
        Image.fromarray(_to_u8(a)).save(folder / "mask" / f"{name}.png", compress_level=1)
        (folder / "pose" / f"{name}.txt").write_text(" ".join(f"{x:.9g}" for x in np.asarray(c2w).reshape(-1)) + "\n")
    fx, fy, cx, cy = K_norm[0, 0] * W, K_norm[1, 1] * H, K_norm[0, 2] * W, K_norm[1, 2] * H
    (folder / "intrinsics.txt").write_text(f"{fx:.9g} {cx:.9g} {cy:.9g} 0.\n0. 0. 0.\n1.\n{H} {W}\n")
    if abs(fx - fy) > 1e-6 * max(fx, 1):
        raise ValueError("SRN intrinsics.txt holds one focal length; fx != fy is not supported")
    views = {"train": [n for n, s in zip(names, splits) if s == "train"], "test": [n for n, s in zip(names, splits) if s == "test"]}
    data = {"scene_id": folder.name if not folder.name.startswith(".") else meta.get("scene_id"), "views": views, "meta": meta}
    (folder / "scene.json").write_text(json.dumps(data, indent=1) + "\n")


def render_instance(task: dict[str, Any]) -> dict[str, Any]:
    """Render and write one instance (``task`` = the instance as a dict); returns a record (``ok`` True/False,
    meta, reason). Runs in a worker initialised by ``_worker_init``."""
    cfg = _STATE["cfg"]
    r = _STATE["renderer"]
    scene_id, mesh_id, xml, textures = task["scene_id"], task["mesh_id"], task["xml"], task["textures"]
    out = cfg.out
    final = out / scene_id
    t0 = time.time()
    try:
        if _STATE["mesh_id"] != mesh_id:
            _STATE["mesh_id"] = None
            mesh = cfg.load_instance_mesh(task)
            # every textured part must find its file for this livery
            r.set_mesh([MeshPart(p.vertices, p.faces, p.uvs, p.normals, None, p.color) for p in mesh.parts])
            _STATE["mesh_id"], _STATE["mesh"] = mesh_id, mesh
        mesh = _STATE["mesh"]
        parts = []
        for p in mesh.parts:
            tex = None
            if p.texture is not None:
                tex = textures.get(p.texture) or textures.get(Path(p.texture).name)
                if tex is None:
                    raise DatasetError(f"texture {p.texture!r} used by the mesh is not resolved for {xml}")
            parts.append(MeshPart(p.vertices, p.faces, p.uvs, p.normals, tex, p.color))
        r.set_textures(parts)
        c2ws = scene_cameras(cfg, scene_id)
        background = tuple(int(c) for c in cfg.background_of(task))
        rgbs, alphas = [], []
        for c2w in c2ws:
            rgb, a = r.render_u8(c2w, background=background)
            rgbs.append(rgb)
            alphas.append(a)
        empty = [i for i, a in enumerate(alphas) if int(a.max()) < 128]
        if empty:
            raise DatasetError(f"{len(empty)} views show nothing (e.g. view {empty[0]})")
        border = max(max(int(a[0, :].max()), int(a[-1, :].max()), int(a[:, 0].max()), int(a[:, -1].max())) for a in alphas) / 255.0
        splits = ["train"] * cfg.views + ["test"] * cfg.test_views
        # descriptive fields first (aircraft type, livery, ...), in the instance's field order
        labels = {k: v for k, v in task.items() if k not in _INSTANCE_KEYS}
        meta = {"scene_id": scene_id, **labels, "mesh_id": mesh_id, "xml": xml, "textures": sorted(textures.values()),
                "scale": mesh.scale, "centre": list(mesh.centre), "triangles": mesh.num_triangles,
                "max_border_alpha": border, **cfg.scene_meta_extra(alphas)}
        tmp = out / f".tmp-{scene_id}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        write_srn_scene(tmp, rgbs, alphas, c2ws, intrinsics_from_fov(cfg.fov_deg), splits, meta)
        if final.exists():  # a complete copy appeared meanwhile (should not happen): keep it
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, final)
        return {"ok": True, "scene_id": scene_id, "meta": meta, "seconds": time.time() - t0}
    except Exception as e:  # recorded in the build log; the build goes on
        _STATE["mesh_id"] = None  # the renderer state may be inconsistent: reload the next mesh
        return {"ok": False, "scene_id": scene_id, "xml": xml, "reason": f"{type(e).__name__}: {e}"}


def _is_complete(folder: Path) -> bool:
    return (folder / "scene.json").is_file()


def coverage_of(alphas: list[np.ndarray]) -> dict[str, float]:
    """``{"mean", "min", "max"}``: the fraction of the frame the object covers (mask mean, in [0, 1]) over a
    scene's coverage masks ``[H, W]`` uint8."""
    cov = [float(a.mean()) / 255.0 for a in alphas]
    return {"mean": round(float(np.mean(cov)), 6), "min": round(min(cov), 6), "max": round(max(cov), 6)}


def _coverage_summary(scenes: dict[str, Any]) -> dict[str, Any] | None:
    """Mean / min / max of the scenes' ``coverage`` metadata (``{"mean", ...}`` per scene), or None without it."""
    cov = [v["coverage"] for v in scenes.values() if isinstance(v.get("coverage"), dict)]
    if not cov:
        return None
    return {"mean": round(float(np.mean([c["mean"] for c in cov])), 6),
            "scene_mean_min": round(float(min(c["mean"] for c in cov)), 6),
            "scene_mean_max": round(float(max(c["mean"] for c in cov)), 6),
            "view_min": round(float(min(c["min"] for c in cov)), 6),
            "view_max": round(float(max(c["max"] for c in cov)), 6),
            "scenes": len(cov)}


def build_mesh_dataset(cfg: Any, enumerate_fn: Callable[[], tuple[list[Any], list[dict[str, str]]]],
                       progress: bool = True, render: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Path:
    """Build (or resume) a dataset into ``cfg.out``; returns the output folder.

    Args:
        cfg: a build config (a dataclass mixing in :class:`MeshBuildOptions`).
        enumerate_fn: returns ``(instances, dropped)``: every usable instance, and ``{"xml", "reason"}`` for
            every candidate left out while enumerating.
        progress: show a progress bar.
        render: the per-instance task (:func:`render_instance` by default); a module-level function when
            ``cfg.workers > 1`` (it is sent to worker processes).

    Writes ``<out>/<scene>/{rgb,mask}/*.png``, ``pose/*.txt`` (OpenCV c2w, 16 floats), ``intrinsics.txt``
    (SRN format, pixels), ``scene.json``; ``<out>/manifest.json``; ``<out>/build_log.txt``.

    Raises:
        ValueError: for inconsistent options.
        DatasetError: if no instance could be rendered (and whatever ``enumerate_fn`` raises).
    """
    render = render or render_instance
    cfg.validate()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    instances, dropped = enumerate_fn()
    splits, held, chosen = cfg.split_instances(instances)
    for stale in out.glob(".tmp-*"):  # half-written scenes of an interrupted build
        shutil.rmtree(stale, ignore_errors=True)
    todo = [i for i in chosen if not _is_complete(out / i.scene_id)]
    for i in todo:  # a folder without scene.json is not complete: redo it
        if (out / i.scene_id).exists():
            shutil.rmtree(out / i.scene_id)
    todo.sort(key=lambda i: (i.mesh_id, i.scene_id))  # consecutive tasks share the uploaded mesh
    cfg_dict = cfg.to_jsonable()
    records: list[dict[str, Any]] = []
    log_lines = [f"# {cfg.COMMAND}: {len(instances)} usable candidates, {len(dropped)} dropped while enumerating, "
                 f"{len(chosen)} selected, {len(chosen) - len(todo)} already built"]

    def consume(it: Any) -> None:
        if progress:
            with progress_bar("render scenes", len(todo)) as (pb, task):
                for rec in it:
                    records.append(rec)
                    pb.update(task, advance=1, info=rec["scene_id"] if rec["ok"] else f"FAILED {rec['scene_id']}")
        else:
            records.extend(it)

    if todo:
        tasks = [asdict(i) for i in todo]
        if cfg.workers <= 1:
            _worker_init(type(cfg), cfg_dict)
            try:
                consume(render(t) for t in tasks)
            finally:
                _STATE["renderer"].close()
                _STATE.clear()
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(cfg.workers, initializer=_worker_init, initargs=(type(cfg), cfg_dict)) as pool:
                consume(pool.imap(render, tasks, chunksize=1))
    failed = {r["scene_id"]: r["reason"] for r in records if not r["ok"]}
    for sid, why in sorted(failed.items()):
        dropped.append({"xml": next(i.xml for i in chosen if i.scene_id == sid), "reason": f"render failed: {why}"})
    scenes: dict[str, Any] = {}
    for i in chosen:
        if i.scene_id in failed or not _is_complete(out / i.scene_id):
            continue
        sj = json.loads((out / i.scene_id / "scene.json").read_text())
        scenes[i.scene_id] = {**sj["meta"], "split": splits[i.scene_id], "views": sj["views"]}
    if not scenes:
        raise DatasetError(f"{out}: no instance could be rendered (see {out / 'build_log.txt'})")
    dsplits = {s: sorted(k for k, v in scenes.items() if v["split"] == s) for s in ("train", "exploit")}
    manifest: dict[str, Any] = {
        "format": "srn",
        "name": cfg.DATASET_NAME,
        "generator": cfg.COMMAND,
        "source": cfg.manifest_source(scenes),
        "resolution": [cfg.resolution, cfg.resolution],
        "render": cfg.render_range(),
        "camera": {"distribution": cfg.CAMERA_DISTRIBUTION,
                   "distance": cfg.distance, "distance_jitter": cfg.distance_jitter, "fov_deg": cfg.fov_deg,
                   "elevation_deg": [cfg.elevation_min_deg, cfg.elevation_max_deg], "radius": cfg.radius,
                   "light_dir_world": list(cfg.light_dir), "supersample": cfg.supersample},
    }
    coverage = _coverage_summary(scenes)
    if coverage is not None:  # only sources whose scenes record their mask coverage (scene_meta_extra)
        manifest["object_coverage"] = coverage
    manifest.update({
        "views_per_scene": {"train": cfg.views, "test": cfg.test_views},
        "splits": dsplits,
        "held_out_meshes": held,
        "exploit_mesh_fraction": cfg.exploit_mesh_fraction,
        "config": cfg_dict,
        "counts": {"candidates_usable": len(instances), "selected": len(chosen), "built": len(scenes),
                   "dropped": len(dropped), "train": len(dsplits["train"]), "exploit": len(dsplits["exploit"]),
                   "meshes": len({v["mesh_id"] for v in scenes.values()})},
        "scenes": scenes,
        "dropped": dropped,
    })
    elapsed = time.time() - t_start
    log_lines.append(f"# built now: {sum(1 for r in records if r['ok'])}, failed: {len(failed)}, elapsed {elapsed:.1f} s")
    log_lines += [f"dropped\t{d['xml']}\t{d['reason']}" for d in dropped]
    atomic_write_text(out / "build_log.txt", "\n".join(log_lines) + "\n")
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return out
