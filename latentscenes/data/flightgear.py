"""Build the FlightGear airliners dataset: textured AI aircraft from the Debian package ``flightgear-data-ai``.

What is FlightGear's own (the rest is :mod:`latentscenes.data.builder`, shared with the TORCS cars):
  * the enumeration of instances (:func:`enumerate_instances`): every livery XML under ``AI/Aircraft`` whose
    ``<PropertyList include=...>`` chain leads to a top-level ``<path>X.ac</path>``; textures are searched in
    the livery's ``<texture-path>`` (relative to the livery XML's folder, then to the aircraft folder) and then
    next to the ``.ac`` file. Dropped, with the reason written to ``build_log.txt`` and ``manifest.json``:
    non-airplanes (Dromader, ferry, space shuttle, balloons, bombs, probes, separate wheels, light models),
    the z-fighting ``fokker70.ac``, unresolved textures, duplicate (mesh, textures) pairs;
  * the build options and their defaults (:class:`FlightGearBuildConfig`).
:func:`build_flightgear` then runs the shared pipeline: hold out whole airframe meshes for the ``exploit``
split, pick the optional subset, render every instance (Assimp + TinyRenderer at 2x, downsampled) into the
SRN layout, resumably, and write ``manifest.json``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentscenes.data.builder import (  # noqa: F401  (re-exported: callers import them from here)
    FRAME_BOX,
    FRAME_DISTANCE,
    FRAME_LIGHT_DIR,
    FRAME_RADIUS,
    MeshBuildOptions,
    assign_splits,
    build_mesh_dataset,
    render_instance,
    sanitize,
    scene_cameras,
    select_instances,
    stable_int,
    write_srn_scene,
)
from latentscenes.data.meshes import ac_texture_names, find_file  # noqa: F401  (ac_texture_names re-exported)
from latentscenes.data.types import DatasetError

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
class FlightGearBuildConfig(MeshBuildOptions):
    """Options of ``latentscenes data build flightgear`` (checks and the render range: :class:`MeshBuildOptions`).

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
    radius: float = FRAME_RADIUS
    distance: float = FRAME_DISTANCE
    distance_jitter: float = 0.0
    fov_deg: float = 50.0
    elevation_min_deg: float = -15.0
    elevation_max_deg: float = 60.0
    box_size: float = FRAME_BOX
    exploit_mesh_fraction: float = 0.1
    light_dir: tuple[float, float, float] = FRAME_LIGHT_DIR

    DATASET_NAME = "flightgear-airliners"
    COMMAND = "latentscenes data build flightgear"

    def mesh_root(self) -> Path:
        """Instances' ``mesh_id`` are relative to the ``AI/Aircraft`` folder."""
        return Path(self.fg_root)

    def manifest_source(self, scenes: dict[str, Any]) -> dict[str, Any]:
        return {"package": "flightgear-data-ai", "root": str(self.fg_root)}


@dataclass
class Instance:
    """One airplane instance (airframe mesh + livery) found in the FlightGear tree."""

    scene_id: str
    aircraft_type: str
    livery: str
    xml: str  # relative to fg_root
    mesh_id: str  # .ac path relative to fg_root
    textures: dict[str, str] = field(default_factory=dict)  # name in the .ac -> absolute path


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
                hit = find_file(fo, n)
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
        s = sanitize(Path(inst.xml).stem)
        stems[s] = stems.get(s, 0) + 1
    for inst in found:
        s = sanitize(Path(inst.xml).stem)
        inst.scene_id = s if stems[s] == 1 else sanitize(Path(inst.xml).parts[0] + "__" + Path(inst.xml).stem)
    found.sort(key=lambda i: i.scene_id)
    return found, dropped


# Re-exported for callers that knew them here (the subset helper, tests): they live in the shared builder now.
_render_instance = render_instance
_stable_int = stable_int
_sanitize = sanitize
__all__ = ["FlightGearBuildConfig", "FlightGearMissing", "Instance", "ac_texture_names", "assign_splits", "build_flightgear",
           "enumerate_instances", "scene_cameras", "select_instances", "write_srn_scene"]


def build_flightgear(cfg: FlightGearBuildConfig, progress: bool = True) -> Path:
    """Build (or resume) the FlightGear dataset into ``cfg.out``; returns the output folder.

    Writes ``<out>/<scene>/{rgb,mask}/*.png``, ``pose/*.txt`` (OpenCV c2w, 16 floats), ``intrinsics.txt``
    (SRN format, pixels), ``scene.json``; ``<out>/manifest.json``; ``<out>/build_log.txt``
    (:func:`latentscenes.data.builder.build_mesh_dataset`).

    Raises:
        FlightGearMissing: if the FlightGear aircraft are not installed (message gives the install command).
        ValueError: for inconsistent options.
        DatasetError: if no instance could be rendered.
    """
    # ``_render_instance`` is looked up here, at call time, so that a test can replace it
    return build_mesh_dataset(cfg, lambda: enumerate_instances(cfg.fg_root), progress, render=_render_instance)
