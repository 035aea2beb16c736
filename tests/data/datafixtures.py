"""Helpers for the data tests: small scenes in every layout and a fake FlightGear tree, all generated."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
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


# ------------------------------------------------------------------------------------------ fake TORCS
def _torcs_car_xml(name: str, display: str, category: str, mesh: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<params name="{display}" type="template">\n'
            f' <section name="Graphic Objects">\n  <attstr name="env" val="{name}.acc"/>\n'
            f'  <section name="Ranges">\n   <section name="1">\n    <attnum name="threshold" val="0"/>\n'
            f'    <attstr name="car" val="{mesh}"/>\n   </section>\n   <section name="2">\n'
            f'    <attstr name="car" val="{name}-lod1.acc"/>\n   </section>\n  </section>\n </section>\n'
            f' <section name="Car">\n  <attstr name="category" val="{category}"/>\n </section>\n</params>\n')


def make_fake_torcs(root: Path) -> Path:
    """A tiny installed ``torcs-data``: ``<root>/usr/share/games/torcs`` (returned) with 3 cars, one robot
    with liveries, and the package's ``copyright`` / ``changelog.Debian.gz``; plus what the builder must drop."""
    import gzip

    tr = root / "usr" / "share" / "games" / "torcs"
    cars = {"AAA": ((4.4, 1.2, 1.9), "Aaa Coupe", "trb1", (200, 30, 30)),
            "BBB": ((4.0, 1.4, 1.8), "Bbb Saloon", "stock1", (30, 30, 200)),
            "CCC": ((3.6, 0.9, 1.6), "Ccc Roadster", "trb1", (30, 160, 30))}
    for name, (dims, display, cat, col) in cars.items():
        d = tr / "cars" / name
        d.mkdir(parents=True)
        (d / f"{name}.acc").write_text(ac_box(dims, f"{name}.rgb", extra=(0.0, dims[1] / 2 + 0.1, 0.0)))
        (d / f"{name}-lod1.acc").write_text(ac_box(dims, f"{name}.rgb"))  # a lower level of detail: not used
        _tex(d / f"{name}.rgb", col)  # SGI, as TORCS's textures (Pillow writes it from the extension)
        (d / f"{name}.xml").write_text(_torcs_car_xml(name, display, cat, f"{name}.acc"))
    # a car folder whose mesh is missing -> dropped
    (tr / "cars" / "DDD").mkdir()
    (tr / "cars" / "DDD" / "DDD.xml").write_text(_torcs_car_xml("DDD", "Ddd", "trb1", "DDD.acc"))
    # robot "bot": 1 -> AAA with its own paint, 2 -> AAA without (the default paint: duplicate),
    # 3 -> a car of another package (dropped), 4 -> BBB with its own paint
    bot = tr / "drivers" / "bot"
    bot.mkdir(parents=True)
    _tex(bot / "1" / "AAA.rgb", (240, 200, 20))
    _tex(bot / "4" / "BBB.rgb", (20, 200, 200))
    entries = {"1": "AAA", "2": "AAA", "3": "pw-other", "4": "BBB"}
    secs = "".join(f'   <section name="{i}">\n    <attstr name="name" val="bot {i}"/>\n'
                   f'    <attstr name="car name" val="{c}"/>\n   </section>\n' for i, c in entries.items())
    (bot / "bot.xml").write_text(f'<?xml version="1.0"?>\n<params name="bot" type="robotdef">\n <section name="Robots">\n'
                                 f'  <section name="index">\n{secs}  </section>\n </section>\n</params>\n')
    doc = root / "usr" / "share" / "doc" / "torcs-data"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: TORCS\n\n"
        "Files: *\nCopyright: 2000, Someone\nLicense: GPL-2+\n\n"
        "Files: data/cars/models/AAA/*\n       data/cars/models/CCC/*\nCopyright: 2002, Someone Else\n"
        "License: Free-Art-License\n\n"
        "License: GPL-2+\n On Debian systems the full text is in /usr/share/common-licenses/GPL-2.\n")
    with gzip.open(doc / "changelog.Debian.gz", "wt") as f:
        f.write("torcs (9.9.9-1) unstable; urgency=medium\n\n  * Fake.\n")
    return tr


