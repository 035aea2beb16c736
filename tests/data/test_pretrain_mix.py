"""``data build pretrain-mix``: the base autoencoder's pre-training set from FlightGear (a generated fake tree here,
the real package in one check when installed), pybullet's random_urdfs and procedural primitives; tiny builds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from latentscenes.data import MultiSceneDataset
from latentscenes.data import pretrain_mix as pm
from latentscenes.data.builder import assign_splits
from latentscenes.data.flightgear import FlightGearBuildConfig, FlightGearMissing
from latentscenes.data.flightgear import enumerate_instances as enumerate_flightgear
from latentscenes.data.pretrain_mix import MixBuildConfig, MixSourceMissing, build_pretrain_mix, select_mix
from latentscenes.data.types import DatasetError

from datafixtures import data_app  # noqa: E402  (tests/data is on sys.path: conftest.py)

pytestmark = pytest.mark.skipif(not pm.DEFAULT_URDF_ROOT.is_dir(), reason="pybullet_data/random_urdfs not installed")
REAL_FG = Path("/usr/share/games/flightgear/AI/Aircraft")


def _cfg(fg_root: Path, out: Path, **kw) -> MixBuildConfig:
    base = dict(out=out, fg_root=fg_root, flightgear_instances=2, urdf_instances=2, primitive_instances=3, views=2,
                test_views=1, resolution=16, workers=1, seed=0, exploit_mesh_fraction=0.3)
    base.update(kw)
    return MixBuildConfig(**base)


def _fg_holdout(fg_root: Path) -> tuple[set[str], set[str], int]:
    """``data build flightgear``'s held-out meshes (its default seed and fraction), their textures, and the
    number of train-split instances."""
    inst, _ = enumerate_flightgear(fg_root)
    d = FlightGearBuildConfig()
    splits, held = assign_splits(inst, d.exploit_mesh_fraction, d.seed)
    tex = {t for i in inst if splits[i.scene_id] == "exploit" for t in i.textures.values()}
    return set(held), tex, sum(1 for v in splits.values() if v == "train")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from datafixtures import make_fake_flightgear, make_fake_sh3d, pyassimp_available

    if not pyassimp_available():
        pytest.skip("pyassimp / libassimp not available")
    tmp = tmp_path_factory.mktemp("mix")
    fg_root = make_fake_flightgear(tmp / "Aircraft")
    out = build_pretrain_mix(_cfg(fg_root, tmp / "ds", sh3d_instances=3, sh3d_root=make_fake_sh3d(tmp / "deb")),
                             progress=False)
    return fg_root, out, json.loads((out / "manifest.json").read_text())


def test_builds_every_source_with_licences_and_counts(built):
    _, out, man = built
    src = man["source"]["sources"]
    assert {s: (src[s]["instances"], src[s]["licence"]) for s in src} == {
        "flightgear": (2, "GPL-2+"), "random_urdfs": (2, "Zlib"), "primitives": (3, "Apache-2.0"),
        "sweethome3d": (3, pm.LICENCES["sweethome3d"])}
    assert man["name"] == "pretrain-mix" and man["counts"]["built"] == 10 and man["counts"]["dropped"] == 0
    assert src["sweethome3d"]["version"] == "7.7-1" and src["sweethome3d"]["available_models"] == 5
    assert src["random_urdfs"]["version"] and src["random_urdfs"]["available_objects"] == 1000
    assert "torcs" in man["source"]["excluded"] and "held-out category" in man["source"]["excluded"]["torcs"]
    # every source has scenes in both splits (the per-source hold-out), the splits are mesh-disjoint
    for s in src:
        assert src[s]["train"] >= 1 and src[s]["exploit"] >= 1, s
    held = set(man["held_out_meshes"])
    assert all(man["scenes"][sid]["mesh_id"] not in held for sid in man["splits"]["train"])
    # each scene records its source, its files' licences, and the manifest lists every used file by licence
    used = {f for files in man["source"]["licences"].values() for f in files}
    for sid, meta in man["scenes"].items():
        assert meta["source"] in pm.SOURCE_NAMES and meta["licences"] and set(meta["licences"]) <= used
        assert meta["background"] == [255, 255, 255] and 0 < meta["coverage"]["mean"] < 1
    # furniture keeps its own licences (per archive) and looks (the model's colours and textures)
    sh3d = [m for m in man["scenes"].values() if m["source"] == "sweethome3d"]
    assert len(sh3d) == 3 and all(set(m["licences"].values()) <= {"CC0", "CC-BY-3.0"} for m in sh3d)
    assert all(m["mesh_id"].startswith("sweethome3d/") and m["recipe"] == {} for m in sh3d)
    ds = MultiSceneDataset(out)
    assert len(ds.scene_ids) == 10 and ds.render_defaults["near"] == pytest.approx(1.3)
    sv = ds.load("prim-00000")
    assert tuple(sv.images.shape) == (3, 3, 16, 16) and sv.split.count("test") == 1


def test_random_urdfs_and_primitives_are_not_all_one_colour(built):
    _, out, man = built
    looks = [p for sid, m in man["scenes"].items() if m["source"] in ("random_urdfs", "primitives") for p in m["recipe"]["parts"]]
    colours = {tuple(p["color"]) for p in looks if "color" in p}
    textured = [p for p in looks if "texture" in p]
    assert len(colours) + len(textured) == len(looks) and len(colours) >= 2 and textured
    # and the pixels differ: object pixels of two untextured scenes have different mean colours
    means = []
    for sid, m in man["scenes"].items():
        if m["source"] == "random_urdfs" and "color" in m["recipe"]["parts"][0]:
            rgb = np.asarray(Image.open(out / sid / "rgb" / "000000.png"), np.float64)
            a = np.asarray(Image.open(out / sid / "mask" / "000000.png")) > 200
            means.append(rgb[a].mean(0))
    if len(means) >= 2:
        assert np.abs(means[0] - means[1]).max() > 5


def test_flightgear_exploit_meshes_and_their_textures_never_appear(built, tmp_path):
    fg_root, _, man = built
    held, held_tex, n_train = _fg_holdout(fg_root)
    assert man["source"]["sources"]["flightgear"]["split"]["held_out_meshes_not_used"] == sorted(held)
    # every train-split instance, and textures everywhere (pool): still nothing of a held-out airframe
    cfg = _cfg(fg_root, tmp_path / "x", flightgear_instances=n_train, primitive_instances=40, textured_fraction=1.0)
    inst, _ = select_mix(cfg)
    fg = [i for i in inst if i.source == "flightgear"]
    assert len(fg) == n_train and not {i.mesh_id.split("/", 1)[1] for i in fg} & held
    assert not {t for i in inst if i.source != "flightgear" for t in i.textures.values()} & held_tex
    assert any(t.startswith(str(fg_root)) for i in inst if i.source == "primitives" for t in i.textures.values())
    with pytest.raises(DatasetError, match=f"{n_train} train-split instances"):
        select_mix(dataclasses.replace(cfg, flightgear_instances=n_train + 1))


@pytest.mark.skipif(not REAL_FG.is_dir(), reason="flightgear-data-ai is not installed")
def test_real_flightgear_exploit_airframes_never_appear(tmp_path):
    held, held_tex, n_train = _fg_holdout(REAL_FG)
    assert len(held) == 12  # data build flightgear's 12 of 119 airframes
    cfg = MixBuildConfig(out=tmp_path, flightgear_instances=n_train, urdf_instances=0, primitive_instances=200,
                         textured_fraction=1.0)
    inst, _ = select_mix(cfg)
    assert not {i.mesh_id.split("/", 1)[1] for i in inst if i.source == "flightgear"} & held
    # the texture pool leaves out every file of a held-out airframe (an airliner's own livery may share one,
    # e.g. Cessna337's prop_spin.png: that is data build flightgear's train split too)
    assert not {t for i in inst if i.source != "flightgear" for t in i.textures.values()} & held_tex


def test_torcs_is_refused(tmp_path, fake_fg):
    with pytest.raises(ValueError, match="held-out category"):
        _cfg(fake_fg, tmp_path / "a", sources=("flightgear", "torcs")).validate()
    r = CliRunner().invoke(data_app(), ["data", "build", "pretrain-mix", "--out", str(tmp_path / "b"), "--source", "torcs"])
    assert r.exit_code == 2 and "held-out category" in " ".join(r.output.split())
    # a FlightGear root inside a TORCS tree (the cars smuggled in as "airliners") stops the build before rendering
    sneaky = tmp_path / "usr" / "share" / "games" / "torcs" / "Aircraft"
    sneaky.parent.mkdir(parents=True)
    fake_fg.rename(sneaky)
    with pytest.raises(DatasetError, match="TORCS"):
        build_pretrain_mix(_cfg(sneaky, tmp_path / "c"), progress=False)
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_rerun_keeps_finished_scenes(fake_fg, tmp_path, monkeypatch):
    cfg = _cfg(fake_fg, tmp_path / "ds", urdf_instances=1, primitive_instances=2)
    out = build_pretrain_mix(cfg, progress=False)
    scenes = sorted(json.loads((out / "manifest.json").read_text())["scenes"])
    stamps = {s: (out / s / "rgb" / "000000.png").stat().st_mtime_ns for s in scenes}
    gone = scenes[1]
    import shutil

    shutil.rmtree(out / gone)
    rendered = []
    real = pm.render_instance
    monkeypatch.setattr(pm, "render_instance", lambda task: rendered.append(task["scene_id"]) or real(task))
    build_pretrain_mix(cfg, progress=False)
    assert rendered == [gone]
    assert all((out / s / "rgb" / "000000.png").stat().st_mtime_ns == stamps[s] for s in scenes if s != gone)
    assert sorted(json.loads((out / "manifest.json").read_text())["scenes"]) == scenes


def test_same_seed_same_instances_and_cameras(built, tmp_path):
    fg_root, a, man = built
    sh3d = dict(sh3d_instances=3, sh3d_root=fg_root.parent / "deb/usr/share/sweethome3d/furniture")  # as `built`
    b = build_pretrain_mix(_cfg(fg_root, tmp_path / "b", **sh3d), progress=False)
    mb = json.loads((b / "manifest.json").read_text())
    assert mb["scenes"].keys() == man["scenes"].keys() and mb["splits"] == man["splits"]
    for sid, meta in man["scenes"].items():
        assert {k: meta[k] for k in ("recipe", "background", "mesh_id")} == \
               {k: mb["scenes"][sid][k] for k in ("recipe", "background", "mesh_id")}
        # furniture textures live in each build's own extraction folder: compare them relative to it
        assert [t.replace(str(a), "") for t in meta["textures"]] == [t.replace(str(b), "") for t in mb["scenes"][sid]["textures"]]
        for f in sorted((a / sid / "pose").iterdir()):
            assert f.read_text() == (b / sid / "pose" / f.name).read_text()
    other, _ = select_mix(_cfg(fg_root, tmp_path / "c", seed=1, **sh3d))
    same, _ = select_mix(_cfg(fg_root, tmp_path / "c", **sh3d))
    assert sorted(i.scene_id for i in same) == sorted(man["scenes"])
    assert [dataclasses.asdict(i) for i in other] != [dataclasses.asdict(i) for i in same]


def test_missing_source_is_named(fake_fg, tmp_path, monkeypatch):
    with pytest.raises(MixSourceMissing, match=r"random_urdfs: .*not found; install the pybullet wheel"):
        build_pretrain_mix(_cfg(fake_fg, tmp_path / "a", urdf_root=tmp_path / "nope" / "random_urdfs"), progress=False)
    with pytest.raises(FlightGearMissing, match="apt-get install -y flightgear-data-ai"):
        build_pretrain_mix(_cfg(tmp_path / "no-fg", tmp_path / "b"), progress=False)
    # the default path comes from the installed pybullet: without it, the CLI names the source and the fix
    monkeypatch.setattr(pm, "DEFAULT_URDF_ROOT", tmp_path / "pybullet_data" / "random_urdfs")
    r = CliRunner().invoke(data_app(), ["data", "build", "pretrain-mix", "--out", str(tmp_path / "c"), "--fg-root", str(fake_fg),
                                    "--resolution", "16", "--workers", "1", "--flightgear", "1", "--urdfs", "1", "--primitives", "1"])
    assert r.exit_code == 2 and "pip install pybullet" in " ".join(r.output.split())
    # a mix without the missing source builds
    out = build_pretrain_mix(_cfg(tmp_path / "no-fg", tmp_path / "d", sources=("random_urdfs", "primitives")), progress=False)
    assert set(json.loads((out / "manifest.json").read_text())["source"]["sources"]) == {"random_urdfs", "primitives"}


def test_background_choice(fake_fg, tmp_path):
    out = build_pretrain_mix(_cfg(fake_fg, tmp_path / "ds", sources=("primitives",), primitive_instances=2,
                                  backgrounds=("#102030",)), progress=False)
    for sid in ("prim-00000", "prim-00001"):
        rgb = np.asarray(Image.open(out / sid / "rgb" / "000000.png"))
        a = np.asarray(Image.open(out / sid / "mask" / "000000.png"))
        assert (a == 0).any() and (rgb[a == 0] == [16, 32, 48]).all()
    with pytest.raises(ValueError, match="background 'pink'"):
        _cfg(fake_fg, tmp_path / "x", backgrounds=("pink",)).validate()


@pytest.mark.parametrize("shape", pm.PRIMITIVE_SHAPES)
def test_primitives_are_closed_and_face_outwards(shape):
    part = {"shape": shape, "scale": [1.0, 0.5, 0.8], "quat": [1.0, 0.0, 0.0, 0.0], "offset": [0.0, 0.0, 0.0],
            "profile": [0.5, 1.0, 0.3, 0.6, 0.9]}
    v, f, uv = pm.primitive_geometry(part)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = np.cross(b - a, c - a)
    vol = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0  # > 0 only when the faces turn outwards
    assert vol > 0.05
    centre = v.mean(0)
    if shape != "torus":  # star-shaped about the centre: no face turns towards it
        assert (np.einsum("ij,ij->i", n, (a + b + c) / 3 - centre) >= -1e-9).all()
    assert uv.min() >= 0.0 and uv.max() < 1.0


def test_splits_are_kept_when_the_mix_grows(fake_fg, tmp_path):
    small, _ = select_mix(_cfg(fake_fg, tmp_path, num_instances=6))
    big, _ = select_mix(_cfg(fake_fg, tmp_path, num_instances=12))
    s_small, _ = pm.mix_splits(small, 0.3)
    s_big, _ = pm.mix_splits(big, 0.3)
    assert set(s_small) < set(s_big) and all(s_big[k] == v for k, v in s_small.items())
    # 12 shared 2 : 2 : 3 (largest remainder, ties in source order)
    assert _cfg(fake_fg, tmp_path, num_instances=12).source_counts() == {"flightgear": 4, "random_urdfs": 3, "primitives": 5,
                                                                            "sweethome3d": 0}
    assert sorted(i.scene_id for i in small) == sorted(i.scene_id for i in big if i.scene_id in s_small)


def test_ensure_subset_builds_then_reuses(fake_fg, tmp_path):
    from latentscenes.data.subsets import ensure_subset

    root = tmp_path / "mix"
    kw = dict(views=2, test_views=1, resolution=16, workers=1, log=lambda _: None)
    info = ensure_subset("pretrain-mix", root, 4, 3, build_overrides=[f"fg_root={fake_fg}"], **kw)
    assert info["built"] and info["train_scenes"] >= 4 and info["exploit_scenes"] >= 3
    assert json.loads((root / "manifest.json").read_text())["name"] == "pretrain-mix"
    assert ensure_subset("pretrain-mix", root, 4, 3, **kw)["built"] is False
    # the mix's manifest names flightgear-data-ai: still, a FlightGear subset is never grown into it
    with pytest.raises(DatasetError, match="was built by `latentscenes data build pretrain-mix`"):
        ensure_subset("flightgear", root, 40, 3, build_overrides=[f"fg_root={fake_fg}"], **kw)


def test_cli_builds_validates_and_its_defaults_are_the_config_defaults(fake_fg, tmp_path):
    out = tmp_path / "ds"
    r = CliRunner().invoke(data_app(), ["data", "build", "pretrain-mix", "--out", str(out), "--fg-root", str(fake_fg),
                                    "--flightgear", "2", "--urdfs", "2", "--primitives", "2", "--views", "2",
                                    "--test-views", "1", "--resolution", "16", "--workers", "1", "--exploit-mesh-fraction", "0.3"])
    assert r.exit_code == 0, r.output
    assert "built 6 scenes" in " ".join(r.output.split())
    r = CliRunner().invoke(data_app(), ["data", "validate", str(out)])
    assert r.exit_code == 0, r.output
    cmd = typer.main.get_command(data_app())
    build = cmd.commands["data"].commands["build"].commands["pretrain-mix"]
    # typer vendors its own click: select options by kind, not by click.Option (which matched nothing)
    opts = {p.name: p.default for p in build.params if p.param_type_name == "option"}
    assert len(opts) > 10
    d = MixBuildConfig()
    names = {"elevation_min": "elevation_min_deg", "elevation_max": "elevation_max_deg", "flightgear": "flightgear_instances",
             "urdfs": "urdf_instances", "primitives": "primitive_instances", "sweethome3d": "sh3d_instances",
             "source": "sources", "background": "backgrounds"}
    defaults_elsewhere = {"source": tuple(pm.SOURCE_NAMES), "background": ("white",), "urdf_root": pm.DEFAULT_URDF_ROOT,
                          "sh3d_hold_out": ()}
    for k, v in opts.items():
        want = getattr(d, names.get(k, k))
        if k in defaults_elsewhere:  # None on the command line stands for the config's default
            assert v is None and want == defaults_elsewhere[k], k
            continue
        assert (str(v) if isinstance(want, Path) else v) == (str(want) if isinstance(want, Path) else want), k


def test_furniture_is_opt_in_and_never_changes_a_mix_that_does_not_ask_for_it(fake_fg, tmp_path):
    from datafixtures import make_fake_sh3d

    # no furniture asked for: the same instances as a mix without the source, and its package is never read
    kw = dict(sh3d_root=tmp_path / "not-installed")
    with_src = _cfg(fake_fg, tmp_path / "a", **kw)
    without = _cfg(fake_fg, tmp_path / "b", sources=("flightgear", "random_urdfs", "primitives"), **kw)
    strip = lambda insts: [{k: v for k, v in dataclasses.asdict(i).items()} for i in insts]  # noqa: E731
    assert strip(select_mix(with_src)[0]) == strip(select_mix(without)[0])
    # the shared total's fallback (every count 0) leaves the opt-in source out
    zero = dict(flightgear_instances=0, urdf_instances=0, primitive_instances=0, num_instances=8)
    assert _cfg(fake_fg, tmp_path / "c", **zero).source_counts() == {
        "flightgear": 3, "random_urdfs": 3, "primitives": 2, "sweethome3d": 0}
    # asked for through a shared total: enumerated even when the first, small total gives it no share
    sh3d = make_fake_sh3d(tmp_path / "deb")
    cfg = _cfg(fake_fg, tmp_path / "d", sources=("primitives", "sweethome3d"), primitive_instances=100,
               sh3d_instances=5, sh3d_root=sh3d, exploit_mesh_fraction=0.1)
    n = pm.instances_needed(5, 2, cfg)
    counts = dataclasses.replace(cfg, num_instances=n).source_counts()
    assert n >= 7 and counts["primitives"] + counts["sweethome3d"] == n


def test_sh3d_hold_out_keeps_a_furniture_set_unseen(fake_fg, tmp_path):
    from datafixtures import make_fake_sh3d

    from latentscenes.cli.data import held_out_scene_ids
    from latentscenes.data.sweethome3d import enumerate_models

    sh3d = make_fake_sh3d(tmp_path / "deb")
    ids = [m.scene_id for m in enumerate_models(sh3d, (), tmp_path / "src")[0]]
    assert len(ids) == 5
    # a `data build sweethome3d` dataset names the models to hold out (its manifest's scenes)
    ds = tmp_path / "sh3d-eval"
    ds.mkdir()
    (ds / "manifest.json").write_text(json.dumps({"generator": "latentscenes data build sweethome3d",
                                                  "scenes": {ids[0]: {}, ids[3]: {}}}))
    held = held_out_scene_ids([ds])
    assert held == tuple(sorted([ids[0], ids[3]]))
    kw = dict(sources=("primitives", "sweethome3d"), sh3d_root=sh3d, sh3d_hold_out=held)
    picked, info = select_mix(_cfg(fake_fg, tmp_path / "a", sh3d_instances=3, **kw))
    furniture = {i.scene_id.removeprefix("sh3d-") for i in picked if i.source == "sweethome3d"}
    assert furniture == set(ids) - set(held)
    assert info["sweethome3d"]["held_out_models_not_used"] == list(held)
    with pytest.raises(DatasetError, match="3 usable models.*2 held out.*asked for 4"):
        select_mix(_cfg(fake_fg, tmp_path / "b", sh3d_instances=4, **kw))
    with pytest.raises(DatasetError, match="not among the usable models"):
        select_mix(_cfg(fake_fg, tmp_path / "c", sh3d_instances=1, **{**kw, "sh3d_hold_out": ("no-such-model",)}))
    (ds / "manifest.json").write_text(json.dumps({"generator": "latentscenes data build torcs", "scenes": {}}))
    with pytest.raises(SystemExit):  # the CLI's one-line error (`fail`)
        held_out_scene_ids([ds])
