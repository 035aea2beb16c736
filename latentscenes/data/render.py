"""Offline multi-view rendering of textured meshes with pybullet's TinyRenderer (CPU, no GL needed).

Why TinyRenderer: it needs no system libraries, is deterministic and renders a 256x256 view in a few
milliseconds on one core (docs/data.md gives the figures). It has
no anti-aliasing and samples textures with the nearest texel, so every view is rendered at ``supersample``
times the output size and box-downsampled (area average) to the output size.

Conventions (the same as :mod:`latentscenes.data.types`):
  * cameras are OpenCV camera-to-world matrices (x right, y down, z forward), world z-up; they are built by
    :mod:`latentscenes.rendering.cameras` (``look_at_c2w``, ``sample_band_cameras``);
  * intrinsics are normalised by the image size: ``fx/W, fy/H, cx/W, cy/H`` with the principal point
    at the image centre (0.5, 0.5); pixel (row i, col j) has its centre at u=(j+0.5)/W, v=(i+0.5)/H;
  * the light is a directional light fixed in *world* space (not attached to the camera), so all views of
    a scene are multi-view consistent;
  * the background is white; the segmentation buffer gives an exact alpha mask that is saved alongside.

One :class:`MeshPart` carries at most one texture, because TinyRenderer binds one texture per visual shape;
a mesh with several textures (or untextured colours) is several parts, rendered as several bodies.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "MeshPart",
    "RenderSettings",
    "TinyRenderer",
    "intrinsics_from_fov",
]


@dataclass
class MeshPart:
    """One triangle mesh with one texture (or one flat colour).

    Attributes:
        vertices: ``[N, 3]`` float, world units.
        faces: ``[F, 3]`` int indices into ``vertices``.
        uvs: optional ``[N, 2]`` float texture coordinates (OpenGL convention: v = 0 at the image bottom).
        normals: optional ``[N, 3]`` float unit vertex normals (computed from the faces when absent).
        texture: optional path of an image file (any format Pillow reads, e.g. PNG or SGI ``.rgb``).
        color: RGBA in [0, 1] used when there is no texture (and as a tint otherwise: keep white).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None = None
    normals: np.ndarray | None = None
    texture: str | None = None
    color: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)


@dataclass
class RenderSettings:
    """How views are rendered.

    Attributes:
        resolution: output image side in pixels (square images).
        supersample: render at ``resolution * supersample`` and box-downsample (>= 1).
        fov_deg: full vertical (= horizontal) field of view in degrees.
        near, far: clip planes in world units (must bracket the object: near < distance - radius).
        light_dir: direction *towards* the light, world space (normalised internally).
        ambient, diffuse, specular: TinyRenderer lighting coefficients.
    """

    resolution: int = 128
    supersample: int = 2
    fov_deg: float = 50.0
    near: float = 0.5
    far: float = 5.0
    light_dir: tuple[float, float, float] = (0.4, -0.3, 0.85)
    ambient: float = 0.55
    diffuse: float = 0.5
    specular: float = 0.05


def intrinsics_from_fov(fov_deg: float) -> np.ndarray:
    """Normalised pinhole intrinsics ``[3, 3]`` float32 for a square image with the given full FOV (degrees)."""
    f = 0.5 / math.tan(math.radians(fov_deg) / 2.0)
    return np.array([[f, 0.0, 0.5], [0.0, f, 0.5], [0.0, 0.0, 1.0]], dtype=np.float32)


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], fn)
    n = np.linalg.norm(vn, axis=1, keepdims=True)
    vn = np.where(n > 1e-12, vn / np.maximum(n, 1e-12), np.array([0.0, 0.0, 1.0]))
    return vn


def _write_obj(path: Path, part: MeshPart) -> None:
    v = np.asarray(part.vertices, dtype=np.float64)
    f = np.asarray(part.faces, dtype=np.int64) + 1
    vn = part.normals if part.normals is not None else _vertex_normals(v, np.asarray(part.faces, dtype=np.int64))
    lines = ["v %.6f %.6f %.6f" % tuple(r) for r in v]
    lines += ["vn %.5f %.5f %.5f" % tuple(r) for r in np.asarray(vn, dtype=np.float64)]
    if part.uvs is not None:
        lines += ["vt %.6f %.6f" % tuple(r) for r in np.asarray(part.uvs, dtype=np.float64)]
        lines += ["f %d/%d/%d %d/%d/%d %d/%d/%d" % (a, a, a, b, b, b, c, c, c) for a, b, c in f]
    else:
        lines += ["f %d//%d %d//%d %d//%d" % (a, a, b, b, c, c) for a, b, c in f]
    path.write_text("\n".join(lines) + "\n")


