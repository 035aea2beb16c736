"""Build the TORCS cars dataset: textured race and road cars from the Debian package ``torcs-data``.

A held-out object category for every figure made on the FlightGear airliners, in the layout and framing of
ShapeNet's SRN cars (128 x 128, white background, the car covering about 18 % of the frame, views on the
upper hemisphere). What is TORCS's own (the rest is :mod:`latentscenes.data.builder`, shared with FlightGear):

  * **cars**: every ``cars/<car>/<car>.xml`` (TORCS ``params`` XML). Its first ``Graphic Objects/Ranges``
    entry names the most detailed body mesh (``<car>.acc``, AC3D with triangle strips); the lower levels of
    detail (``-lod1.acc`` ...) are not used. The car's display name is the XML's ``name`` and its class the
    ``Car/category`` attribute. The body meshes hold no wheels (TORCS adds them at run time).
  * **liveries**: the default paint (textures next to the mesh) plus one per robot driver entry: every
    ``Robots/index/<i>`` section of ``drivers/<robot>/<robot>.xml`` names the car it drives; its textures are
    looked up the way TORCS does, in ``drivers/<robot>/<i>/``, then ``drivers/<robot>/``, then the car's
    folder. Each livery is an instance sharing its car's mesh. Dropped, with the reason in
    ``build_log.txt`` and ``manifest.json``: entries whose car is not installed (cars of other packages),
    unresolved textures, and duplicates (same mesh and byte-identical texture files, e.g. a robot that
    drives the default paint).
  * **licences**: looked up per file (mesh and every texture) in the package's machine-readable Debian
    ``copyright`` file (DEP-5: the last ``Files:`` paragraph whose pattern matches wins). Installed paths are
    mapped to the upstream source tree the file describes: ``cars/<car>/...`` -> ``data/cars/models/<car>/...``,
    ``drivers/...`` -> ``src/drivers/...``. Each scene records its files' licences; the manifest's ``source``
    lists every used file under its licence, and the package version (from ``changelog.Debian.gz``).
  * **split**: whole car meshes are held out of ``train`` (``exploit_mesh_fraction``, seeded): all liveries
    of a mesh stay in one split, so exploit scenes are never-seen shapes, not only new paint.
  * **cameras**: SRN-cars-like; look at the origin from the upper hemisphere (elevation 0..90 degrees,
    uniform in area), field of view 52 degrees (SRN's f = 1.025 x image size), distance chosen so that the
    mean object coverage is about 18 % at radius 0.9 (measured and recorded as ``object_coverage``).
"""

from __future__ import annotations

import fnmatch
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latentscenes.data.builder import (
    FRAME_BOX,
    FRAME_DISTANCE,
    FRAME_LIGHT_DIR,
    FRAME_RADIUS,
    MeshBuildOptions,
    build_mesh_dataset,
    coverage_of,
    debian_changelog_version,
    files_by_licence,
    render_instance,
    sanitize,
)
from latentscenes.data.meshes import ac_texture_names, find_file
from latentscenes.data.types import DatasetError
from latentscenes.utils.io import file_sha256

DEFAULT_TORCS_ROOT = Path("/usr/share/games/torcs")
PACKAGE = "torcs-data"
INSTALL_HINT = (
    "the TORCS cars are missing: install them with `sudo apt-get install -y torcs-data` "
    "(or, without root: `apt-get download torcs-data && dpkg-deb -x torcs-data_*.deb DIR` and "
    "pass --torcs-root DIR/usr/share/games/torcs)"
)
#: Installed folder (relative to the TORCS data root) -> the upstream source folder that Debian's copyright
#: file describes (TORCS installs ``data/cars/models/<car>`` as ``cars/<car>`` and ``src/drivers/<robot>``
#: as ``drivers/<robot>``).
SOURCE_PREFIXES = (("cars/", "data/cars/models/"), ("drivers/", "src/drivers/"))


class TorcsMissing(DatasetError):
    """The TORCS data folder is absent or holds no car (the message gives the install command)."""


