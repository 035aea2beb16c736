"""Build the base autoencoder's pre-training image set: several object sources mixed into one dataset.

``latentscenes data build pretrain-mix`` renders, through the shared pipeline of
:mod:`latentscenes.data.builder` (SRN layout, ``manifest.json``, worker processes, resume, determinism):

  * ``flightgear``: FlightGear AI airliners (Debian ``flightgear-data-ai``, GPL-2+), **train-split meshes
    only**: the airframe meshes that ``data build flightgear`` holds out for its ``exploit`` split (same
    enumeration, same :func:`~latentscenes.data.builder.assign_splits` with that build's seed and fraction,
    ``fg_split_seed`` / ``fg_exploit_mesh_fraction``) never appear, nor do their textures. The pick spreads
    over airframes (one livery per mesh per round, seeded);
  * ``random_urdfs``: pybullet's 1,000 procedural objects (``pybullet_data/random_urdfs``, OBJ meshes inside
    the pybullet wheel, zlib licence), a seeded pick; each gets a seeded random colour or, with probability
    ``textured_fraction``, a texture file of the pool below on spherical UVs;
  * ``primitives``: procedural compound objects generated here (no package): 1 to 3 parts, each a box,
    sphere, cylinder, cone, torus or vase (a random surface of revolution), anisotropically scaled, rotated
    and offset, each part with its own random colour or pool texture;
  * ``sweethome3d``: Sweet Home 3D's furniture catalogues (Debian ``sweethome3d-furniture``, CC0 / CC-BY 3.0;
    :mod:`latentscenes.data.sweethome3d`): real furniture and household models with their own colours and
    textures, a seeded pick; the archives are extracted into ``OUT/_sources/sweethome3d``. None by default
    (``sh3d_instances = 0``): a mix that uses it can no longer measure generalisation on furniture.

The texture pool: the texture files of every FlightGear train-split instance (not only the rendered ones, so
the pool does not change with the counts) and the images at the top of ``pybullet_data``; a textured part
draws one of the two groups, then a file, uniformly (seeded).

**TORCS cars are never used**: they are the held-out category on which the base autoencoder's generalisation
is measured. ``torcs`` is refused as a source, and any mesh or texture file inside a ``torcs`` folder (e.g.
``--fg-root`` pointed into the TORCS tree) stops the build; the manifest's ``source.excluded`` says so.

Splits: within each source, meshes in the order they are picked are held out for ``exploit`` at the rate
``exploit_mesh_fraction`` (the first, then about every 1/fraction-th: rank r is held out when
``ceil((r + 1) f) > ceil(r f)``); every instance of a held-out mesh is ``exploit``. The rule depends only on
the pick order, so a larger build keeps the smaller one's scenes and splits. ``ae pretrain`` trains on the
``train`` scenes and evaluates on ``exploit`` ones (every source contributes some).
"""

from __future__ import annotations

import colorsys
import dataclasses
import importlib.metadata
import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latentscenes.data.builder import (
    FRAME_BOX,
    FRAME_DISTANCE,
    FRAME_LIGHT_DIR,
    FRAME_RADIUS,
    WHITE,
    MeshBuildOptions,
    assign_splits,
    build_mesh_dataset,
    coverage_of,
    debian_changelog_version,
    files_by_licence,
    render_instance,
    spread_order,
    stable_int,
)
from latentscenes.data.flightgear import DEFAULT_FG_ROOT, FlightGearBuildConfig
from latentscenes.data.flightgear import enumerate_instances as enumerate_flightgear
from latentscenes.data.meshes import LoadedMesh, load_mesh_assimp, normalise_parts
from latentscenes.data.render import MeshPart
from latentscenes.data.sweethome3d import DEFAULT_SH3D_ROOT, SOURCES_DIR, enumerate_models
from latentscenes.data.sweethome3d import package_doc_dir as sh3d_doc_dir
from latentscenes.data.types import DatasetError

SOURCE_NAMES = ("flightgear", "random_urdfs", "primitives", "sweethome3d")
#: Sources used only when their count is set (> 0): they never take a share of ``num_instances`` otherwise, so a
#: mix that does not ask for them is the mix it was before they existed.
OPT_IN_SOURCES = ("sweethome3d",)
#: Sources that must never enter the pre-training set, with the reason (refused by name, recorded in the manifest).
EXCLUDED_SOURCES = {
    "torcs": "TORCS cars (torcs-data) are the held-out category on which the base autoencoder's generalisation "
             "is measured (docs/autoencoder.md); they never enter its pre-training set",
}
#: The config field holding each source's instance count.
COUNT_FIELDS = {"flightgear": "flightgear_instances", "random_urdfs": "urdf_instances", "primitives": "primitive_instances",
                "sweethome3d": "sh3d_instances"}
LICENCES = {"flightgear": "GPL-2+", "random_urdfs": "Zlib", "primitives": "Apache-2.0",
            "sweethome3d": "CC0 / CC-BY-3.0 / CC-BY-3.0-USA (per archive)"}