class TinyRenderer:
    """A pybullet DIRECT connection that renders meshes; one per process (pybullet is single-threaded).

    Usage::

        r = TinyRenderer(settings)
        r.set_mesh(parts)                # uploads geometry (once per mesh)
        r.set_textures(parts)            # (re)binds textures, e.g. for another livery of the same mesh
        rgb, alpha = r.render(c2w)       # [H, W, 3] and [H, W] float32 in [0, 1], rgb composited on white
    """

    def __init__(self, settings: RenderSettings) -> None:
        import pybullet as p  # imported here so the package imports without pybullet

        self.p = p
        self.s = settings
        self.client = p.connect(p.DIRECT)
        self._tmp = tempfile.TemporaryDirectory(prefix="ls-render-")
        self._counter = 0
        self._bodies: list[int] = []
        self._tex_cache: dict[str, int] = {}

    def close(self) -> None:
        try:
            self.p.disconnect(self.client)
        finally:
            self._tmp.cleanup()

    def __enter__(self) -> "TinyRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _texture_png(self, src: str) -> str:
        """pybullet's image loader does not read SGI ``.rgb``: convert every texture to an RGB PNG once."""
        self._counter += 1
        dst = Path(self._tmp.name) / f"tex{self._counter}.png"
        with Image.open(src) as im:
            # palette images with a transparent index: via RGBA (same RGB values) to avoid Pillow's warning
            (im.convert("RGBA") if im.mode == "P" else im).convert("RGB").save(dst)
        return str(dst)

    def set_mesh(self, parts: list[MeshPart]) -> None:
        """Replace the scene with ``parts`` (geometry only; call :meth:`set_textures` to bind textures)."""
        p = self.p
        p.resetSimulation(physicsClientId=self.client)
        self._bodies = []
        self._tex_cache = {}
        for part in parts:
            self._counter += 1
            obj = Path(self._tmp.name) / f"part{self._counter}.obj"
            _write_obj(obj, part)
            vs = p.createVisualShape(p.GEOM_MESH, fileName=str(obj), meshScale=[1, 1, 1], physicsClientId=self.client)
            if vs < 0:
                raise RuntimeError(f"pybullet could not create a visual shape from {obj}")
            body = p.createMultiBody(baseMass=0, baseVisualShapeIndex=vs, physicsClientId=self.client)
            self._bodies.append(body)
            obj.unlink(missing_ok=True)
        self.set_textures(parts)

    def set_textures(self, parts: list[MeshPart]) -> None:
        """Bind each part's texture (or colour) to its body; ``parts`` must match the last :meth:`set_mesh`.

        Raises:
            ValueError: if the number of parts differs from the uploaded mesh.
            OSError: if a texture cannot be read.
        """
        p = self.p
        if len(parts) != len(self._bodies):
            raise ValueError(f"{len(parts)} parts given, {len(self._bodies)} uploaded")
        for body, part in zip(self._bodies, parts):
            if part.texture is not None:
                tid = self._tex_cache.get(part.texture)
                if tid is None:
                    tid = p.loadTexture(self._texture_png(part.texture), physicsClientId=self.client)
                    if tid < 0:
                        raise OSError(f"pybullet could not load texture {part.texture}")
                    self._tex_cache[part.texture] = tid
                p.changeVisualShape(body, -1, textureUniqueId=tid, rgbaColor=[1, 1, 1, 1], physicsClientId=self.client)
            else:
                p.changeVisualShape(body, -1, textureUniqueId=-1, rgbaColor=list(part.color), physicsClientId=self.client)

    def render(self, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Render one view from the OpenCV camera-to-world ``c2w`` ``[4, 4]``.

        Returns:
            rgb ``[H, W, 3]`` float32 in [0, 1] composited on white, and alpha ``[H, W]`` float32 in [0, 1]
            (fraction of supersamples covered by the object, quantised to 1/255), H = W = ``settings.resolution``.
        """
        rgb, a = self.render_u8(c2w)
        return rgb.astype(np.float32) / 255.0, a.astype(np.float32) / 255.0

    def render_u8(self, c2w: np.ndarray, background: tuple[int, int, int] = (255, 255, 255)) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`render`, as ``uint8`` arrays (0..255): what the dataset files store.

        The supersampled image is composited on ``background`` (RGB 0..255, white by default) using the
        segmentation buffer (exact coverage), then box-averaged by Pillow's ``Image.reduce`` (an area average
        over each ``supersample``^2 block).
        """
        p, s = self.p, self.s
        size = s.resolution * s.supersample
        w2c = np.linalg.inv(np.asarray(c2w, dtype=np.float64))
        # OpenCV camera (x right, y down, z fwd) -> OpenGL eye space (x right, y up, z back)
        w2c_gl = np.diag([1.0, -1.0, -1.0, 1.0]) @ w2c
        view = w2c_gl.T.reshape(-1).tolist()  # column-major
        proj = p.computeProjectionMatrixFOV(fov=s.fov_deg, aspect=1.0, nearVal=s.near, farVal=s.far)
        ld = np.asarray(s.light_dir, dtype=np.float64)
        ld = (ld / np.linalg.norm(ld)).tolist()
        _, _, rgba, _, seg = p.getCameraImage(
            size,
            size,
            viewMatrix=view,
            projectionMatrix=proj,
            renderer=p.ER_TINY_RENDERER,
            lightDirection=ld,
            lightColor=[1, 1, 1],
            lightAmbientCoeff=s.ambient,
            lightDiffuseCoeff=s.diffuse,
            lightSpecularCoeff=s.specular,
            shadow=0,
            physicsClientId=self.client,
        )
        rgba = np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)
        obj = np.asarray(seg).reshape(size, size) >= 0
        rgb = np.where(obj[..., None], rgba[..., :3], np.asarray(background, dtype=np.uint8))
        a = obj.astype(np.uint8) * np.uint8(255)
        if s.supersample > 1:
            rgb = np.asarray(Image.fromarray(rgb).reduce(s.supersample))
            a = np.asarray(Image.fromarray(a).reduce(s.supersample))
        return rgb, a