@dataclass
class TorcsBuildConfig(MeshBuildOptions):
    """Options of ``latentscenes data build torcs`` (checks and the render range: :class:`MeshBuildOptions`).

    Attributes:
        out: output folder (created; an existing partial build in it is resumed).
        num_instances: number of instances to build (None = all usable ones); a deterministic subset.
        views: training views per instance.
        test_views: held-out test views per instance (same camera distribution, different draws).
        resolution: output image side in pixels.
        supersample: render at ``resolution * supersample`` and box-downsample.
        seed: seed of the split, the subset and every camera draw.
        workers: rendering processes (1 = in this process).
        torcs_root: TORCS data folder (holds ``cars/`` and ``drivers/``).
        radius: the farthest vertex of every normalised car lies at this distance from the origin.
        distance: camera distance from the origin (world units); 2.3 (as FlightGear's, so both datasets share
            near/far) gives a mean coverage of about 18 % with a 52 degree field of view (SRN cars).
        distance_jitter: relative uniform jitter of the distance (0 = fixed distance).
        fov_deg: full field of view (square images), degrees; 52 is SRN cars' (f = 1.025 x image size).
        elevation_min_deg, elevation_max_deg: camera elevation band (uniform in area on the sphere); the
            upper hemisphere by default, as SRN cars (the meshes have no wheels and no underside).
        box_size: edge of the scene box [-box/2, box/2]^3 recorded for the renderer.
        exploit_mesh_fraction: fraction of car meshes held out of ``train`` (their liveries = ``exploit``).
        light_dir: direction towards the fixed world-space light (z-up).
    """

    out: Path = Path("data/torcs")
    num_instances: int | None = None
    views: int = 24
    test_views: int = 8
    resolution: int = 128
    supersample: int = 2
    seed: int = 0
    workers: int = 2
    torcs_root: Path = DEFAULT_TORCS_ROOT
    radius: float = FRAME_RADIUS
    distance: float = FRAME_DISTANCE
    distance_jitter: float = 0.0
    fov_deg: float = 52.0
    elevation_min_deg: float = 0.0
    elevation_max_deg: float = 90.0
    box_size: float = FRAME_BOX
    exploit_mesh_fraction: float = 0.2
    light_dir: tuple[float, float, float] = FRAME_LIGHT_DIR

    DATASET_NAME = "torcs-cars"
    COMMAND = "latentscenes data build torcs"

    def mesh_root(self) -> Path:
        """Instances' ``mesh_id`` are relative to the TORCS data folder."""
        return Path(self.torcs_root)

    def scene_meta_extra(self, alphas: list[np.ndarray]) -> dict[str, Any]:
        """``{"coverage": {"mean", "min", "max"}}``: the fraction of the frame the car covers (mask mean) over
        the scene's views, in [0, 1]."""
        return {"coverage": coverage_of(alphas)}

    def manifest_source(self, scenes: dict[str, Any]) -> dict[str, Any]:
        """Package, version, root, copyright file, and every used file (relative to the root) by licence."""
        doc = package_doc_dir(self.torcs_root)
        return {"package": PACKAGE, "version": package_version(self.torcs_root), "root": str(self.torcs_root),
                "copyright_file": str(doc / "copyright") if (doc / "copyright").is_file() else None,
                "licences": files_by_licence(scenes),
                "content": "car body meshes with their liveries; TORCS adds the wheels at run time, so the cars are "
                           "rendered without wheels"}


@dataclass
class Instance:
    """One car instance (body mesh + livery) found in the TORCS tree.

    ``livery`` is ``"default"`` or ``"<robot>/<index>"``; ``xml`` is the car XML for the default paint and
    ``drivers/<robot>/<robot>.xml#<index>`` for a robot's livery; ``licences`` maps every file the scene uses
    (relative to the TORCS root) to its licence; ``textures`` maps texture names in the mesh to absolute paths.
    """

    scene_id: str
    car: str
    car_name: str
    category: str
    livery: str
    licences: dict[str, str]
    xml: str
    mesh_id: str
    textures: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- package facts
def package_doc_dir(torcs_root: str | Path) -> Path:
    """``/usr/share/doc/torcs-data`` for a root ``.../usr/share/games/torcs`` (also inside an extracted .deb)."""
    return Path(torcs_root).resolve().parent.parent / "doc" / PACKAGE


def package_version(torcs_root: str | Path) -> str | None:
    """The Debian package version from the first line of ``changelog.Debian.gz`` (None when not found)."""
    return debian_changelog_version(package_doc_dir(torcs_root))


