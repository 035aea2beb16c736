"""Helpers for the data tests: small scenes in every layout and a fake FlightGear tree, all generated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from latentscenes.rendering.cameras import look_at_c2w


def ring_cameras(n: int, distance: float = 2.0, elevation_deg: float = 20.0) -> np.ndarray:
    """``[n, 4, 4]`` OpenCV c2w on a ring, looking at the origin."""
    el = np.radians(elevation_deg)
    out = []
    for i in range(n):
        az = 2 * np.pi * i / n
        eye = distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        out.append(look_at_c2w(eye))
    return np.stack(out)


def random_images(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def write_srn(root: Path, n: int = 4, size: int = 16, intr_size: int | None = None, seed: int = 0,
              masks: bool = False) -> tuple[Path, np.ndarray, np.ndarray]:
    """SRN scene; ``intr_size`` writes intrinsics for another image size (ShapeNet: 512 for 128 images)."""
    (root / "rgb").mkdir(parents=True)
    (root / "pose").mkdir()
    imgs = random_images(n, size, size, seed)
    c2w = ring_cameras(n)
    for i in range(n):
        Image.fromarray(imgs[i]).save(root / "rgb" / f"{i:06d}.png")
        (root / "pose" / f"{i:06d}.txt").write_text(" ".join(f"{x:.8f}" for x in c2w[i].reshape(-1)))
    s = intr_size or size
    f = 1.2 * s
    (root / "intrinsics.txt").write_text(f"{f} {s / 2} {s / 2} 0.\n0. 0. 0.\n1.\n{s} {s}\n")
    if masks:
        (root / "mask").mkdir()
        for i in range(n):
            m = np.zeros((size, size), np.uint8)
            m[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 255
            Image.fromarray(m).save(root / "mask" / f"{i:06d}.png")
    return root, imgs, c2w


# ------------------------------------------------------------------------------------------ fake FlightGear
def ac_box(dims: tuple[float, float, float], tex: str | None, extra: tuple[float, float, float] | None = None) -> str:
    """AC3D text of a textured box (y-up), optionally with a second small box at ``extra`` (a child object)."""

    def box(name: str, d: tuple[float, float, float], off: tuple[float, float, float]) -> str:
        x, y, z = (v / 2 for v in d)
        v = [(-x, -y, -z), (x, -y, -z), (x, y, -z), (-x, y, -z), (-x, -y, z), (x, -y, z), (x, y, z), (-x, y, z)]
        quads = [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (2, 3, 7, 6), (1, 2, 6, 5), (0, 4, 7, 3)]
        uv = [(0, 0), (1, 0), (1, 1), (0, 1)]
        lines = ["OBJECT poly", f'name "{name}"', f"loc {off[0]} {off[1]} {off[2]}"]
        if tex:
            lines.append(f'texture "{tex}"')
        lines.append(f"numvert {len(v)}")
        lines += [f"{a} {b} {c}" for a, b, c in v]
        lines.append(f"numsurf {len(quads)}")
        for q in quads:
            lines += ["SURF 0x10", "mat 0", "refs 4"]
            lines += [f"{i} {u} {w}" for i, (u, w) in zip(q, uv)]
        lines.append("kids 0")
        return "\n".join(lines)

    kids = [box("body", dims, (0.0, 0.0, 0.0))]
    if extra is not None:
        kids.append(box("fin", (0.3, 0.5, 0.1), extra))
    head = ['AC3Db', 'MATERIAL "m" rgb 1 1 1  amb 0.2 0.2 0.2  emis 0 0 0  spec 0 0 0  shi 10  trans 0',
            "OBJECT world", f"kids {len(kids)}"]
    return "\n".join(head + kids) + "\n"


def _tex(path: Path, color: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.zeros((16, 16, 3), np.uint8)
    a[:] = color
    a[:8, :8] = (255, 255, 255)
    Image.fromarray(a).save(path)


def make_fake_flightgear(root: Path) -> Path:
    """A tiny ``AI/Aircraft`` tree: 3 airframes with liveries, plus things the builder must drop."""
    specs = {"AAA": ((4.0, 0.8, 0.8), ["Red", "Blue"]), "BBB": ((3.0, 0.6, 2.5), ["Green", "Gray"]),
             "CCC": ((2.5, 1.2, 1.2), ["Yellow"])}
    colors = {"Red": (200, 30, 30), "Blue": (30, 30, 200), "Green": (30, 160, 30), "Gray": (90, 90, 90),
              "Yellow": (220, 200, 20)}
    for name, (dims, liveries) in specs.items():
        d = root / name
        (d / "Models").mkdir(parents=True)
        (d / "Models" / f"{name}.ac").write_text(ac_box(dims, f"{name}-tex.png", extra=(-dims[0] / 2, 0.5, 0.0)))
        _tex(d / "Models" / f"{name}-tex.png", (128, 128, 128))
        (d / f"{name}-main.xml").write_text(f"<?xml version='1.0'?>\n<PropertyList>\n <description>{name} jet</description>\n"
                                           f" <path>Models/{name}.ac</path>\n <model><path>Lights/nav.xml</path></model>\n</PropertyList>\n")
        for lv in liveries:
            _tex(d / "Textures" / lv / f"{name}-tex.png", colors[lv])
            (d / f"{name}-{lv}.xml").write_text(f"<?xml version='1.0'?>\n<PropertyList include=\"{name}-main.xml\">\n"
                                               f" <texture-path>Textures/{lv}</texture-path>\n</PropertyList>\n")
    # a model whose texture exists nowhere -> dropped (texture not found)
    (root / "DDD" / "Models").mkdir(parents=True)
    (root / "DDD" / "Models" / "DDD.ac").write_text(ac_box((3.0, 1.0, 1.0), "DDD-tex.png"))
    (root / "DDD" / "DDD-main.xml").write_text("<PropertyList><path>Models/DDD.ac</path></PropertyList>\n")
    # a duplicate of AAA-Red -> dropped
    (root / "AAA" / "AAA-RedCopy.xml").write_text("<PropertyList include=\"AAA-main.xml\">\n <texture-path>Textures/Red</texture-path>\n</PropertyList>\n")
    # a balloon -> dropped (not an airplane)
    b = root / "balloon"
    (b / "Models").mkdir(parents=True)
    (b / "Models" / "balloon1.ac").write_text(ac_box((1, 1, 1), None))
    (b / "balloon1.xml").write_text("<PropertyList><path>Models/balloon1.ac</path></PropertyList>\n")
    # a light model -> dropped
    (root / "CCC" / "Models" / "light").mkdir()
    (root / "CCC" / "Models" / "light" / "RedLight.ac").write_text(ac_box((0.1, 0.1, 0.1), None))
    (root / "CCC" / "Models" / "light" / "RedLight.xml").write_text("<PropertyList><path>RedLight.ac</path></PropertyList>\n")
    # an XML that is not a model (no path) -> ignored silently (not a candidate)
    (root / "fallback_models.xml").write_text("<PropertyList><x>1</x></PropertyList>\n")
    return root


def pyassimp_available() -> bool:
    try:
        import pyassimp  # noqa: F401

        return True
    except Exception:
        return False


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj))
