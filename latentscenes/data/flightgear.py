"""Build the FlightGear airliners dataset: textured AI aircraft from the Debian package ``flightgear-data-ai``.

Pipeline (``build_flightgear``):
  1. enumerate instances: every livery XML under ``AI/Aircraft`` whose ``<PropertyList include=...>`` chain
     leads to a top-level ``<path>X.ac</path>``; textures are searched in the livery's ``<texture-path>``
     (relative to the livery XML's folder, then to the aircraft folder) and then next to the ``.ac`` file.
     Dropped, with the reason written to ``build_log.txt`` and ``manifest.json``: non-airplanes (Dromader,
     ferry, space shuttle, balloons, bombs, probes, separate wheels, light models), the z-fighting
     ``fokker70.ac``, unresolved textures, duplicate (mesh, textures) pairs, and meshes that fail to load;
  2. split: a fraction of whole airframe meshes (``exploit_mesh_fraction``, chosen by the seed) is held out
     of ``train``; all liveries of those meshes form the ``exploit`` split;
  3. optional subset (``num_instances``): deterministic, keeps both splits populated, spreads the pick over
     as many airframes as possible (one livery per mesh per round);
  4. per instance: load with Assimp (:mod:`latentscenes.data.meshes`), normalise (z-up, centred, farthest
     vertex at ``radius``), render ``views + test_views`` cameras with TinyRenderer at 2x and downsample
     (:mod:`latentscenes.data.render`), and write the SRN layout into a temporary folder that is renamed to
     its final name only when complete (``scene.json`` is the last file written). An interrupted build
     resumes: finished scene folders are kept, temporary folders are removed and redone;
  5. ``manifest.json`` (written atomically at the end) lists every scene, its metadata, its view splits,
     the dataset splits, the camera distribution and the renderer's ``near/far/box_size``.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import re
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latentscenes.data.types import DatasetError
from latentscenes.rendering.cameras import sample_band_cameras

DEFAULT_FG_ROOT = Path("/usr/share/games/flightgear/AI/Aircraft")
INSTALL_HINT = (
    "the FlightGear AI aircraft are missing: install them with `sudo apt-get install -y flightgear-data-ai` "
    "(or, without root: `apt-get download flightgear-data-ai && dpkg-deb -x flightgear-data-ai_*.deb DIR` and "
    "pass --fg-root DIR/usr/share/games/flightgear/AI/Aircraft)"
)

# Not airplanes, or not a whole airframe, or known to render badly (the reason of each is its value).
EXCLUDED_FOLDERS = {"dromader": "not an airliner-like airplane (crop duster with light rigs)", "ferry": "not an airplane (ferry boat)",
                    "spaceshuttle": "not an airplane (space shuttle parts)", "balloon": "not an airplane (balloons)"}
EXCLUDED_MESH_STEMS = {"wheels": "separate wheels, not a whole airframe", "probe": "refuelling probe, not an airframe",
                       "fokker70": "detailed fokker70.ac z-fights (the AI F70 model is used instead)"}
EXCLUDED_MESH_PATTERNS = [
    (re.compile(r"^bomb"), "a bomb, not an airplane"),
    (re.compile(r"light(?!ning)|flare|toggle|strobe|beacon|cone"), "a light model, not an airframe"),
    (re.compile(r"exhaust|banner|tank|refuel"), "an attachment (exhaust, banner, tank, refuelling gear), not an airframe"),
]


class FlightGearMissing(DatasetError):
    """The FlightGear AI aircraft folder is absent (the message gives the install command)."""


@dataclass
class FlightGearBuildConfig:
    """Options of ``latentscenes data build flightgear``.

    Attributes:
        out: output folder (created; an existing partial build in it is resumed).
        num_instances: number of instances to build (None = all usable ones); a deterministic subset.
        views: training views per instance.
        test_views: held-out test views per instance (same camera distribution, different draws).
        resolution: output image side in pixels.
        supersample: render at ``resolution * supersample`` and box-downsample.
        seed: seed of the split, the subset and every camera draw.
        workers: rendering processes (1 = in this process).
        fg_root: FlightGear ``AI/Aircraft`` folder.
        radius: the farthest vertex of every normalised airplane lies at this distance from the origin.
        distance: camera distance from the origin (world units).
        distance_jitter: relative uniform jitter of the distance (0 = fixed distance).
        fov_deg: full field of view (square images), degrees.
        elevation_min_deg, elevation_max_deg: camera elevation band (uniform in area on the sphere).
        box_size: edge of the scene box [-box/2, box/2]^3 recorded for the renderer.
        exploit_mesh_fraction: fraction of airframe meshes held out of ``train`` (their liveries = ``exploit``).
        light_dir: direction towards the fixed world-space light (z-up).
    """

    out: Path = Path("data/flightgear")
    num_instances: int | None = None
    views: int = 50
    test_views: int = 10
    resolution: int = 128
    supersample: int = 2
    seed: int = 0
    workers: int = 2
    fg_root: Path = DEFAULT_FG_ROOT
    radius: float = 0.9
    distance: float = 2.3
    distance_jitter: float = 0.0
    fov_deg: float = 50.0
    elevation_min_deg: float = -15.0
    elevation_max_deg: float = 60.0
    box_size: float = 2.0
    exploit_mesh_fraction: float = 0.1
    light_dir: tuple[float, float, float] = (0.4, -0.3, 0.85)

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


@dataclass
class Instance:
    """One airplane instance (airframe mesh + livery) found in the FlightGear tree."""

    scene_id: str
    aircraft_type: str
    livery: str
    xml: str  # relative to fg_root
    mesh_id: str  # .ac path relative to fg_root
    textures: dict[str, str] = field(default_factory=dict)  # name in the .ac -> absolute path


def _stable_int(*parts: Any) -> int:
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little")


def _sanitize(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "x"


def _parse_xml(path: Path) -> ET.Element | None:
    try:
        return ET.parse(path).getroot()
    except (ET.ParseError, OSError, UnicodeDecodeError):
        return None


def _resolve_chain(xml: Path, aircraft_dir: Path, depth: int = 0) -> tuple[Path | None, str | None, str | None, Path | None]:
    """Follow ``include`` attributes; returns (mesh path, texture-path, description, folder of texture-path)."""
    root = _parse_xml(xml)
    if root is None or root.tag != "PropertyList" or depth > 8:
        return None, None, None, None
    mesh = tex = desc = None
    tex_base = None
    inc = root.get("include")
    if inc:
        for base in (xml.parent, aircraft_dir):
            cand = base / inc
            if cand.is_file():
                mesh, tex, desc, tex_base = _resolve_chain(cand, aircraft_dir, depth + 1)
                break
    p = root.find("path")
    if p is not None and p.text and p.text.strip().lower().endswith(".ac"):
        rel = p.text.strip()
        for base in (xml.parent, aircraft_dir, aircraft_dir.parent):
            cand = (base / rel)
            if cand.is_file():
                mesh = cand.resolve()
                break
        else:
            mesh = Path("/nonexistent") / rel  # recorded as missing
    t = root.find("texture-path")
    if t is not None and t.text and t.text.strip():
        tex, tex_base = t.text.strip(), xml.parent
    d = root.find("description")
    if d is not None and d.text and d.text.strip():
        desc = d.text.strip()
    return mesh, tex, desc, tex_base


_AC_TEX = re.compile(rb'^texture\s+"([^"]*)"', re.MULTILINE)


def ac_texture_names(ac: Path) -> list[str]:
    """Texture file names referenced by an AC3D file (``texture "..."`` lines), sorted and unique."""
    return sorted({m.decode("utf-8", "replace") for m in _AC_TEX.findall(ac.read_bytes()) if m.strip()})


def _find_file(folder: Path, name: str) -> Path | None:
    cand = folder / name
    if cand.is_file():
        return cand.resolve()
    base = Path(name).name
    cand = folder / base
    if cand.is_file():
        return cand.resolve()
    if folder.is_dir():
        low = base.lower()
        for f in folder.iterdir():
            if f.name.lower() == low and f.is_file():
                return f.resolve()
    return None


def _exclusion(aircraft_dir: str, mesh: Path) -> str | None:
    if aircraft_dir.lower() in EXCLUDED_FOLDERS:
        return EXCLUDED_FOLDERS[aircraft_dir.lower()]
    stem = mesh.stem.lower()
    if stem in EXCLUDED_MESH_STEMS:
        return EXCLUDED_MESH_STEMS[stem]
    for pat, why in EXCLUDED_MESH_PATTERNS:
        if pat.search(stem):
            return why
    if any(p.lower() in ("light", "lights") for p in mesh.parts[-4:-1]):
        return "a light model, not an airframe"
    return None


def enumerate_instances(fg_root: str | Path) -> tuple[list[Instance], list[dict[str, str]]]:
    """Find every (airframe mesh, livery) instance under ``fg_root`` (the ``AI/Aircraft`` folder).

    Returns:
        ``(instances, dropped)``: instances sorted by ``scene_id``; ``dropped`` is a list of
        ``{"xml", "reason"}`` for every candidate livery that was not kept.

    Raises:
        FlightGearMissing: if ``fg_root`` does not exist or holds no aircraft.
    """
    fg_root = Path(fg_root)
    if not fg_root.is_dir():
        raise FlightGearMissing(f"{fg_root}: {INSTALL_HINT}")
    tex_cache: dict[Path, list[str]] = {}
    found: list[Instance] = []
    dropped: list[dict[str, str]] = []
    seen: dict[tuple, str] = {}
    for xml in sorted(fg_root.rglob("*.xml")):
        rel = xml.relative_to(fg_root)
        if len(rel.parts) < 2:
            continue
        aircraft_dir = fg_root / rel.parts[0]
        mesh, tex_path, desc, tex_base = _resolve_chain(xml, aircraft_dir)
        if mesh is None:
            continue  # not a model XML (lights, effects, fallback lists...)
        if not mesh.is_file():
            dropped.append({"xml": str(rel), "reason": f"mesh {mesh} not found"})
            continue
        why = _exclusion(rel.parts[0], mesh)
        if why:
            dropped.append({"xml": str(rel), "reason": why})
            continue
        if mesh not in tex_cache:
            try:
                tex_cache[mesh] = ac_texture_names(mesh)
            except OSError as e:
                tex_cache[mesh] = []
                dropped.append({"xml": str(rel), "reason": f"cannot read {mesh}: {e}"})
                continue
        names = tex_cache[mesh]
        folders: list[Path] = []
        if tex_path:
            for base in (tex_base or xml.parent, aircraft_dir):
                if (base / tex_path).is_dir():
                    folders.append(base / tex_path)
                    break
            else:
                dropped.append({"xml": str(rel), "reason": f"texture-path {tex_path} not found"})
                continue
        folders.append(mesh.parent)
        textures: dict[str, str] = {}
        missing = []
        for n in names:
            hit = None
            for fo in folders:
                hit = _find_file(fo, n)
                if hit is not None:
                    break
            if hit is None:
                missing.append(n)
            else:
                textures[n] = str(hit)
        if missing:
            dropped.append({"xml": str(rel), "reason": f"textures not found: {', '.join(missing)}"})
            continue
        mesh_id = str(mesh.relative_to(fg_root.resolve())) if mesh.is_relative_to(fg_root.resolve()) else str(mesh)
        key = (mesh_id, tuple(sorted(textures.items())))
        if key in seen:
            dropped.append({"xml": str(rel), "reason": f"duplicate of {seen[key]} (same mesh and textures)"})
            continue
        seen[key] = str(rel)
        livery = Path(tex_path).name if tex_path else "default"
        found.append(
            Instance(
                scene_id="",
                aircraft_type=desc or mesh.stem,
                livery=livery,
                xml=str(rel),
                mesh_id=mesh_id,
                textures=textures,
            )
        )
    if not found and not dropped:
        raise FlightGearMissing(f"{fg_root}: no aircraft found; {INSTALL_HINT}")
    # scene ids: the livery XML's stem; prefix the aircraft folder when two folders share a stem
    stems: dict[str, int] = {}
    for inst in found:
        s = _sanitize(Path(inst.xml).stem)
        stems[s] = stems.get(s, 0) + 1
    for inst in found:
        s = _sanitize(Path(inst.xml).stem)
        inst.scene_id = s if stems[s] == 1 else _sanitize(Path(inst.xml).parts[0] + "__" + Path(inst.xml).stem)
    found.sort(key=lambda i: i.scene_id)
    return found, dropped


def assign_splits(instances: list[Instance], exploit_mesh_fraction: float, seed: int) -> tuple[dict[str, str], list[str]]:
    """Hold out whole airframe meshes: returns ``({scene_id: "train"|"exploit"}, held_out_mesh_ids)``.

    ``ceil(fraction * n_meshes)`` meshes (at least 1, at most n_meshes - 1) are chosen by a seeded
    permutation of the sorted mesh ids; every livery of a held-out mesh is in ``exploit``.
    """
    meshes = sorted({i.mesh_id for i in instances})
    if len(meshes) < 2:
        raise DatasetError("need at least two airframe meshes to hold one out for the exploit split")
    k = min(len(meshes) - 1, max(1, math.ceil(exploit_mesh_fraction * len(meshes))))
    rng = np.random.default_rng(_stable_int("holdout", seed) % (2**63))
    held = sorted(meshes[j] for j in rng.permutation(len(meshes))[:k])
    hs = set(held)
    return {i.scene_id: ("exploit" if i.mesh_id in hs else "train") for i in instances}, held


def _spread_order(pool: list[Instance], seed: int, tag: str) -> list[Instance]:
    """Order a pool so that a prefix covers as many meshes as possible: round r takes the r-th livery of each mesh."""
    by_mesh: dict[str, list[Instance]] = {}
    for i in pool:
        by_mesh.setdefault(i.mesh_id, []).append(i)
    rng = np.random.default_rng(_stable_int("subset", tag, seed) % (2**63))
    meshes = sorted(by_mesh)
    meshes = [meshes[j] for j in rng.permutation(len(meshes))]
    for m in meshes:
        lst = sorted(by_mesh[m], key=lambda i: i.scene_id)
        by_mesh[m] = [lst[j] for j in rng.permutation(len(lst))]
    out: list[Instance] = []
    r = 0
    while len(out) < len(pool):
        for m in meshes:
            if r < len(by_mesh[m]):
                out.append(by_mesh[m][r])
        r += 1
    return out


def select_instances(instances: list[Instance], splits: dict[str, str], num: int | None, seed: int) -> list[Instance]:
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
    chosen = _spread_order(train, seed, "train")[:n_tr] + _spread_order(expl, seed, "exploit")[:n_ex]
    return sorted(chosen, key=lambda i: i.scene_id)


# ----------------------------------------------------------------------------------------------------------
# per-process rendering state (one TinyRenderer per worker, the last mesh kept uploaded)
_STATE: dict[str, Any] = {}


def _worker_init(cfg_dict: dict[str, Any]) -> None:
    from latentscenes.data.render import RenderSettings, TinyRenderer

    cfg = FlightGearBuildConfig(**{**cfg_dict, "out": Path(cfg_dict["out"]), "fg_root": Path(cfg_dict["fg_root"]),
                                   "light_dir": tuple(cfg_dict["light_dir"])})
    rr = cfg.render_range()
    # clip planes of the rasteriser: a little wider than the ray range so nothing is clipped
    settings = RenderSettings(resolution=cfg.resolution, supersample=cfg.supersample, fov_deg=cfg.fov_deg,
                              near=max(0.05, rr["near"] - 0.2), far=rr["far"] + 0.2, light_dir=cfg.light_dir)
    _STATE.clear()
    _STATE.update(cfg=cfg, renderer=TinyRenderer(settings), mesh_id=None, mesh=None)


def scene_cameras(cfg: FlightGearBuildConfig, scene_id: str) -> np.ndarray:
    """The ``views + test_views`` OpenCV c2w ``[V, 4, 4]`` of a scene (a function of seed and scene id only)."""
    rng = np.random.default_rng([cfg.seed, _stable_int("cams", scene_id) % (2**63)])
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
    from PIL import Image

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


def _render_instance(inst_dict: dict[str, Any]) -> dict[str, Any]:
    """Render and write one instance; returns a record (``ok`` True/False, meta, reason). Runs in a worker."""
    from latentscenes.data.meshes import load_mesh_assimp, normalise_parts
    from latentscenes.data.render import MeshPart, intrinsics_from_fov

    cfg: FlightGearBuildConfig = _STATE["cfg"]
    r = _STATE["renderer"]
    inst = Instance(**inst_dict)
    out = cfg.out
    final = out / inst.scene_id
    t0 = time.time()
    try:
        if _STATE["mesh_id"] != inst.mesh_id:
            _STATE["mesh_id"] = None
            mesh = normalise_parts(load_mesh_assimp(cfg.fg_root / inst.mesh_id), radius=cfg.radius, y_up=True)
            # every textured part must find its file for this livery
            r.set_mesh([MeshPart(p.vertices, p.faces, p.uvs, p.normals, None, p.color) for p in mesh.parts])
            _STATE["mesh_id"], _STATE["mesh"] = inst.mesh_id, mesh
        mesh = _STATE["mesh"]
        parts = []
        for p in mesh.parts:
            tex = None
            if p.texture is not None:
                tex = inst.textures.get(p.texture) or inst.textures.get(Path(p.texture).name)
                if tex is None:
                    raise DatasetError(f"texture {p.texture!r} used by the mesh is not resolved for {inst.xml}")
            parts.append(MeshPart(p.vertices, p.faces, p.uvs, p.normals, tex, p.color))
        r.set_textures(parts)
        c2ws = scene_cameras(cfg, inst.scene_id)
        rgbs, alphas = [], []
        for c2w in c2ws:
            rgb, a = r.render_u8(c2w)
            rgbs.append(rgb)
            alphas.append(a)
        empty = [i for i, a in enumerate(alphas) if int(a.max()) < 128]
        if empty:
            raise DatasetError(f"{len(empty)} views show nothing (e.g. view {empty[0]})")
        border = max(max(int(a[0, :].max()), int(a[-1, :].max()), int(a[:, 0].max()), int(a[:, -1].max())) for a in alphas) / 255.0
        splits = ["train"] * cfg.views + ["test"] * cfg.test_views
        meta = {"scene_id": inst.scene_id, "aircraft_type": inst.aircraft_type, "livery": inst.livery, "mesh_id": inst.mesh_id,
                "xml": inst.xml, "textures": sorted(inst.textures.values()), "scale": mesh.scale, "centre": list(mesh.centre),
                "triangles": mesh.num_triangles, "max_border_alpha": border}
        tmp = out / f".tmp-{inst.scene_id}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        write_srn_scene(tmp, rgbs, alphas, c2ws, intrinsics_from_fov(cfg.fov_deg), splits, meta)
        if final.exists():  # a complete copy appeared meanwhile (should not happen): keep it
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, final)
        return {"ok": True, "scene_id": inst.scene_id, "meta": meta, "seconds": time.time() - t0}
    except Exception as e:  # recorded in the build log; the build goes on
        _STATE["mesh_id"] = None  # the renderer state may be inconsistent: reload the next mesh
        return {"ok": False, "scene_id": inst.scene_id, "xml": inst.xml, "reason": f"{type(e).__name__}: {e}"}


def _is_complete(folder: Path) -> bool:
    return (folder / "scene.json").is_file()


def build_flightgear(cfg: FlightGearBuildConfig, progress: bool = True) -> Path:
    """Build (or resume) the FlightGear dataset into ``cfg.out``; returns the output folder.

    Writes ``<out>/<scene>/{rgb,mask}/*.png``, ``pose/*.txt`` (OpenCV c2w, 16 floats), ``intrinsics.txt``
    (SRN format, pixels), ``scene.json``; ``<out>/manifest.json``; ``<out>/build_log.txt``.

    Raises:
        FlightGearMissing: if the FlightGear aircraft are not installed (message gives the install command).
        ValueError: for inconsistent options.
        DatasetError: if no instance could be rendered.
    """
    cfg.validate()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    instances, dropped = enumerate_instances(cfg.fg_root)
    splits, held = assign_splits(instances, cfg.exploit_mesh_fraction, cfg.seed)
    chosen = select_instances(instances, splits, cfg.num_instances, cfg.seed)
    for stale in out.glob(".tmp-*"):  # half-written scenes of an interrupted build
        shutil.rmtree(stale, ignore_errors=True)
    todo = [i for i in chosen if not _is_complete(out / i.scene_id)]
    for i in todo:  # a folder without scene.json is not complete: redo it
        if (out / i.scene_id).exists():
            shutil.rmtree(out / i.scene_id)
    todo.sort(key=lambda i: (i.mesh_id, i.scene_id))  # consecutive tasks share the uploaded mesh
    cfg_dict = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    records: list[dict[str, Any]] = []
    log_lines = [f"# latentscenes data build flightgear: {len(instances)} usable candidates, {len(dropped)} dropped while enumerating, "
                 f"{len(chosen)} selected, {len(chosen) - len(todo)} already built"]

    def consume(it: Any) -> None:
        from latentscenes.utils.progress import progress_bar

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
            _worker_init(cfg_dict)
            try:
                consume(_render_instance(t) for t in tasks)
            finally:
                _STATE["renderer"].close()
                _STATE.clear()
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(cfg.workers, initializer=_worker_init, initargs=(cfg_dict,)) as pool:
                consume(pool.imap(_render_instance, tasks, chunksize=1))
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
    manifest = {
        "format": "srn",
        "name": "flightgear-airliners",
        "generator": "latentscenes data build flightgear",
        "source": {"package": "flightgear-data-ai", "root": str(cfg.fg_root)},
        "resolution": [cfg.resolution, cfg.resolution],
        "render": cfg.render_range(),
        "camera": {"distribution": "look-at origin, azimuth uniform, uniform area in the elevation band, z-up",
                   "distance": cfg.distance, "distance_jitter": cfg.distance_jitter, "fov_deg": cfg.fov_deg,
                   "elevation_deg": [cfg.elevation_min_deg, cfg.elevation_max_deg], "radius": cfg.radius,
                   "light_dir_world": list(cfg.light_dir), "supersample": cfg.supersample},
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
    }
    from latentscenes.utils.io import atomic_write_text

    elapsed = time.time() - t_start
    log_lines.append(f"# built now: {sum(1 for r in records if r['ok'])}, failed: {len(failed)}, elapsed {elapsed:.1f} s")
    log_lines += [f"dropped\t{d['xml']}\t{d['reason']}" for d in dropped]
    atomic_write_text(out / "build_log.txt", "\n".join(log_lines) + "\n")
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return out
