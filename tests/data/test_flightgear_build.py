"""The FlightGear builder on a generated fake ``AI/Aircraft`` tree (AC3D boxes with textures), plus a check of
the real Debian package's enumeration when it is installed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentscenes.data import MultiSceneDataset
from latentscenes.data import flightgear as fg
from latentscenes.data.flightgear import FlightGearBuildConfig, FlightGearMissing, build_flightgear, enumerate_instances


def _cfg(fg_root: Path, out: Path, **kw) -> FlightGearBuildConfig:
    base = dict(out=out, fg_root=fg_root, views=3, test_views=1, resolution=16, workers=1, seed=0,
                exploit_mesh_fraction=0.3)
    base.update(kw)
    return FlightGearBuildConfig(**base)


def test_enumeration_drops_with_reasons(fake_fg):
    inst, dropped = enumerate_instances(fake_fg)
    ids = [i.scene_id for i in inst]
    assert ids == sorted(ids)
    # 3 main models (default livery) + 5 liveries
    assert set(ids) == {"AAA-main", "AAA-Red", "AAA-Blue", "BBB-main", "BBB-Green", "BBB-Gray", "CCC-main", "CCC-Yellow"}
    reasons = {d["xml"]: d["reason"] for d in dropped}
    assert "textures not found" in reasons["DDD/DDD-main.xml"]
    assert "duplicate" in reasons["AAA/AAA-RedCopy.xml"]
    assert "not an airplane" in reasons["balloon/balloon1.xml"]
    assert "light" in reasons["CCC/Models/light/RedLight.xml"]
    red = next(i for i in inst if i.scene_id == "AAA-Red")
    assert red.mesh_id == "AAA/Models/AAA.ac" and red.livery == "Red" and red.aircraft_type == "AAA jet"
    assert red.textures["AAA-tex.png"].endswith("AAA/Textures/Red/AAA-tex.png")


def test_missing_package_gives_install_command(tmp_path):
    with pytest.raises(FlightGearMissing, match="apt-get install -y flightgear-data-ai"):
        build_flightgear(_cfg(tmp_path / "nope", tmp_path / "out"))


def test_subset_keeps_both_splits_and_is_deterministic(fake_fg):
    inst, _ = enumerate_instances(fake_fg)
    splits, held = fg.assign_splits(inst, 0.3, seed=0)
    assert len(held) == 1 and set(splits.values()) == {"train", "exploit"}
    assert all(splits[i.scene_id] == "exploit" for i in inst if i.mesh_id in held)
    a = fg.select_instances(inst, splits, 3, seed=0)
    b = fg.select_instances(inst, splits, 3, seed=0)
    assert [i.scene_id for i in a] == [i.scene_id for i in b]
    assert {splits[i.scene_id] for i in a} == {"train", "exploit"}
    assert len({i.mesh_id for i in a}) == 3  # spread over airframes


def test_build_layout_manifest_and_loading(fake_fg, tmp_path):
    out = build_flightgear(_cfg(fake_fg, tmp_path / "ds", num_instances=4), progress=False)
    man = json.loads((out / "manifest.json").read_text())
    assert man["render"] == {"near": 1.3, "far": 3.3, "box_size": 2.0}
    assert man["counts"]["built"] == 4 and man["splits"]["train"] and man["splits"]["exploit"]
    assert set(man["splits"]["train"]).isdisjoint(man["splits"]["exploit"])
    sid = man["splits"]["train"][0]
    scene = out / sid
    for sub, n in (("rgb", 4), ("mask", 4), ("pose", 4)):
        assert len(list((scene / sub).iterdir())) == n
    assert (scene / "intrinsics.txt").read_text().splitlines()[-1] == "16 16"
    entry = man["scenes"][sid]
    assert {"aircraft_type", "livery", "mesh_id", "split", "views"} <= set(entry)
    assert entry["views"] == {"train": ["000000", "000001", "000002"], "test": ["000003"]}
    ds = MultiSceneDataset(out)
    assert ds.scene_ids == sorted(man["scenes"])
    assert ds.render_defaults["near"] == 1.3
    sv = ds.load(sid)
    assert sv.images.shape == (4, 3, 16, 16) and sv.masks is not None
    assert sv.split == ["train", "train", "train", "test"]
    # cameras on the sphere of the configured distance, looking at the origin
    pos = sv.c2w[:, :3, 3].numpy()
    np.testing.assert_allclose(np.linalg.norm(pos, axis=1), 2.3, rtol=1e-5)
    fwd = sv.c2w[:, :3, 2].numpy()
    np.testing.assert_allclose((fwd * -pos / 2.3).sum(1), 1.0, atol=1e-5)
    # object rendered on white, with textures: the object pixels are not all white
    m = sv.masks[:, 0] > 0.5
    assert m.any() and (sv.images.permute(0, 2, 3, 1)[sv.masks[:, 0] == 0] > 0.99).all()
    assert sv.images.permute(0, 2, 3, 1)[m].mean() < 0.95
    # build log lists the dropped candidates with reasons
    log = (out / "build_log.txt").read_text()
    assert "DDD/DDD-main.xml" in log and "textures not found" in log


def test_build_is_deterministic(fake_fg, tmp_path):
    a = build_flightgear(_cfg(fake_fg, tmp_path / "a", num_instances=3, seed=5), progress=False)
    b = build_flightgear(_cfg(fake_fg, tmp_path / "b", num_instances=3, seed=5), progress=False)
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    assert sorted(ma["scenes"]) == sorted(mb["scenes"])
    for sid in ma["scenes"]:
        for f in sorted((a / sid / "pose").iterdir()):
            assert f.read_text() == (b / sid / "pose" / f.name).read_text()
        for f in sorted((a / sid / "rgb").iterdir()):
            assert np.array_equal(np.asarray(Image.open(f)), np.asarray(Image.open(b / sid / "rgb" / f.name)))
    c = build_flightgear(_cfg(fake_fg, tmp_path / "c", num_instances=3, seed=6), progress=False)
    mc = json.loads((c / "manifest.json").read_text())
    sid = sorted(set(ma["scenes"]) & set(mc["scenes"]))
    if sid:  # same scene, other seed: other cameras
        assert (a / sid[0] / "pose" / "000000.txt").read_text() != (c / sid[0] / "pose" / "000000.txt").read_text()


def test_interrupted_build_resumes_without_half_scenes(fake_fg, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    cfg = _cfg(fake_fg, out, num_instances=5)
    real = fg._render_instance
    calls = {"n": 0}

    def crashing(task):
        calls["n"] += 1
        if calls["n"] == 3:
            # simulate a kill in the middle of writing a scene: a half-written temporary folder stays behind
            (out / f".tmp-{task['scene_id']}-999" / "rgb").mkdir(parents=True)
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(fg, "_render_instance", crashing)
    with pytest.raises(KeyboardInterrupt):
        build_flightgear(cfg, progress=False)
    assert not (out / "manifest.json").exists()
    done = sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(done) == 2 and all((p / "scene.json").is_file() for p in done)
    assert len(list(out.glob(".tmp-*"))) == 1
    # the half-written scene is not visible as a scene: only the two complete ones are listed
    assert MultiSceneDataset(out).scene_ids == [p.name for p in done]
    mtimes = {p.name: (p / "scene.json").stat().st_mtime_ns for p in done}
    monkeypatch.setattr(fg, "_render_instance", real)
    build_flightgear(cfg, progress=False)
    man = json.loads((out / "manifest.json").read_text())
    assert man["counts"]["built"] == 5
    assert not list(out.glob(".tmp-*"))
    for name, t in mtimes.items():  # finished scenes were kept, not re-rendered
        assert (out / name / "scene.json").stat().st_mtime_ns == t
    assert len(MultiSceneDataset(out).scene_ids) == 5


def test_incomplete_scene_folder_is_redone(fake_fg, tmp_path):
    out = tmp_path / "ds"
    cfg = _cfg(fake_fg, out, num_instances=3)
    build_flightgear(cfg, progress=False)
    sid = json.loads((out / "manifest.json").read_text())["splits"]["train"][0]
    (out / sid / "scene.json").unlink()
    (out / sid / "rgb" / "000000.png").write_bytes(b"junk")
    build_flightgear(cfg, progress=False)
    assert (out / sid / "scene.json").is_file()
    Image.open(out / sid / "rgb" / "000000.png").load()


REAL = Path("/usr/share/games/flightgear/AI/Aircraft")


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason="flightgear-data-ai is not installed")
def test_real_package_enumeration():
    inst, dropped = enumerate_instances(REAL)
    assert len(inst) > 1000
    assert len({i.mesh_id for i in inst}) > 100
    assert not any("Dromader" in i.mesh_id or "balloon" in i.mesh_id or i.mesh_id.endswith("fokker70.ac") for i in inst)
    assert any("bomb" in d["reason"] for d in dropped)