def parse_dep5(path: str | Path) -> list[tuple[list[str], str]]:
    """The ``Files:`` paragraphs of a machine-readable Debian copyright file, in order: ``[(patterns, licence)]``.

    ``licence`` is the first line of the paragraph's ``License:`` field (its short name). Continuation lines
    (starting with a space or tab) extend a field; paragraphs are separated by blank lines.

    Raises:
        DatasetError: naming the file if it cannot be read or has no ``Files:`` paragraph.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DatasetError(f"{path}: cannot read the copyright file ({e})") from e
    out: list[tuple[list[str], str]] = []
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, val = line.partition(":")
                key = key.strip().lower()
                fields[key] = val.strip()
        if "files" in fields and "license" in fields:
            out.append((fields["files"].split(), fields["license"].split("\n")[0].strip()))
    if not out:
        raise DatasetError(f"{path}: no 'Files:' paragraph (not a machine-readable Debian copyright file)")
    return out


def licence_of(rel_path: str, paragraphs: list[tuple[list[str], str]]) -> str:
    """Licence of a file given by its path relative to the TORCS data root (``cars/p406/p406.acc``).

    The path is mapped to the upstream source tree (:data:`SOURCE_PREFIXES`); the last paragraph with a
    matching pattern wins (DEP-5: ``*`` also matches ``/``). ``"unknown"`` when nothing matches.
    """
    src = rel_path
    for inst, up in SOURCE_PREFIXES:
        if rel_path.startswith(inst):
            src = up + rel_path[len(inst):]
            break
    lic = "unknown"
    for patterns, name in paragraphs:
        if any(fnmatch.fnmatchcase(src, p) for p in patterns):
            lic = name
    return lic


# ------------------------------------------------------------------------------------------- TORCS XML
def _section(el: ET.Element | None, *names: str) -> ET.Element | None:
    """The nested ``<section name=...>`` path below ``el`` (TORCS ``params`` files), or None."""
    for n in names:
        if el is None:
            return None
        el = next((s for s in el.findall("section") if s.get("name") == n), None)
    return el


def _attstr(el: ET.Element | None, name: str) -> str | None:
    if el is None:
        return None
    a = next((a for a in el.findall("attstr") if a.get("name") == name), None)
    v = a.get("val") if a is not None else None
    return v.strip() if v and v.strip() else None


def read_car_xml(xml: Path) -> tuple[str, str, str]:
    """``(display name, category, main mesh file name)`` of a car's ``params`` XML.

    The mesh is the first ``Graphic Objects/Ranges`` entry's ``car`` (TORCS lists the most detailed level
    first), else ``<car>.acc``.

    Raises:
        DatasetError: naming the file if it does not parse or is not a TORCS ``params`` file.
    """
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{xml}: cannot read the car XML ({e})") from e
    if root.tag != "params":
        raise DatasetError(f"{xml}: not a TORCS params file (root element <{root.tag}>)")
    ranges = _section(root, "Graphic Objects", "Ranges")
    first = ranges.findall("section")[0] if ranges is not None and ranges.findall("section") else None
    mesh = _attstr(first, "car") or f"{xml.parent.name}.acc"
    category = _attstr(_section(root, "Car"), "category") or "unknown"
    return root.get("name") or xml.parent.name, category, mesh


def robot_cars(robot_xml: Path) -> dict[str, str]:
    """``{index: car}`` of a robot's ``drivers/<robot>/<robot>.xml`` (``Robots/index/<i>/car name``); {} if unreadable."""
    try:
        root = ET.parse(robot_xml).getroot()
    except (ET.ParseError, OSError, UnicodeDecodeError):
        return {}
    idx = _section(root, "Robots", "index")
    if idx is None:
        return {}
    return {s.get("name", ""): car for s in idx.findall("section") if (car := _attstr(s, "car name"))}