PRIMITIVE_SHAPES = ("box", "sphere", "cylinder", "cone", "torus", "vase")
MAX_PRIMITIVES = 100_000
BACKGROUND_NAMES = {"white": WHITE, "black": (0, 0, 0), "grey": (128, 128, 128), "gray": (128, 128, 128)}
PYBULLET_HINT = "install the pybullet wheel (`pip install pybullet==3.2.7`, scripts/setup.sh does) or pass --urdf-root"


def _pybullet_data_dir() -> Path:
    """``pybullet_data``'s folder, found without importing it (``pybullet_data/`` when pybullet is not installed)."""
    spec = importlib.util.find_spec("pybullet_data")
    if spec is None or not spec.submodule_search_locations:
        return Path("pybullet_data")
    return Path(list(spec.submodule_search_locations)[0])


DEFAULT_URDF_ROOT = _pybullet_data_dir() / "random_urdfs"


class MixSourceMissing(DatasetError):
    """A source of the mix is not installed (the message names the source, the path and how to install it)."""


def parse_background(name: str) -> tuple[int, int, int] | None:
    """RGB 0..255 of ``white|black|grey|#rrggbb``; None for ``random`` (a seeded colour per scene).

    Raises:
        ValueError: naming the value when it is none of those.
    """
    n = name.strip().lower()
    if n == "random":
        return None
    if n in BACKGROUND_NAMES:
        return BACKGROUND_NAMES[n]
    if len(n) == 7 and n.startswith("#"):
        try:
            return tuple(int(n[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        except ValueError:
            pass
    raise ValueError(f"background {name!r}: use white, black, grey, random or #rrggbb")


@dataclass
class MixBuildConfig(MeshBuildOptions):
    """Options of ``latentscenes data build pretrain-mix`` (checks and the render range: :class:`MeshBuildOptions`).

    Attributes:
        out: output folder (created; an existing partial build in it is resumed).
        sources: the sources used (a subset of :data:`SOURCE_NAMES`; ``torcs`` is refused).
        flightgear_instances, urdf_instances, primitive_instances, sh3d_instances: instances per source.
        num_instances: a total that replaces the per-source counts, shared in their proportions (largest
            remainder); None = the per-source counts (``ensure_subset`` sets it).
        views, test_views: training / held-out views per instance.
        resolution, supersample: output image side; render at ``supersample`` x and box-downsample.
        seed: seed of the picks, colours, textures, backgrounds, splits and cameras.
        workers: rendering processes (1 = in this process).
        fg_root: FlightGear ``AI/Aircraft`` folder.
        fg_split_seed, fg_exploit_mesh_fraction: the ``data build flightgear`` split whose exploit meshes are
            left out (its defaults: the held-out airframes of ``data build flightgear``).
        urdf_root: pybullet's ``random_urdfs`` folder.
        sh3d_root: folder of Sweet Home 3D's ``*.sh3f`` furniture archives.
        sh3d_hold_out: furniture models (the ``scene_id`` of ``data build sweethome3d``) the mix never uses, so that
            a furniture evaluation set stays unseen although the mix has furniture (CLI: ``--sh3d-hold-out DIR``).
        textured_fraction: share of random_urdfs objects and primitive parts that get a pool texture.
        backgrounds: colours the scenes are composited on, one drawn per scene (white, black, grey, random,
            #rrggbb); white only by default, like the other builders.
        radius, distance, distance_jitter, fov_deg, elevation_min_deg, elevation_max_deg, box_size, light_dir:
            framing and light, as ``data build flightgear``'s.
        exploit_mesh_fraction: share of each source's meshes held out of ``train`` (module docstring).
    """

    out: Path = Path("data/pretrain-mix")
    sources: tuple[str, ...] = SOURCE_NAMES
    flightgear_instances: int = 120
    urdf_instances: int = 120
    primitive_instances: int = 120
    sh3d_instances: int = 0
    num_instances: int | None = None
    views: int = 10
    test_views: int = 2
    resolution: int = 128
    supersample: int = 2
    seed: int = 0
    workers: int = 2
    fg_root: Path = DEFAULT_FG_ROOT
    fg_split_seed: int = FlightGearBuildConfig.seed
    fg_exploit_mesh_fraction: float = FlightGearBuildConfig.exploit_mesh_fraction
    urdf_root: Path = DEFAULT_URDF_ROOT
    sh3d_root: Path = DEFAULT_SH3D_ROOT
    sh3d_hold_out: tuple[str, ...] = ()
    textured_fraction: float = 0.5
    backgrounds: tuple[str, ...] = ("white",)
    radius: float = FRAME_RADIUS
    distance: float = FRAME_DISTANCE
    distance_jitter: float = 0.0
    fov_deg: float = 50.0
    elevation_min_deg: float = -15.0
    elevation_max_deg: float = 60.0
    box_size: float = FRAME_BOX
    exploit_mesh_fraction: float = 0.1
    light_dir: tuple[float, float, float] = FRAME_LIGHT_DIR

    DATASET_NAME = "pretrain-mix"
    COMMAND = "latentscenes data build pretrain-mix"

    def validate(self) -> None:
        """:meth:`MeshBuildOptions.validate`, plus: known sources (``torcs`` refused with the reason), counts,
        backgrounds, ``textured_fraction``."""
        super().validate()
        for s in self.sources:
            if s.lower() in EXCLUDED_SOURCES:
                raise ValueError(f"source {s!r} is refused: {EXCLUDED_SOURCES[s.lower()]}")
            if s not in SOURCE_NAMES:
                raise ValueError(f"unknown source {s!r}; known: {', '.join(SOURCE_NAMES)}")
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ValueError("sources must name each source once, and at least one")
        for s in SOURCE_NAMES:
            if getattr(self, COUNT_FIELDS[s]) < 0:
                raise ValueError(f"{COUNT_FIELDS[s]} must be >= 0")
        if self.primitive_instances > MAX_PRIMITIVES:
            raise ValueError(f"primitive_instances must be <= {MAX_PRIMITIVES}")
        if sum(self.source_counts().values()) < 2:
            raise ValueError("the sources' counts must add up to >= 2 instances (one train and one exploit scene)")
        if not 0.0 <= self.textured_fraction <= 1.0:
            raise ValueError("textured_fraction must be in [0, 1]")
        if not self.backgrounds:
            raise ValueError("backgrounds: give at least one colour")
        for b in self.backgrounds:
            parse_background(b)

    def source_counts(self) -> dict[str, int]:
        """Instances per used source: the per-source counts, or ``num_instances`` shared in their proportions."""
        base = {s: int(getattr(self, COUNT_FIELDS[s])) for s in SOURCE_NAMES if s in self.sources}
        if self.num_instances is None:
            return base
        default = {s: 1 for s in base if s not in OPT_IN_SOURCES} or {s: 1 for s in base}
        weights = base if sum(base.values()) > 0 else {s: default.get(s, 0) for s in base}
        total = sum(weights.values())
        quota = {s: self.num_instances * w / total for s, w in weights.items()}
        out = {s: math.floor(q) for s, q in quota.items()}
        order = sorted(quota, key=lambda s: (-(quota[s] - out[s]), SOURCE_NAMES.index(s)))
        for s in order[: self.num_instances - sum(out.values())]:
            out[s] += 1
        return out

    def mesh_root(self) -> Path:
        """Not one folder: each source's ``mesh_id`` starts with the source's name (:meth:`load_instance_mesh`)."""
        return Path("/")

    def load_instance_mesh(self, task: dict[str, Any]) -> Any:
        """The normalised mesh of a FlightGear airframe, a random_urdfs object or a primitive, with its recipe's
        colours and texture names (:func:`instance_mesh`)."""
        return instance_mesh(self, task)

    def background_of(self, task: dict[str, Any]) -> tuple[int, int, int]:
        return tuple(task["background"])  # type: ignore[return-value]

    def split_instances(self, instances: list[Any]) -> tuple[dict[str, str], list[str], list[Any]]:
        """Per-source mesh hold-out in pick order (:func:`mix_splits`); the enumeration already is the pick."""
        splits, held = mix_splits(instances, self.exploit_mesh_fraction)
        return splits, held, sorted(instances, key=lambda i: i.scene_id)

    def scene_meta_extra(self, alphas: list[np.ndarray]) -> dict[str, Any]:
        return {"coverage": coverage_of(alphas)}

    def manifest_source(self, scenes: dict[str, Any]) -> dict[str, Any]:
        """Per source: what was used, how many instances and meshes, its licence; the texture pool; every used
        file by licence; the excluded sources with the reason."""
        info = getattr(self, "_enumerated", None) or {}
        per: dict[str, dict[str, Any]] = {}
        for meta in scenes.values():
            s = meta["source"]
            d = per.setdefault(s, {"instances": 0, "meshes": set(), "textured": 0, "train": 0, "exploit": 0})
            d["instances"] += 1
            d["meshes"].add(meta["mesh_id"])
            d["textured"] += int(bool(meta.get("textures")))
            d[meta["split"]] += 1
        sources: dict[str, Any] = {}
        for s in self.sources:
            if s in OPT_IN_SOURCES and s not in per and getattr(self, COUNT_FIELDS[s]) == 0:
                continue  # not asked for: not part of this mix
            d = per.get(s, {"instances": 0, "meshes": set(), "textured": 0, "train": 0, "exploit": 0})
            sources[s] = {**source_facts(self, s), **info.get(s, {}), "instances": d["instances"],
                          "meshes": len(d["meshes"]), "textured_instances": d["textured"],
                          "train": d["train"], "exploit": d["exploit"]}
        return {"name": self.DATASET_NAME, "sources": sources,
                "texture_pool": info.get("texture_pool", {}),
                "licences": files_by_licence(scenes),
                "excluded": dict(EXCLUDED_SOURCES)}


@dataclass
class MixInstance:
    """One instance of the mix: ``source`` (:data:`SOURCE_NAMES`), ``label`` (aircraft type and livery,
    object number, shape list), ``licences`` (``{"<origin>:<path>": licence}`` of every file it uses),
    ``recipe`` (colours / textures / shapes, everything the worker needs besides the mesh file), ``background``
    (RGB 0..255). ``mesh_id`` starts with the source's name; ``textures`` maps names in the recipe (or in the
    FlightGear mesh) to absolute paths."""

    scene_id: str
    source: str
    label: str
    licences: dict[str, str]
    recipe: dict[str, Any]
    background: list[int]
    xml: str
    mesh_id: str
    textures: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- sources
def source_facts(cfg: MixBuildConfig, source: str) -> dict[str, Any]:
    """What a source is: package, version, root, licence, content (the manifest's per-source section)."""
    if source == "flightgear":
        up = Path(cfg.fg_root).resolve().parents  # .../share/games/flightgear/AI/Aircraft -> .../share/doc/<package>
        doc = up[3] / "doc" / "flightgear-data-ai" if len(up) > 3 else None
        return {"package": "flightgear-data-ai (Debian)", "version": debian_changelog_version(doc) if doc else None,
                "root": str(cfg.fg_root), "licence": LICENCES[source],
                "copyright_file": str(doc / "copyright") if doc and (doc / "copyright").is_file() else None,
                "content": "textured AI airliners (airframe mesh + livery), train-split airframes of "
                           "`data build flightgear` only"}
    if source == "random_urdfs":
        try:
            version = importlib.metadata.version("pybullet")
        except importlib.metadata.PackageNotFoundError:
            version = None
        return {"package": "pybullet (PyPI wheel), pybullet_data/random_urdfs", "version": version,
                "root": str(cfg.urdf_root), "licence": LICENCES[source],
                "content": "procedural single-mesh objects (OBJ), each given a seeded random colour or a pool texture "
                           "on spherical UVs"}
    if source == "sweethome3d":
        doc = sh3d_doc_dir(cfg.sh3d_root)
        return {"package": "sweethome3d-furniture (Debian)", "version": debian_changelog_version(doc),
                "root": str(cfg.sh3d_root), "licence": LICENCES[source],
                "copyright_file": str(doc / "copyright") if (doc / "copyright").is_file() else None,
                "content": "furniture and household models of Sweet Home 3D's catalogues with their own colours "
                           "and textures (extracted into _sources/sweethome3d)"}
    return {"package": None, "generator": "latentscenes.data.pretrain_mix", "licence": LICENCES[source],
            "content": "procedural compound objects: 1-3 of " + ", ".join(PRIMITIVE_SHAPES)
                       + ", each part with a seeded random colour or a pool texture"}


def _refuse_torcs(path: str | Path, what: str) -> None:
    if "torcs" in (p.lower() for p in Path(path).resolve().parts):
        raise DatasetError(f"{what} {path} lies in a TORCS folder: {EXCLUDED_SOURCES['torcs']}")


def _flightgear_train_pick(cfg: MixBuildConfig) -> tuple[list[Any], list[str], list[str]]:
    """``(train-split FlightGear instances in pick order, held-out meshes of data build flightgear, their textures)``."""
    _refuse_torcs(cfg.fg_root, "--fg-root")
    inst, _ = enumerate_flightgear(cfg.fg_root)
    splits, held = assign_splits(inst, cfg.fg_exploit_mesh_fraction, cfg.fg_split_seed)
    train = [i for i in inst if splits[i.scene_id] == "train"]
    held_tex = sorted({t for i in inst if splits[i.scene_id] == "exploit" for t in i.textures.values()})
    return spread_order(train, cfg.seed, "mix-flightgear"), held, held_tex


def sh3d_sources(cfg: MixBuildConfig) -> Path:
    """Where the mix extracts the furniture archives: ``OUT/_sources/sweethome3d`` (not a scene folder)."""
    return Path(cfg.out) / SOURCES_DIR / "sweethome3d"


def _urdf_ids(root: Path) -> list[str]:
    if not root.is_dir():
        raise MixSourceMissing(f"random_urdfs: {root} not found; {PYBULLET_HINT}")
    ids = sorted(p.name for p in root.iterdir() if (p / f"{p.name}.obj").is_file())
    if not ids:
        raise MixSourceMissing(f"random_urdfs: no <id>/<id>.obj object in {root}; {PYBULLET_HINT}")
    return ids


def _texture_pool(cfg: MixBuildConfig, fg_train: list[Any], fg_held_tex: list[str]) -> list[list[tuple[str, str, str]]]:
    """Groups of ``(absolute path, origin key, licence)``: FlightGear train-split textures; pybullet_data images."""
    groups = []
    if fg_train:
        held = set(fg_held_tex)
        root = Path(cfg.fg_root).resolve()
        files = sorted({t for i in fg_train for t in i.textures.values()} - held)
        groups.append([(f, "flightgear-data-ai:" + (str(Path(f).relative_to(root)) if Path(f).is_relative_to(root) else f),
                        LICENCES["flightgear"]) for f in files])
    data_dir = Path(cfg.urdf_root).parent
    if "random_urdfs" in cfg.sources or "primitives" in cfg.sources:
        imgs = sorted(p for p in data_dir.glob("*") if p.suffix.lower() in (".png", ".jpg", ".gif") and p.is_file()) \
            if data_dir.is_dir() else []
        if imgs:
            groups.append([(str(p.resolve()), f"pybullet_data:{p.name}", LICENCES["random_urdfs"]) for p in imgs])
    return [g for g in groups if g]


def _colour(rng: np.random.Generator) -> list[float]:
    h, s, v = rng.uniform(0, 1), rng.uniform(0.15, 1.0), rng.uniform(0.25, 1.0)
    return [round(c, 4) for c in colorsys.hsv_to_rgb(h, s, v)] + [1.0]


def _appearance(rng: np.random.Generator, cfg: MixBuildConfig, pool: list[list[tuple[str, str, str]]], name: str,
                textures: dict[str, str], licences: dict[str, str]) -> dict[str, Any]:
    """A part's look: ``{"texture": name}`` (a pool file, recorded in ``textures`` / ``licences``) or ``{"color"}``."""
    colour = _colour(rng)
    if pool and rng.uniform() < cfg.textured_fraction:
        group = pool[int(rng.integers(len(pool)))]
        path, key, lic = group[int(rng.integers(len(group)))]
        textures[name] = path
        licences[key] = lic
        return {"texture": name, "file": key}
    return {"color": colour}


def _background(rng: np.random.Generator, cfg: MixBuildConfig) -> list[int]:
    choice = cfg.backgrounds[int(rng.integers(len(cfg.backgrounds)))]
    rgb = parse_background(choice)
    return list(rgb) if rgb is not None else [int(c) for c in rng.integers(0, 256, size=3)]


def _primitive_recipe(rng: np.random.Generator) -> list[dict[str, Any]]:
    parts = []
    for k in range(int(rng.integers(1, 4))):
        q = rng.normal(size=4)
        parts.append({"shape": PRIMITIVE_SHAPES[int(rng.integers(len(PRIMITIVE_SHAPES)))],
                      "scale": [round(float(x), 4) for x in rng.uniform(0.3, 1.0, size=3)],
                      "quat": [round(float(x), 6) for x in q / np.linalg.norm(q)],
                      "offset": [0.0, 0.0, 0.0] if k == 0 else [round(float(x), 4) for x in rng.uniform(-0.7, 0.7, size=3)],
                      "profile": [round(float(x), 4) for x in rng.uniform(0.25, 1.0, size=5)]})
    return parts


def select_mix(cfg: MixBuildConfig, counts: dict[str, int] | None = None,
               _cache: dict[str, Any] | None = None) -> tuple[list[MixInstance], dict[str, Any]]:
    """The mix's instances in pick order (grouped by source), and what the manifest records of the enumeration.

    ``counts``: instances per source (default :meth:`MixBuildConfig.source_counts`). ``_cache``: a dict kept by
    a caller that selects several times (the FlightGear enumeration is read once).

    Raises:
        FlightGearMissing / MixSourceMissing: a used source is not installed (the message says how to install it).
        DatasetError: a source has fewer instances than asked, or a file lies in a TORCS folder.
    """
    counts = cfg.source_counts() if counts is None else counts
    cache = {} if _cache is None else _cache
    if "fg" not in cache:
        cache["fg"] = _flightgear_train_pick(cfg) if "flightgear" in cfg.sources else ([], [], [])
        cache["urdf"] = _urdf_ids(Path(cfg.urdf_root)) if "random_urdfs" in cfg.sources else []
    if "sh3d" not in cache:  # extracted and enumerated only when the mix asks for furniture
        cache["sh3d"] = (enumerate_models(cfg.sh3d_root, (), sh3d_sources(cfg))
                         if "sweethome3d" in cfg.sources and (cfg.sh3d_instances > 0 or counts.get("sweethome3d", 0) > 0)
                         else ([], []))
    fg_train, fg_held, fg_held_tex = cache["fg"]
    urdf_ids = cache["urdf"]
    pool = _texture_pool(cfg, fg_train, fg_held_tex)
    info: dict[str, Any] = {"texture_pool": {"files": sum(len(g) for g in pool),
                                              "groups": {g[0][1].split(":")[0]: len(g) for g in pool}}}
    out: list[MixInstance] = []
    fg_root = Path(cfg.fg_root).resolve()

    def rng_of(sid: str) -> np.random.Generator:
        return np.random.default_rng([cfg.seed, stable_int("mix-look", sid) % (2**63)])

    _refuse_torcs(cfg.urdf_root, "--urdf-root")
    if "flightgear" in cfg.sources:
        n = counts.get("flightgear", 0)
        if n > len(fg_train):
            raise DatasetError(f"flightgear: {len(fg_train)} train-split instances in {cfg.fg_root}; asked for {n}")
        info["flightgear"] = {"available_train_split_instances": len(fg_train),
                              "split": {"from": "latentscenes data build flightgear", "seed": cfg.fg_split_seed,
                                        "exploit_mesh_fraction": cfg.fg_exploit_mesh_fraction,
                                        "held_out_meshes_not_used": fg_held}}
        for i in fg_train[:n]:
            sid = f"fg-{i.scene_id}"
            files = [i.mesh_id] + sorted({str(Path(t).relative_to(fg_root)) if Path(t).is_relative_to(fg_root) else t
                                          for t in i.textures.values()})
            out.append(MixInstance(scene_id=sid, source="flightgear", label=f"{i.aircraft_type} / {i.livery}",
                                   licences={f"flightgear-data-ai:{f}": LICENCES["flightgear"] for f in files},
                                   recipe={}, background=_background(rng_of(sid), cfg), xml=f"flightgear:{i.xml}",
                                   mesh_id=f"flightgear/{i.mesh_id}", textures=dict(i.textures)))
    if "random_urdfs" in cfg.sources:
        n = counts.get("random_urdfs", 0)
        if n > len(urdf_ids):
            raise DatasetError(f"random_urdfs: {len(urdf_ids)} objects in {cfg.urdf_root}; asked for {n}")
        order = np.random.default_rng(stable_int("mix-urdf", cfg.seed) % (2**63)).permutation(len(urdf_ids))
        info["random_urdfs"] = {"available_objects": len(urdf_ids)}
        for j in order[:n]:
            oid = urdf_ids[int(j)]
            sid = f"urdf-{oid}"
            rng = rng_of(sid)
            textures: dict[str, str] = {}
            lic = {f"pybullet_data:random_urdfs/{oid}/{oid}.obj": LICENCES["random_urdfs"]}
            look = _appearance(rng, cfg, pool, "tex0", textures, lic)
            out.append(MixInstance(scene_id=sid, source="random_urdfs", label=f"random_urdfs {oid}", licences=lic,
                                   recipe={"parts": [look]}, background=_background(rng, cfg),
                                   xml=f"random_urdfs/{oid}/{oid}.urdf", mesh_id=f"random_urdfs/{oid}/{oid}.obj",
                                   textures=textures))
    if "primitives" in cfg.sources:
        for k in range(counts.get("primitives", 0)):
            sid = f"prim-{k:05d}"
            rng = rng_of(sid)
            parts = _primitive_recipe(rng)
            textures, lic = {}, {f"generated:{sid}": LICENCES["primitives"]}
            for n_, p in enumerate(parts):
                p.update(_appearance(rng, cfg, pool, f"tex{n_}", textures, lic))
            out.append(MixInstance(scene_id=sid, source="primitives", label=" + ".join(p["shape"] for p in parts),
                                   licences=lic, recipe={"parts": parts}, background=_background(rng, cfg),
                                   xml=f"generated:{sid}", mesh_id=f"primitives/{sid}", textures=textures))
    if "sweethome3d" in cfg.sources and counts.get("sweethome3d", 0) > 0:
        models, dropped = cache["sh3d"]
        held = set(cfg.sh3d_hold_out)
        unknown = sorted(held - {m.scene_id for m in models})
        if unknown:  # a typo or another package version would silently hold out nothing
            raise DatasetError(f"sh3d_hold_out: {len(unknown)} model(s) not among the usable models of {cfg.sh3d_root}, "
                               f"e.g. {unknown[0]!r}")
        models = [m for m in models if m.scene_id not in held]
        n = counts["sweethome3d"]
        if n > len(models):
            raise DatasetError(f"sweethome3d: {len(models)} usable models in {cfg.sh3d_root} "
                               f"({len(held)} held out); asked for {n}")
        order = np.random.default_rng(stable_int("mix-sh3d", cfg.seed) % (2**63)).permutation(len(models))
        info["sweethome3d"] = {"available_models": len(models), "dropped_while_enumerating": len(dropped),
                               "held_out_models_not_used": sorted(held)}
        for j in order[:n]:
            m = models[int(j)]
            sid = f"sh3d-{m.scene_id}"
            out.append(MixInstance(scene_id=sid, source="sweethome3d", label=f"{m.name} ({m.category})",
                                   licences={f"sweethome3d-furniture:{k}": v for k, v in m.licences.items()},
                                   recipe={}, background=_background(rng_of(sid), cfg), xml=f"sweethome3d:{m.xml}",
                                   mesh_id=f"sweethome3d/{m.mesh_id}", textures=dict(m.textures)))
    for inst in out:
        for t in inst.textures.values():
            _refuse_torcs(t, f"{inst.scene_id}: texture")
    return out, info


def enumerate_instances(cfg: MixBuildConfig) -> tuple[list[MixInstance], list[dict[str, str]]]:
    """``(instances in pick order, dropped)`` for :func:`~latentscenes.data.builder.build_mesh_dataset`; records
    the enumeration facts on ``cfg`` for its manifest."""
    inst, info = select_mix(cfg)
    object.__setattr__(cfg, "_enumerated", info)
    return inst, []


def mix_splits(instances: list[Any], fraction: float) -> tuple[dict[str, str], list[str]]:
    """``({scene_id: split}, held-out mesh ids)``: per source, meshes ranked by first appearance in
    ``instances`` (pick order); rank r is held out when ``ceil((r + 1) f) > ceil(r f)`` (rank 0 always)."""
    ranks: dict[str, dict[str, int]] = {}
    for i in instances:
        r = ranks.setdefault(i.source, {})
        r.setdefault(i.mesh_id, len(r))
    held = sorted(m for r in ranks.values() for m, k in r.items()
                  if math.ceil((k + 1) * fraction - 1e-9) > math.ceil(k * fraction - 1e-9))
    hs = set(held)
    return {i.scene_id: ("exploit" if i.mesh_id in hs else "train") for i in instances}, held


def instances_needed(n_train: int, n_exploit: int, cfg: MixBuildConfig) -> int:
    """Smallest ``num_instances`` (shared over the sources by :meth:`MixBuildConfig.source_counts`) whose mix
    holds >= ``n_train`` train and >= ``n_exploit`` exploit scenes (for ``ensure_subset``).

    Raises:
        DatasetError: when the sources cannot give that many.
    """
    cache: dict[str, Any] = {}
    num = max(2, n_train + n_exploit)
    while True:
        c = dataclasses.replace(cfg, num_instances=num)
        inst, _ = select_mix(c, c.source_counts(), cache)  # raises once a source runs out
        splits, _ = mix_splits(inst, cfg.exploit_mesh_fraction)
        ex = sum(1 for v in splits.values() if v == "exploit")
        if ex >= n_exploit and len(splits) - ex >= n_train:
            return num
        num += 1


# ------------------------------------------------------------------------------------------ geometry
def _orient(v: np.ndarray, f: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Faces turned so their normal points away from ``ref`` ([F, 3] per face, or [3])."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = np.cross(b - a, c - a)
    flip = np.einsum("ij,ij->i", n, (a + b + c) / 3.0 - ref) < 0
    f = f.copy()
    f[flip] = f[flip][:, [0, 2, 1]]
    return f


def _grid_faces(rows: int, cols: int) -> np.ndarray:
    """Two triangles per cell of a ``(rows + 1) x (cols + 1)`` vertex grid (row-major)."""
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a = (i * (cols + 1) + j).reshape(-1)
    b, c, d = a + 1, a + cols + 1, a + cols + 2
    return np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])


def _lathe(radii: np.ndarray, heights: np.ndarray, seg: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A surface of revolution about z (profile ``radii`` at ``heights``), closed by flat caps where the
    radius is not 0; uv = (angle, profile position) on the side, planar on the caps."""
    t = np.linspace(0.0, 2 * np.pi, seg + 1)
    rows = len(radii)
    v = np.stack([np.outer(radii, np.cos(t)), np.outer(radii, np.sin(t)), np.repeat(heights[:, None], seg + 1, 1)], -1).reshape(-1, 3)
    uv = np.stack(np.meshgrid(t / (2 * np.pi), np.linspace(0.0, 1.0, rows), indexing="xy"), -1).reshape(-1, 2)
    side = _grid_faces(rows - 1, seg)
    axis = np.zeros((len(side), 3))
    axis[:, 2] = v[side].mean(1)[:, 2]  # the axis point at the face's height: outward for any profile
    vs, uvs, fs = [v], [uv], [_orient(v, side, axis)]
    for r, h, inward in ((radii[0], heights[0], 1.0), (radii[-1], heights[-1], -1.0)):
        if r > 1e-6:  # a flat cap, facing away from the body (-z at the bottom, +z at the top)
            base = sum(len(x) for x in vs)
            ring = np.stack([r * np.cos(t[:-1]), r * np.sin(t[:-1]), np.full(seg, h)], -1)
            cap_v = np.concatenate([[[0.0, 0.0, h]], ring])
            k = np.arange(seg)
            cap_f = np.stack([np.zeros(seg, np.int64), 1 + k, 1 + (k + 1) % seg], 1)
            fs.append(_orient(cap_v, cap_f, np.array([0.0, 0.0, h + inward])) + base)
            vs.append(cap_v)
            uvs.append(np.concatenate([[[0.5, 0.5]], np.stack([0.5 + 0.5 * np.cos(t[:-1]), 0.5 + 0.5 * np.sin(t[:-1])], -1)]))
    return np.concatenate(vs), np.concatenate(fs), np.clip(np.concatenate(uvs), 0.0, 0.999)


def _box() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vs, fs, uvs = [], [], []
    for axis in range(3):
        for sgn in (-1.0, 1.0):
            u_ax, w_ax = [a for a in range(3) if a != axis]
            q = np.zeros((4, 3))
            q[:, axis] = sgn
            q[:, u_ax] = [-1, 1, 1, -1]
            q[:, w_ax] = [-1, -1, 1, 1]
            base = 4 * len(vs)
            vs.append(q)
            uvs.append(np.array([[0, 0], [0.999, 0], [0.999, 0.999], [0, 0.999]]))
            fs.append(np.array([[base, base + 1, base + 2], [base, base + 2, base + 3]]))
    v = np.concatenate(vs)
    f = np.concatenate(fs)
    return v, _orient(v, f, np.zeros(3)), np.concatenate(uvs)


def _torus(seg: int = 24, rings: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    R, r = 0.7, 0.3
    p, q = np.meshgrid(np.linspace(0, 2 * np.pi, rings + 1), np.linspace(0, 2 * np.pi, seg + 1), indexing="ij")
    v = np.stack([(R + r * np.cos(p)) * np.cos(q), (R + r * np.cos(p)) * np.sin(q), r * np.sin(p)], -1).reshape(-1, 3)
    uv = np.stack([q / (2 * np.pi), p / (2 * np.pi)], -1).reshape(-1, 2)
    f = _grid_faces(rings, seg)
    c = v[f].mean(1)
    ang = np.arctan2(c[:, 1], c[:, 0])
    ref = np.stack([R * np.cos(ang), R * np.sin(ang), np.zeros_like(ang)], -1)  # the tube's centre line
    return v, _orient(v, f, ref), np.clip(uv, 0.0, 0.999)


def primitive_geometry(part: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(vertices [N, 3], faces [F, 3], uvs [N, 2])`` of one recipe part: its shape in [-1, 1]^3, scaled,
    rotated (unit quaternion w, x, y, z) and offset."""
    shape = part["shape"]
    if shape == "box":
        v, f, uv = _box()
    elif shape == "torus":
        v, f, uv = _torus()
    else:
        n = 13
        h = np.linspace(-1.0, 1.0, n)
        if shape == "sphere":
            ang = np.linspace(np.pi, 0.0, n)
            radii, h = np.sin(ang), np.cos(ang)
            radii[[0, -1]] = 0.0
        elif shape == "cylinder":
            radii = np.ones(n)
        elif shape == "cone":
            radii = np.linspace(1.0, 0.0, n)
        elif shape == "vase":
            prof = np.asarray(part["profile"], dtype=np.float64)
            radii = np.interp(np.linspace(0, len(prof) - 1, n), np.arange(len(prof)), prof)
        else:
            raise DatasetError(f"unknown primitive shape {shape!r}")
        v, f, uv = _lathe(radii, h)
    w, x, y, z = part["quat"]
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                  [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                  [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    v = (v * np.asarray(part["scale"])) @ R.T + np.asarray(part["offset"])
    return v, f, uv


def _spherical_uvs(v: np.ndarray) -> np.ndarray:
    d = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    u = np.arctan2(d[:, 1], d[:, 0]) / (2 * np.pi) + 0.5
    w = np.arccos(np.clip(d[:, 2], -1.0, 1.0)) / np.pi
    return np.clip(np.stack([u, 1.0 - w], 1), 0.0, 0.999)


def _look(part: MeshPart, look: dict[str, Any], uvs: np.ndarray) -> MeshPart:
    """A :class:`~latentscenes.data.render.MeshPart` with a recipe part's texture name (and ``uvs``) or colour."""
    if "texture" in look:
        return MeshPart(part.vertices, part.faces, uvs, part.normals, look["texture"])
    return MeshPart(part.vertices, part.faces, None, part.normals, None, tuple(look["color"]))


def instance_mesh(cfg: MixBuildConfig, task: dict[str, Any]) -> LoadedMesh:
    """The normalised :class:`~latentscenes.data.meshes.LoadedMesh` of a mix instance (in a worker)."""
    source, mesh_id = task["source"], task["mesh_id"]
    if source == "flightgear":
        return normalise_parts(load_mesh_assimp(Path(cfg.fg_root) / mesh_id.split("/", 1)[1]), radius=cfg.radius, y_up=True)
    if source == "random_urdfs":
        raw = load_mesh_assimp(Path(cfg.urdf_root) / mesh_id.split("/", 1)[1])
        off, vs, fs = 0, [], []
        for p in raw.parts:  # one object: its material groups become one part with the recipe's look
            vs.append(p.vertices)
            fs.append(p.faces + off)
            off += len(p.vertices)
        one = LoadedMesh([MeshPart(np.concatenate(vs), np.concatenate(fs))], raw.num_triangles)
        m = normalise_parts(one, radius=cfg.radius, y_up=False)
        p = m.parts[0]
        return dataclasses.replace(m, parts=[_look(p, task["recipe"]["parts"][0], _spherical_uvs(p.vertices))])
    if source == "sweethome3d":  # the model's own colours and textures, y-up as the package's OBJ files
        return normalise_parts(load_mesh_assimp(sh3d_sources(cfg) / mesh_id.split("/", 1)[1]), radius=cfg.radius,
                               y_up=True)
    if source == "primitives":
        parts, uvs, n = [], [], 0
        for rp in task["recipe"]["parts"]:
            v, f, uv = primitive_geometry(rp)
            parts.append(MeshPart(v, f))
            uvs.append(uv)
            n += len(f)
        m = normalise_parts(LoadedMesh(parts, n), radius=cfg.radius, y_up=False)
        return dataclasses.replace(m, parts=[_look(p, rp, uv) for p, rp, uv in zip(m.parts, task["recipe"]["parts"], uvs)])
    raise DatasetError(f"{task['scene_id']}: unknown source {source!r}")


def build_pretrain_mix(cfg: MixBuildConfig, progress: bool = True) -> Path:
    """Build (or resume) the pre-training mix into ``cfg.out``; returns the output folder.

    Same layout, manifest, determinism, workers and resume as the FlightGear build
    (:func:`latentscenes.data.builder.build_mesh_dataset`); each scene's metadata adds ``source``, ``label``,
    ``licences``, ``recipe``, ``background`` and ``coverage``; the manifest's ``source`` lists the sources with
    their licences and counts (:meth:`MixBuildConfig.manifest_source`).

    Raises:
        ValueError: for inconsistent options (``torcs`` as a source among them).
        FlightGearMissing / MixSourceMissing: a used source is not installed.
        DatasetError: a source has too few instances, a file lies in a TORCS folder, or nothing rendered.
    """
    return build_mesh_dataset(cfg, lambda: enumerate_instances(cfg), progress, render=render_instance)
