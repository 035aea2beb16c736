"""Build the Sweet Home 3D furniture dataset: ~820 furniture and household models from the Debian package
``sweethome3d-furniture`` (CC0, CC-BY 3.0 and CC-BY 3.0 US, per archive).

A second object category, besides the TORCS cars, that neither the shipped base autoencoder nor the
pre-training mix saw (unless the mix is built with ``--sweethome3d N``): chairs, tables, lamps, kitchen and
bathroom fittings, doors, plants, people. Same layout, framing and cameras as the TORCS cars (SRN-cars-like:
128 x 128, white background, 52 degree field of view, upper hemisphere, the shared frame of
:mod:`latentscenes.data.builder`). What is this source's own:

  * **archives**: each ``*.sh3f`` under ``sh3d_root`` is a zip holding a ``PluginFurnitureCatalog.properties``
    (one entry ``#i`` per piece: ``name``, ``category``, ``model`` = the OBJ inside the zip, ``creator``) and one
    folder per model (OBJ + MTL + textures). The archives are extracted once into ``OUT/_sources/<archive>/``
    (a folder the dataset loader ignores); an extraction that was interrupted, or of another version of the
    archive (size and modification time are recorded in the ``.complete`` marker), is redone.
  * **instances**: one per catalogue entry whose model is an ``.obj`` (entries whose file is missing are
    dropped with the reason); ``mesh_id`` is the OBJ's path under ``OUT/_sources``. Textures: the images in the
    model's folder (catalogue icons at the archive's top level are not textures). Sweet Home 3D models are y-up.
  * **licences**: per archive, from the package's machine-readable ``copyright`` file (DEP-5 ``Files:
    <Archive>/*``), recorded per scene and in the manifest with the package version.
  * **split**: whole models are held out of ``train`` (``exploit_mesh_fraction``, seeded).
"""

from __future__ import annotations

import re
import shutil
import zipfile
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
from latentscenes.data.torcs import licence_of, parse_dep5
from latentscenes.data.types import DatasetError

DEFAULT_SH3D_ROOT = Path("/usr/share/sweethome3d/furniture")
PACKAGE = "sweethome3d-furniture"
INSTALL_HINT = (
    "the Sweet Home 3D furniture is missing: install it with `sudo apt-get install -y sweethome3d-furniture` "
    "(or, without root: `apt-get download sweethome3d-furniture && dpkg-deb -x sweethome3d-furniture_*.deb DIR` "
    "and pass --sh3d-root DIR/usr/share/sweethome3d/furniture)"
)
CATALOGUE = "PluginFurnitureCatalog.properties"
SOURCES_DIR = "_sources"  # under OUT; names starting with "_" are not scene folders
TEXTURE_EXTS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


class SweetHome3DMissing(DatasetError):
    """The furniture archives are absent (the message gives the install command)."""


@dataclass
class SweetHome3DBuildConfig(MeshBuildOptions):
    """Options of ``latentscenes data build sweethome3d`` (checks and the render range: :class:`MeshBuildOptions`).

    Attributes: as :class:`latentscenes.data.torcs.TorcsBuildConfig` (same framing and cameras), plus
        sh3d_root: folder holding the ``*.sh3f`` archives.
        archives: archive names (file stems, e.g. ``KatorLegaz``) to use; empty = all.
    """

    out: Path = Path("data/sweethome3d")
    num_instances: int | None = None
    views: int = 24
    test_views: int = 8
    resolution: int = 128
    supersample: int = 2
    seed: int = 0
    workers: int = 2
    sh3d_root: Path = DEFAULT_SH3D_ROOT
    archives: tuple[str, ...] = ()
    radius: float = FRAME_RADIUS
    distance: float = FRAME_DISTANCE
    distance_jitter: float = 0.0
    fov_deg: float = 52.0
    elevation_min_deg: float = 0.0
    elevation_max_deg: float = 90.0
    box_size: float = FRAME_BOX
    exploit_mesh_fraction: float = 0.2
    light_dir: tuple[float, float, float] = FRAME_LIGHT_DIR

    DATASET_NAME = "sweethome3d-furniture"
    COMMAND = "latentscenes data build sweethome3d"

    def mesh_root(self) -> Path:
        """Instances' ``mesh_id`` are relative to the extracted archives (``OUT/_sources``)."""
        return Path(self.out) / SOURCES_DIR

    def scene_meta_extra(self, alphas: list[np.ndarray]) -> dict[str, Any]:
        """``{"coverage": {"mean", "min", "max"}}``: the fraction of the frame the object covers, in [0, 1]."""
        return {"coverage": coverage_of(alphas)}

    def manifest_source(self, scenes: dict[str, Any]) -> dict[str, Any]:
        """Package, version, root, copyright file, and every used model by licence."""
        doc = package_doc_dir(self.sh3d_root)
        return {"package": PACKAGE, "version": debian_changelog_version(doc), "root": str(self.sh3d_root),
                "copyright_file": str(doc / "copyright") if (doc / "copyright").is_file() else None,
                "licences": files_by_licence(scenes),
                "content": "Sweet Home 3D furniture catalogues (furniture, fittings, doors and windows, plants, "
                           "people), rendered with their MTL colours and textures"}