def enumerate_instances(torcs_root: str | Path) -> tuple[list[Instance], list[dict[str, str]]]:
    """Find every (car mesh, livery) instance under ``torcs_root`` (the folder holding ``cars/`` and ``drivers/``).

    Returns:
        ``(instances, dropped)``: instances sorted by ``scene_id`` (``<car>`` for the default paint,
        ``<car>-<robot>-<index>`` for a robot's livery); ``dropped`` is a list of ``{"xml", "reason"}`` for
        every candidate that was not kept.

    Raises:
        TorcsMissing: if ``torcs_root/cars`` does not exist or holds no usable car.
    """
    root = Path(torcs_root)
    cars_dir = root / "cars"
    if not cars_dir.is_dir():
        raise TorcsMissing(f"{cars_dir}: {INSTALL_HINT}")
    doc = package_doc_dir(root)
    paragraphs = parse_dep5(doc / "copyright") if (doc / "copyright").is_file() else []
    rroot = root.resolve()

    def rel(p: str | Path) -> str:
        p = Path(p).resolve()
        return str(p.relative_to(rroot)) if p.is_relative_to(rroot) else str(p)

    def licences(mesh: Path, textures: dict[str, str]) -> dict[str, str]:
        files = [rel(mesh)] + sorted(rel(t) for t in set(textures.values()))
        return {f: licence_of(f, paragraphs) for f in files}

    dropped: list[dict[str, str]] = []
    cars: dict[str, tuple[str, str, Path, list[str]]] = {}  # car -> (name, category, mesh, texture names)
    for car_dir in sorted(p for p in cars_dir.iterdir() if p.is_dir()):
        xml = car_dir / f"{car_dir.name}.xml"
        if not xml.is_file():
            dropped.append({"xml": rel(car_dir), "reason": f"no {xml.name} (not a car folder)"})
            continue
        try:
            name, category, mesh_name = read_car_xml(xml)
            mesh = find_file(car_dir, mesh_name)
            if mesh is None:
                raise DatasetError(f"mesh {mesh_name} not found in {car_dir}")
            names = ac_texture_names(mesh)
        except (DatasetError, OSError) as e:
            dropped.append({"xml": rel(xml), "reason": str(e)})
            continue
        cars[car_dir.name] = (name, category, mesh, names)

    found: list[Instance] = []
    seen: dict[tuple, str] = {}
    digests: dict[str, str] = {}

    def add(car: str, livery: str, xml: str, folders: list[Path], scene_id: str) -> None:
        name, category, mesh, names = cars[car]
        textures, missing = {}, []
        for n in names:
            hit = next((h for fo in folders if (h := find_file(fo, n)) is not None), None)
            if hit is None:
                missing.append(n)
            else:
                textures[n] = str(hit)
        if missing:
            dropped.append({"xml": xml, "reason": f"textures not found: {', '.join(missing)}"})
            return
        for t in textures.values():
            if t not in digests:
                digests[t] = file_sha256(t)
        key = (rel(mesh), tuple(sorted((n, digests[t]) for n, t in textures.items())))
        if key in seen:
            dropped.append({"xml": xml, "reason": f"duplicate of {seen[key]} (same mesh and identical texture files)"})
            return
        seen[key] = scene_id
        found.append(Instance(scene_id=scene_id, car=car, car_name=name, category=category, livery=livery,
                              licences=licences(mesh, textures), xml=xml, mesh_id=rel(mesh), textures=textures))

    for car in sorted(cars):  # default paint first: a robot that drives it is the duplicate
        add(car, "default", rel(cars_dir / car / f"{car}.xml"), [cars_dir / car], sanitize(car))
    drivers = root / "drivers"
    for robot_dir in sorted(p for p in drivers.iterdir() if p.is_dir()) if drivers.is_dir() else []:
        robot_xml = robot_dir / f"{robot_dir.name}.xml"
        entries = robot_cars(robot_xml)
        for idx in sorted(entries, key=lambda s: (len(s), s)):
            car, where = entries[idx], f"{rel(robot_xml)}#{idx}"
            if car not in cars:
                dropped.append({"xml": where, "reason": f"drives {car}, which is not installed"})
                continue
            add(car, f"{robot_dir.name}/{idx}", where, [robot_dir / idx, robot_dir, cars_dir / car],
                sanitize(f"{car}-{robot_dir.name}-{idx}"))
    if not found:
        raise TorcsMissing(f"{cars_dir}: no usable car found; {INSTALL_HINT}")
    found.sort(key=lambda i: i.scene_id)
    return found, dropped


def build_torcs(cfg: TorcsBuildConfig, progress: bool = True) -> Path:
    """Build (or resume) the TORCS cars dataset into ``cfg.out``; returns the output folder.

    Same layout, manifest, determinism and resume as the FlightGear build
    (:func:`latentscenes.data.builder.build_mesh_dataset`); the manifest adds ``object_coverage`` (mask
    coverage over all views) and ``source.licences``; each scene's metadata adds ``coverage`` and ``licences``.

    Raises:
        TorcsMissing: if the TORCS cars are not installed (message gives the install command).
        ValueError: for inconsistent options.
        DatasetError: if no instance could be rendered.
    """
    return build_mesh_dataset(cfg, lambda: enumerate_instances(cfg.torcs_root), progress, render=render_instance)
