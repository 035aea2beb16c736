"""Load textured AC3D (and other) meshes with Assimp, and normalise them into the canonical frame.

Library choice: the maintained Assimp library reads AC3D (``.ac``) files, including per-surface UVs,
``texrep``/``texoff``, child transforms and materials; its Python binding ``pyassimp`` (PyPI, ctypes over
the system ``libassimp``) was checked to load the FlightGear ``.ac`` files with their UVs and texture names,
and TORCS's ``.acc`` variant (triangle-strip surfaces ``SURF 0x?4``, vertex lines that also carry a normal,
several ``texture`` layers per object, of which Assimp keeps the first, the base layer), so no own AC3D
parser is written. Assimp's post-processing triangulates polygons, flattens the node hierarchy
(``PreTransformVertices``) and splits line/point primitives into separate meshes that are dropped here (AC3D
``SURF`` line types are not surfaces).

Canonical frame: the FlightGear and TORCS models are y-up with the fuselage / car body along x. They are
rotated to z-up with ``(x, y, z) -> (x, -z, y)``, centred on the bounding-box centre and scaled so the
farthest vertex lies at ``radius`` (0.9 by default), so every scene fits the same tri-plane box [-1, 1]^3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentscenes.data.render import MeshPart
from latentscenes.data.types import DatasetError

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

# AC3D ``texture "name"`` lines; TORCS's ``.acc`` files add a layer word after the name (``texture "x.rgb" base``)
_AC_TEX = re.compile(rb'^texture\s+"([^"]*)"', re.MULTILINE)


def ac_texture_names(ac: Path) -> list[str]:
    """Texture file names referenced by an AC3D file (``texture "..."`` lines), sorted and unique."""
    return sorted({m.decode("utf-8", "replace") for m in _AC_TEX.findall(ac.read_bytes()) if m.strip()})


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name``, else ``folder/<basename of name>``, else a case-insensitive match of the basename
    (model files name their textures loosely); the resolved path, or None."""
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


@dataclass
class LoadedMesh:
    """Mesh parts grouped by texture name, before texture paths are resolved.

    Attributes:
        parts: list of ``MeshPart`` (``texture`` holds the *name* written in the file, or None).
        num_triangles: total triangle count.
        scale: factor applied by :func:`normalise_parts` (1.0 before).
        centre: bounding-box centre removed by :func:`normalise_parts` (in the rotated frame).
    """

    parts: list[MeshPart]
    num_triangles: int
    scale: float = 1.0
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)


def load_mesh_assimp(path: str | Path) -> LoadedMesh:
    """Load a mesh file with Assimp; parts are grouped by texture file name (or by flat colour).

    Raises:
        DatasetError: naming the file if pyassimp/libassimp is missing, the file does not parse, or it holds
            no triangles.
    """
    path = Path(path)
    try:
        import pyassimp  # imported on use: pyassimp needs the system libassimp, only the mesh builders do
        from pyassimp import postprocess as pp  # (as above)
    except Exception as e:  # ImportError, or OSError when libassimp is missing
        raise DatasetError(f"{path}: cannot import pyassimp ({e}); install libassimp and `pip install pyassimp`") from e
    flags = pp.aiProcess_Triangulate | pp.aiProcess_PreTransformVertices | pp.aiProcess_SortByPType
    groups: dict[tuple, list[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]] = {}
    try:
        with pyassimp.load(str(path), processing=flags) as scene:
            for m in scene.meshes:
                faces = np.asarray(m.faces)
                if faces.ndim != 2 or faces.shape[0] == 0 or faces.shape[1] != 3:
                    continue  # lines / points
                v = np.asarray(m.vertices, dtype=np.float64)
                n = np.asarray(m.normals, dtype=np.float64) if m.normals is not None and len(m.normals) == len(v) else None
                tc = m.texturecoords
                uv = None
                if tc is not None and len(tc) > 0 and np.asarray(tc[0]).shape[0] == len(v):
                    uv = np.asarray(tc[0], dtype=np.float64)[:, :2]
                # PropertyGetter.items() hides the (name, semantic) keys; read the raw dict
                mat = {k[0] if isinstance(k, tuple) else k: val for k, val in dict.items(scene.materials[m.materialindex].properties)}
                tex = mat.get("file") if isinstance(mat.get("file"), str) and mat.get("file") else None
                if uv is None:
                    tex = None
                if tex is not None:
                    key = ("tex", tex)
                else:
                    d = mat.get("diffuse", [0.8, 0.8, 0.8])
                    key = ("col", tuple(round(float(c), 3) for c in list(d)[:3]))
                groups.setdefault(key, []).append((v, faces.astype(np.int64), uv, n))
    except DatasetError:
        raise
    except Exception as e:
        raise DatasetError(f"{path}: Assimp could not load the mesh ({type(e).__name__}: {e})") from e
    parts: list[MeshPart] = []
    total = 0
    for key in sorted(groups, key=str):
        items = groups[key]
        vs, fs, uvs, ns = [], [], [], []
        off = 0
        for v, f, uv, n in items:
            vs.append(v)
            fs.append(f + off)
            off += len(v)
            uvs.append(uv if uv is not None else np.zeros((len(v), 2)))
            ns.append(n)
        v = np.concatenate(vs)
        f = np.concatenate(fs)
        normals = np.concatenate(ns) if all(n is not None for n in ns) else None
        total += len(f)
        if key[0] == "tex":
            parts.append(MeshPart(v, f, np.concatenate(uvs), normals, texture=key[1]))
        else:
            parts.append(MeshPart(v, f, None, normals, texture=None, color=(*key[1], 1.0)))
    if total == 0:
        raise DatasetError(f"{path}: no triangles in the mesh")
    return LoadedMesh(parts=parts, num_triangles=total)


def normalise_parts(mesh: LoadedMesh, radius: float = 0.9, y_up: bool = True) -> LoadedMesh:
    """Rotate y-up -> z-up (if ``y_up``), centre on the bounding-box centre, scale the farthest vertex to ``radius``.

    Returns a new :class:`LoadedMesh` (vertices and normals transformed; uvs and textures unchanged).

    Raises:
        DatasetError: if the mesh is degenerate (all vertices at one point) or holds non-finite values.
    """
    R = Y_UP_TO_Z_UP if y_up else np.eye(3)
    allv = np.concatenate([p.vertices for p in mesh.parts]) @ R.T
    if not np.isfinite(allv).all():
        raise DatasetError("mesh has non-finite vertex coordinates")
    lo, hi = allv.min(0), allv.max(0)
    centre = (lo + hi) / 2.0
    r = float(np.linalg.norm(allv - centre, axis=1).max())
    if r < 1e-9:
        raise DatasetError("degenerate mesh (all vertices coincide)")
    s = radius / r
    parts = []
    for p in mesh.parts:
        v = (p.vertices @ R.T - centre) * s
        n = None if p.normals is None else p.normals @ R.T
        parts.append(MeshPart(v, p.faces, p.uvs, n, p.texture, p.color))
    return LoadedMesh(parts=parts, num_triangles=mesh.num_triangles, scale=s, centre=tuple(float(c) for c in centre))