@dataclass
class Instance:
    """One catalogue piece: ``xml`` is ``<archive>.sh3f#<entry>``; ``mesh_id`` the OBJ under ``OUT/_sources``."""

    scene_id: str
    name: str
    category: str
    creator: str
    archive: str
    licences: dict[str, str]
    xml: str
    mesh_id: str
    textures: dict[str, str] = field(default_factory=dict)


def package_doc_dir(sh3d_root: str | Path) -> Path:
    """``/usr/share/doc/sweethome3d-furniture`` for a root ``.../usr/share/sweethome3d/furniture``."""
    return Path(sh3d_root).resolve().parent.parent / "doc" / PACKAGE


def read_catalogue(text: str) -> dict[str, dict[str, str]]:
    """``{entry index: {key: value}}`` of a ``PluginFurnitureCatalog.properties`` text (``key#i=value`` lines;
    Java ``\\uXXXX`` escapes decoded)."""
    entries: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, _, val = line.partition("=")
        name, sep, idx = key.strip().partition("#")
        if sep and idx.isdigit():
            entries.setdefault(idx, {})[name] = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), val.strip())
    return entries


def extract_archive(archive: Path, dest: Path) -> None:
    """Extract ``archive`` (a zip) into ``dest`` once; the ``.complete`` marker (the archive's size and
    modification time) makes an interrupted extraction, or one of another version of the archive, start again.

    Raises:
        DatasetError: naming the archive if it is not a readable zip, or a member would land outside ``dest``.
        OSError: the archive cannot be read or ``dest`` written (e.g. a full disk).
    """
    st = Path(archive).stat()
    stamp = f"{Path(archive).name} {st.st_size} {st.st_mtime_ns}\n"
    marker = dest / ".complete"
    if marker.is_file() and marker.read_text() == stamp:
        return
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive) as z:
            root = dest.resolve()
            for m in z.namelist():
                if not (root / m).resolve().is_relative_to(root):
                    raise DatasetError(f"{archive}: member {m!r} would be written outside {dest}")
            z.extractall(dest)
    except zipfile.BadZipFile as e:
        raise DatasetError(f"{archive}: not a readable .sh3f (zip) archive ({e})") from e
    marker.write_text(stamp)


def enumerate_instances(cfg: SweetHome3DBuildConfig) -> tuple[list[Instance], list[dict[str, str]]]:
    """Extract the archives into ``OUT/_sources`` and list every piece (:func:`enumerate_models`)."""
    return enumerate_models(cfg.sh3d_root, cfg.archives, cfg.mesh_root())