# ------------------------------------------------------------------------------------------ fake sweethome3d
CUBE_OBJ = """mtllib cube.mtl
v -1 -1 -1
v 1 -1 -1
v 1 1 -1
v -1 1 -1
v -1 -1 1
v 1 -1 1
v 1 1 1
v -1 1 1
vt 0 0
vt 1 0
vt 1 1
vt 0 1
usemtl {mat}
f 1/1 3/3 2/2
f 1/1 4/4 3/3
f 5/1 6/2 7/3
f 5/1 7/3 8/4
f 1/1 2/2 6/3
f 1/1 6/3 5/4
f 2/1 3/2 7/3
f 2/1 7/3 6/4
f 3/1 4/2 8/3
f 3/1 8/3 7/4
f 4/1 1/2 5/3
f 4/1 5/3 8/4
"""
MTL = "newmtl red\nKd 0.9 0.1 0.1\n\nnewmtl wood\nKd 1 1 1\nmap_Kd wood.png\n"


def _catalogue(entries: list[tuple[str, str, str]]) -> str:
    lines = ["# fake catalogue", "id=x", "name=Fake catalog", ""]
    for i, (name, cat, model) in enumerate(entries, start=1):
        lines += [f"id#{i}=fake#{name}", f"name#{i}={name}", f"category#{i}={cat}", f"model#{i}={model}",
                  f"creator#{i}=Someone", ""]
    return "\n".join(lines)


def _archive(path: Path, folder: str, models: dict[str, str], entries: list[tuple[str, str, str]]) -> None:
    tex = Image.fromarray(np.kron(np.array([[0, 255], [255, 0]], np.uint8), np.ones((8, 8), np.uint8))[..., None]
                          .repeat(3, -1))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("PluginFurnitureCatalog.properties", _catalogue(entries))
        z.writestr(f"{folder}/icon.png", b"not a texture")  # a catalogue icon at the top level
        for model, mat in models.items():
            z.writestr(f"{folder}/{model}/{model}.obj", CUBE_OBJ.format(mat=mat))
            z.writestr(f"{folder}/{model}/cube.mtl", MTL)
            buf = io.BytesIO()
            tex.save(buf, format="PNG")
            z.writestr(f"{folder}/{model}/wood.png", buf.getvalue())


def make_fake_sh3d(base: Path) -> Path:
    """``<base>/usr/share/sweethome3d/furniture`` with two archives (5 usable models: textured and flat-coloured
    cubes; one entry without its file, one not an OBJ), plus the package's doc folder."""
    root = base / "usr/share/sweethome3d/furniture"
    root.mkdir(parents=True)
    _archive(root / "Alpha.sh3f", "alpha", {"chair": "wood", "table": "red", "lamp": "red"},
             [("Chair", "Living room", "/alpha/chair/chair.obj"), ("Table", "Kitchen", "/alpha/table/table.obj"),
              ("Lamp", "Lights", "/alpha/lamp/lamp.obj"), ("Ghost", "Misc", "/alpha/ghost/ghost.obj"),
              ("Picture", "Misc", "/alpha/picture.3ds")])
    _archive(root / "Beta.sh3f", "beta", {"sofa": "wood", "bed": "red"},
             [("Sofa", "Living room", "/beta/sofa/sofa.obj"), ("Bed", "Bedroom", "/beta/bed/bed.obj")])
    doc = base / "usr/share/doc/sweethome3d-furniture"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Format: x\n\nFiles: *\nLicense: CC-BY-3.0\n\nFiles: Beta/*\nLicense: CC0\n")
    with gzip.open(doc / "changelog.Debian.gz", "wt") as f:
        f.write("sweethome3d-furniture (7.7-1) unstable; urgency=low\n")
    return root


def data_app():
    """A typer app with the ``data`` command group (and a second command, which keeps ``data`` a sub-command)."""
    import typer

    from latentscenes.cli.data import register

    app = typer.Typer()

    @app.command()
    def version() -> None:
        pass

    register(app)
    return app
