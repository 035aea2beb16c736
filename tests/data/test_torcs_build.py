"""``latentscenes data build torcs``: enumeration, licences and the CLI on a generated fake ``torcs-data`` tree
(always run), then small builds from the real Debian package (skipped when ``torcs-data`` is not installed):
determinism, mesh-disjoint splits, mask coverage, and poses that agree with the masks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from latentscenes.data import MultiSceneDataset
from latentscenes.data.builder import assign_splits, select_instances
from latentscenes.data.torcs import (
    DEFAULT_TORCS_ROOT,
    TorcsBuildConfig,
    TorcsMissing,
    build_torcs,
    enumerate_instances,
    licence_of,
    package_version,
    parse_dep5,
)
from latentscenes.data.types import DatasetError

from datafixtures import data_app  # noqa: E402  (tests/data is on sys.path: conftest.py)

REAL = DEFAULT_TORCS_ROOT
needs_real = pytest.mark.skipif(not (REAL / "cars").is_dir(),
                                reason="torcs-data is not installed (scripts/setup.sh installs it: apt-get install -y torcs-data)")


def _cfg(root: Path, out: Path, **kw) -> TorcsBuildConfig:
    base = dict(out=out, torcs_root=root, views=3, test_views=1, resolution=32, workers=1, seed=0)
    base.update(kw)
    return TorcsBuildConfig(**base)


# ------------------------------------------------------------------------------------------ fake package
def test_enumeration_liveries_duplicates_and_licences(fake_torcs):
    inst, dropped = enumerate_instances(fake_torcs)
    assert [i.scene_id for i in inst] == ["AAA", "AAA-bot-1", "BBB", "BBB-bot-4", "CCC"]
    by = {i.scene_id: i for i in inst}
    # a livery shares its car's mesh; its own paint replaces the car's texture, found in drivers/<robot>/<i>/
    assert by["AAA-bot-1"].mesh_id == by["AAA"].mesh_id == "cars/AAA/AAA.acc"  # Ranges' first entry, not the LOD
    assert by["AAA-bot-1"].textures["AAA.rgb"].endswith("drivers/bot/1/AAA.rgb")
    assert by["AAA"].textures["AAA.rgb"].endswith("cars/AAA/AAA.rgb")
    assert (by["AAA"].car_name, by["AAA"].category, by["AAA-bot-1"].livery) == ("Aaa Coupe", "trb1", "bot/1")
    reasons = {d["xml"]: d["reason"] for d in dropped}
    assert "duplicate of AAA" in reasons["drivers/bot/bot.xml#2"]  # drives the default paint
    assert "pw-other" in reasons["drivers/bot/bot.xml#3"] and "not installed" in reasons["drivers/bot/bot.xml#3"]
    assert "DDD.acc not found" in reasons["cars/DDD/DDD.xml"]
    # licences per file: the car-model paragraph for AAA's mesh, the catch-all for BBB and the robot's paint
    assert by["AAA-bot-1"].licences == {"cars/AAA/AAA.acc": "Free-Art-License", "drivers/bot/1/AAA.rgb": "GPL-2+"}
    assert set(by["BBB"].licences.values()) == {"GPL-2+"}
    assert package_version(fake_torcs) == "9.9.9-1"


def test_dep5_last_matching_paragraph_wins(tmp_path):
    cp = tmp_path / "copyright"
    cp.write_text("Format: x\n\nFiles: *\nLicense: GPL-2+\n\nFiles: data/cars/models/a/*\n data/cars/models/b/*\n"
                  "Copyright: me\nLicense: Free-Art-License\n long text\n\nFiles: data/cars/models/b/x.rgb\nLicense: CC0\n")
    paras = parse_dep5(cp)
    assert paras[1] == (["data/cars/models/a/*", "data/cars/models/b/*"], "Free-Art-License")
    assert licence_of("cars/a/a.acc", paras) == "Free-Art-License"
    assert licence_of("cars/b/x.rgb", paras) == "CC0"
    assert licence_of("drivers/bot/1/a.rgb", paras) == "GPL-2+"
    assert licence_of("cars/c/c.acc", parse_dep5(cp)[1:]) == "unknown"
    (tmp_path / "bad").write_text("just text\n")
    with pytest.raises(DatasetError, match="bad: no 'Files:' paragraph"):
        parse_dep5(tmp_path / "bad")


def test_missing_package_gives_install_command(tmp_path):
    with pytest.raises(TorcsMissing, match="apt-get install -y torcs-data"):
        build_torcs(_cfg(tmp_path / "nope", tmp_path / "out"))


def test_cli_build_and_validate_fake_package(fake_torcs, tmp_path):
    out = tmp_path / "ds"
    r = CliRunner().invoke(data_app(), ["data", "build", "torcs", "--out", str(out), "--torcs-root", str(fake_torcs),
                                    "--views", "2", "--test-views", "1", "--resolution", "16", "--workers", "1",
                                    "--exploit-mesh-fraction", "0.3"])
    assert r.exit_code == 0, r.output
    assert "mean object coverage" in " ".join(r.output.split())  # rich wraps long lines
    man = json.loads((out / "manifest.json").read_text())
    assert man["counts"]["built"] == 5 and man["name"] == "torcs-cars"
    assert man["source"]["version"] == "9.9.9-1" and "Free-Art-License" in man["source"]["licences"]
    assert man["scenes"]["AAA-bot-1"]["licences"]["drivers/bot/1/AAA.rgb"] == "GPL-2+"
    r = CliRunner().invoke(data_app(), ["data", "validate", str(out)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(data_app(), ["data", "build", "torcs", "--out", str(tmp_path / "o"), "--torcs-root", str(tmp_path / "none")])
    assert r.exit_code == 2 and "apt-get install -y torcs-data" in r.output


def test_cli_defaults_are_the_config_defaults():
    """The command's options repeat the config's defaults (the CLI module imports no builder at start-up)."""
    cmd = typer.main.get_command(data_app())
    build = cmd.commands["data"].commands["build"].commands["torcs"]
    # typer vendors its own click: select options by kind, not by click.Option (which matched nothing)
    opts = {p.name: p.default for p in build.params if p.param_type_name == "option"}
    assert len(opts) > 10
    d = TorcsBuildConfig()
    names = {"elevation_min": "elevation_min_deg", "elevation_max": "elevation_max_deg"}
    for k, v in opts.items():
        want = getattr(d, names.get(k, k))
        assert (str(v) if isinstance(want, Path) else v) == (str(want) if isinstance(want, Path) else want), k


# ------------------------------------------------------------------------------------------ real package
@needs_real
def test_real_package_instances_and_mesh_disjoint_splits():
    inst, dropped = enumerate_instances(REAL)
    meshes = {i.mesh_id for i in inst}
    assert len(inst) >= 60 and len(meshes) >= 15
    # the most detailed body: cars/<car>/<car>.acc, never a -lodN file
    assert all(i.mesh_id == f"cars/{i.car}/{i.car}.acc" for i in inst)
    assert all("unknown" not in i.licences.values() for i in inst) and package_version(REAL)
    assert any("not installed" in d["reason"] for d in dropped)
    cfg = TorcsBuildConfig()
    splits, held = assign_splits(inst, cfg.exploit_mesh_fraction, cfg.seed)
    assert len(held) == math.ceil(cfg.exploit_mesh_fraction * len(meshes))
    for m in meshes:  # every livery of a mesh is in the same split; exploit = exactly the held-out meshes
        assert len({splits[i.scene_id] for i in inst if i.mesh_id == m}) == 1
    assert {i.mesh_id for i in inst if splits[i.scene_id] == "exploit"} == set(held)
    sub = select_instances(inst, splits, 3, cfg.seed)
    assert {splits[i.scene_id] for i in sub} == {"train", "exploit"} and len({i.mesh_id for i in sub}) == 3


@pytest.fixture(scope="module")
def real_builds(tmp_path_factory):
    """The same 3-car subset built twice (32 px, 3 + 1 views), the first one built again (a resume)."""
    if not (REAL / "cars").is_dir():
        pytest.skip("torcs-data is not installed (scripts/setup.sh installs it: apt-get install -y torcs-data)")
    from datafixtures import pyassimp_available

    if not pyassimp_available():
        pytest.skip("pyassimp / libassimp not available")
    base = tmp_path_factory.mktemp("torcs")
    a = build_torcs(_cfg(REAL, base / "a", num_instances=3), progress=False)
    b = build_torcs(_cfg(REAL, base / "b", num_instances=3), progress=False)
    return a, b


@needs_real
def test_real_build_is_deterministic_and_resumes(real_builds):
    a, b = real_builds
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        if rel.name == "build_log.txt":
            continue  # holds the elapsed time
        da, db = (a / rel).read_bytes(), (b / rel).read_bytes()
        if rel.name == "manifest.json":  # identical except the output folder
            da, db = (json.loads(x) for x in (da, db))
            assert da["config"].pop("out") != db["config"].pop("out")
        assert da == db, rel
    man = json.loads((a / "manifest.json").read_text())
    stamps = {s: (a / s / "scene.json").stat().st_mtime_ns for s in man["scenes"]}
    build_torcs(_cfg(REAL, a, num_instances=3), progress=False)  # nothing left to do: nothing re-rendered
    assert {s: (a / s / "scene.json").stat().st_mtime_ns for s in man["scenes"]} == stamps
    assert json.loads((a / "manifest.json").read_text()) == man


@needs_real
def test_real_build_layout_splits_and_validation(real_builds):
    from latentscenes.data.validate import validate_dataset

    a, _ = real_builds
    man = json.loads((a / "manifest.json").read_text())
    assert man["counts"]["built"] == 3 and man["render"] == {"near": 1.3, "far": 3.3, "box_size": 2.0}
    tr, ex = (set(man["splits"][s]) for s in ("train", "exploit"))
    assert tr and ex and not tr & ex
    mesh = {s: v["mesh_id"] for s, v in man["scenes"].items()}
    assert not {mesh[s] for s in tr} & {mesh[s] for s in ex}  # no exploit mesh is seen in training
    assert {mesh[s] for s in ex} <= set(man["held_out_meshes"])
    sv = MultiSceneDataset(a).load(sorted(tr)[0])
    assert sv.images.shape == (4, 3, 32, 32) and sv.masks is not None and sv.split == ["train"] * 3 + ["test"]
    assert (sv.images.permute(0, 2, 3, 1)[sv.masks[:, 0] == 0] > 0.99).all()  # white background
    rep = validate_dataset(a, figures_dir=a / "_fig", progress=False, workers=1)
    assert rep.ok, rep.problems


@needs_real
def test_real_build_coverage_is_recorded_and_in_range(real_builds):
    a, _ = real_builds
    man = json.loads((a / "manifest.json").read_text())
    means = []
    for sid, meta in man["scenes"].items():
        m = np.stack([np.asarray(Image.open(p), dtype=np.float64) / 255.0 for p in sorted((a / sid / "mask").glob("*.png"))])
        per_view = m.reshape(len(m), -1).mean(1)
        assert meta["coverage"]["mean"] == pytest.approx(per_view.mean(), abs=1e-5)  # what the masks on disk say
        assert meta["coverage"]["min"] == pytest.approx(per_view.min(), abs=1e-5)
        means.append(per_view.mean())
    assert man["object_coverage"]["mean"] == pytest.approx(np.mean(means), abs=1e-5)
    # SRN-cars framing: about 18 % of the frame (a 4.5 m car seen from 2.3 / 0.9 x its half-diagonal at 52 deg)
    assert 0.12 < man["object_coverage"]["mean"] < 0.26, man["object_coverage"]


@needs_real
def test_real_build_poses_agree_with_masks(real_builds):
    """Project the normalised mesh's vertices with the saved K and c2w: they must fall on the saved mask."""
    from latentscenes.data.meshes import load_mesh_assimp, normalise_parts

    a, _ = real_builds
    man = json.loads((a / "manifest.json").read_text())
    ds = MultiSceneDataset(a)
    for sid, meta in man["scenes"].items():
        mesh = normalise_parts(load_mesh_assimp(REAL / meta["mesh_id"]), radius=man["camera"]["radius"], y_up=True)
        assert mesh.scale == pytest.approx(meta["scale"])
        v = np.concatenate([p.vertices[np.unique(p.faces)] for p in mesh.parts])  # vertices of triangles only
        sv = ds.load(sid)
        H = sv.images.shape[-1]
        for k in range(sv.num_views):
            c2w, K = sv.c2w[k].double().numpy(), sv.K[k].double().numpy()
            w2c = np.linalg.inv(c2w)
            cam = v @ w2c[:3, :3].T + w2c[:3, 3]
            assert (cam[:, 2] > 0).all()
            px = (cam @ K.T)[:, :2] / cam[:, 2:3] * H - 0.5  # (col, row), pixel centres at integers
            rows, cols = np.nonzero(sv.masks[k, 0].numpy() > 0.5)
            pts = np.stack([cols, rows], 1).astype(np.float64)
            d = np.sqrt(((px[:, None, :] - pts[None]) ** 2).sum(-1)).min(1)
            # thin parts (antennas, wing struts) cover under half a pixel at 32 px: measured up to 1.45 px
            assert d.max() <= 2.0, f"{sid} view {k}: a vertex is {d.max():.2f} px off the mask"
            # the silhouette's extent agrees too (measured up to 0.9 px; a swapped or shifted axis moves a whole side)
            assert np.abs(px.min(0) - (pts.min(0) - 0.5)).max() <= 1.5
            assert np.abs(px.max(0) - (pts.max(0) + 0.5)).max() <= 1.5


@needs_real
def test_ensure_torcs_subset_builds_then_reuses(tmp_path):
    from latentscenes.data.subsets import ensure_torcs_subset

    root = tmp_path / "cars"
    kw = dict(views=2, test_views=1, resolution=16, workers=1, log=lambda _: None)
    info = ensure_torcs_subset(root, 2, 1, **kw)
    assert info["built"] and info["train_scenes"] >= 2 and info["exploit_scenes"] >= 1
    assert json.loads((root / "manifest.json").read_text())["name"] == "torcs-cars"
    assert ensure_torcs_subset(root, 2, 1, **kw)["built"] is False