def enumerate_models(sh3d_root: str | Path, archives: tuple[str, ...], sources: Path,
                     ) -> tuple[list[Instance], list[dict[str, str]]]:
    """Extract the archives into ``sources`` and list every piece; returns ``(instances sorted by scene_id,
    dropped)``; ``mesh_id`` is relative to ``sources`` (also used by ``data build pretrain-mix``).

    Raises:
        SweetHome3DMissing: no ``*.sh3f`` archive in ``sh3d_root``.
        DatasetError: an unreadable archive, or a name in ``archives`` that does not exist.
    """
    root = Path(sh3d_root)
    found_archives = sorted(root.glob("*.sh3f")) if root.is_dir() else []
    if not found_archives:
        raise SweetHome3DMissing(f"{root}: no *.sh3f archive; {INSTALL_HINT}")
    if archives:
        stems = {a.stem for a in found_archives}
        unknown = [a for a in archives if a not in stems]
        if unknown:
            raise DatasetError(f"--archive {unknown[0]}: not in {root} (available: {', '.join(sorted(stems))})")
        found_archives = [a for a in found_archives if a.stem in archives]
    doc = package_doc_dir(root)
    paragraphs = parse_dep5(doc / "copyright") if (doc / "copyright").is_file() else []
    sources = Path(sources)
    instances: list[Instance] = []
    dropped: list[dict[str, str]] = []
    for archive in found_archives:
        dest = sources / archive.stem
        extract_archive(archive, dest)
        cat_file = dest / CATALOGUE
        if not cat_file.is_file():
            dropped.append({"xml": archive.name, "reason": f"no {CATALOGUE} in the archive"})
            continue
        lic = licence_of(f"{archive.stem}/x", paragraphs)  # copyright paragraphs are per archive: `Files: KatorLegaz/*`
        # Java properties files are ISO-8859-1 with \uXXXX escapes for anything else
        for idx, e in sorted(read_catalogue(cat_file.read_text(encoding="latin-1")).items(),
                             key=lambda kv: int(kv[0])):
            where = f"{archive.name}#{idx}"
            model = e.get("model", "").lstrip("/")
            if not model.lower().endswith(".obj"):
                dropped.append({"xml": where, "reason": f"model {model or '(none)'} is not an OBJ file"})
                continue
            obj = dest / model
            if not obj.is_file():
                dropped.append({"xml": where, "reason": f"model {model} not found in the archive"})
                continue
            textures = {p.name: str(p.resolve()) for p in sorted(obj.parent.iterdir())
                        if p.suffix.lower() in TEXTURE_EXTS and p.is_file()}
            mesh_id = str(obj.relative_to(sources))
            instances.append(Instance(
                scene_id=sanitize(f"{archive.stem}-{Path(model).stem}"), name=e.get("name", Path(model).stem),
                category=e.get("category", "unknown"), creator=e.get("creator", "unknown"), archive=archive.name,
                licences={f"{archive.name}:{model}": lic}, xml=where, mesh_id=mesh_id, textures=textures))
    seen: dict[str, str] = {}
    unique: list[Instance] = []
    for inst in sorted(instances, key=lambda i: (i.scene_id, i.xml)):
        if inst.scene_id in seen or inst.mesh_id in seen:
            dropped.append({"xml": inst.xml, "reason": f"same model as {seen.get(inst.scene_id) or seen[inst.mesh_id]}"})
            continue
        seen[inst.scene_id] = seen[inst.mesh_id] = inst.xml
        unique.append(inst)
    if not unique:
        raise SweetHome3DMissing(f"{root}: no usable furniture model found; {INSTALL_HINT}")
    return unique, dropped


def build_sweethome3d(cfg: SweetHome3DBuildConfig, progress: bool = True) -> Path:
    """Build (or resume) the furniture dataset into ``cfg.out``; returns the output folder.

    Same layout, manifest, determinism and resume as the other mesh builds
    (:func:`latentscenes.data.builder.build_mesh_dataset`); models that fail to load or render are dropped
    with the reason in ``build_log.txt`` and the manifest.

    Raises:
        SweetHome3DMissing: the package is not installed (the message gives the install command).
        ValueError: for inconsistent options.
        DatasetError: an unreadable archive, or no instance could be rendered.
    """
    return build_mesh_dataset(cfg, lambda: enumerate_instances(cfg), progress, render=render_instance)
