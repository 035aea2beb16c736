"""``latentscenes data build sweethome3d``: catalogue parsing, extraction, licences and a small build on a
generated fake ``sweethome3d-furniture`` package (always run where pyassimp is), then the real package's
enumeration (skipped when it is not installed)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from latentscenes.data.sweethome3d import (
    DEFAULT_SH3D_ROOT,
    SweetHome3DBuildConfig,
    SweetHome3DMissing,
    build_sweethome3d,
    enumerate_instances,
    extract_archive,
    read_catalogue,
)
from latentscenes.data.types import DatasetError

from datafixtures import data_app, make_fake_sh3d  # noqa: E402

@pytest.fixture
def fake_sh3d(tmp_path: Path) -> Path:
    return make_fake_sh3d(tmp_path)


def test_read_catalogue_groups_entries():
    cat = read_catalogue("id=x\nname#1=A\nmodel#1=/a/a.obj\n# comment\nname#2=Bill 10\\u20ac\nbad line\nname#x=ignored\n")
    assert cat == {"1": {"name": "A", "model": "/a/a.obj"}, "2": {"name": "Bill 10\u20ac"}}


def test_enumeration_licences_drops_and_textures(fake_sh3d, tmp_path):
    cfg = SweetHome3DBuildConfig(out=tmp_path / "out", sh3d_root=fake_sh3d)
    inst, dropped = enumerate_instances(cfg)
    assert [i.scene_id for i in inst] == ["Alpha-chair", "Alpha-lamp", "Alpha-table", "Beta-bed", "Beta-sofa"]
    by = {i.scene_id: i for i in inst}
    assert (by["Alpha-chair"].name, by["Alpha-chair"].category, by["Alpha-chair"].creator) == ("Chair", "Living room", "Someone")
    assert by["Alpha-chair"].mesh_id == "Alpha/alpha/chair/chair.obj"
    assert set(by["Alpha-chair"].textures) == {"wood.png"}  # the model folder's image, not the top-level icon
    assert by["Alpha-chair"].licences == {"Alpha.sh3f:alpha/chair/chair.obj": "CC-BY-3.0"}
    assert set(by["Beta-bed"].licences.values()) == {"CC0"}  # the last matching DEP-5 paragraph wins
    reasons = {d["xml"]: d["reason"] for d in dropped}
    assert "not found in the archive" in reasons["Alpha.sh3f#4"]
    assert "not an OBJ file" in reasons["Alpha.sh3f#5"]
    # only the chosen archives
    inst, _ = enumerate_instances(SweetHome3DBuildConfig(out=tmp_path / "o2", sh3d_root=fake_sh3d, archives=("Beta",)))
    assert [i.scene_id for i in inst] == ["Beta-bed", "Beta-sofa"]
    with pytest.raises(DatasetError, match="--archive Gamma: not in"):
        enumerate_instances(SweetHome3DBuildConfig(out=tmp_path / "o3", sh3d_root=fake_sh3d, archives=("Gamma",)))


def test_missing_package_and_bad_archives(tmp_path):
    with pytest.raises(SweetHome3DMissing, match="apt-get install -y sweethome3d-furniture"):
        build_sweethome3d(SweetHome3DBuildConfig(out=tmp_path / "out", sh3d_root=tmp_path / "none"))
    bad = tmp_path / "Bad.sh3f"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="Bad.sh3f: not a readable"):
        extract_archive(bad, tmp_path / "x")
    evil = tmp_path / "Evil.sh3f"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../escape.txt", "x")
    with pytest.raises(DatasetError, match="outside"):
        extract_archive(evil, tmp_path / "y")
    assert not (tmp_path / "escape.txt").exists()


def test_interrupted_or_outdated_extraction_is_redone(fake_sh3d, tmp_path):
    import os

    dest = tmp_path / "x"
    dest.mkdir()
    (dest / "half-written").write_text("junk")  # no .complete marker
    extract_archive(fake_sh3d / "Alpha.sh3f", dest)
    assert (dest / ".complete").is_file() and not (dest / "half-written").exists()
    assert (dest / "alpha/chair/chair.obj").is_file()
    (dest / "mine").write_text("kept while the archive is the same")
    extract_archive(fake_sh3d / "Alpha.sh3f", dest)
    assert (dest / "mine").is_file()
    st = (fake_sh3d / "Alpha.sh3f").stat()
    os.utime(fake_sh3d / "Alpha.sh3f", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # another version of it
    extract_archive(fake_sh3d / "Alpha.sh3f", dest)
    assert not (dest / "mine").exists() and (dest / "alpha/chair/chair.obj").is_file()


def test_cli_build_validate_and_load(fake_sh3d, tmp_path):
    from datafixtures import pyassimp_available

    if not pyassimp_available():
        pytest.skip("pyassimp / libassimp not available")
    out = tmp_path / "ds"
    args = ["data", "build", "sweethome3d", "--out", str(out), "--sh3d-root", str(fake_sh3d), "--views", "2",
            "--test-views", "1", "--resolution", "16", "--workers", "1", "--exploit-mesh-fraction", "0.3"]
    r = CliRunner().invoke(data_app(), args)
    assert r.exit_code == 0, r.output
    man = json.loads((out / "manifest.json").read_text())
    assert man["name"] == "sweethome3d-furniture" and man["counts"]["built"] == 5
    assert man["source"]["version"] == "7.7-1" and set(man["source"]["licences"]) == {"CC-BY-3.0", "CC0"}
    assert man["scenes"]["Alpha-chair"]["category"] == "Living room"
    # the textured cube shows its checker texture: both dark and bright object pixels
    rgb = np.asarray(Image.open(out / "Alpha-chair" / "rgb" / "000000.png"))
    mask = np.asarray(Image.open(out / "Alpha-chair" / "mask" / "000000.png")) > 128
    lum = rgb[mask].mean(-1)
    assert mask.any() and lum.min() < 100 and lum.max() > 150
    assert CliRunner().invoke(data_app(), ["data", "validate", str(out)]).exit_code == 0
    from latentscenes.data import MultiSceneDataset

    ds = MultiSceneDataset(out)
    assert "_sources" not in ds.scene_ids and len(ds.scene_ids) == 5
    # a second run resumes: nothing rendered again
    r = CliRunner().invoke(data_app(), args)
    assert r.exit_code == 0 and "5 already built" in (out / "build_log.txt").read_text()


@pytest.mark.skipif(not DEFAULT_SH3D_ROOT.is_dir(), reason="sweethome3d-furniture is not installed (scripts/setup.sh installs it)")
def test_real_package_enumerates(tmp_path):
    inst, dropped = enumerate_instances(SweetHome3DBuildConfig(out=tmp_path / "out", archives=("KatorLegaz",)))
    assert len(inst) >= 80 and len({i.mesh_id for i in inst}) == len(inst)
    assert all(i.licences and "unknown" not in i.licences.values() for i in inst)


def test_cli_defaults_are_the_config_defaults():
    """The command's options repeat the config's defaults (the CLI module imports no builder at start-up)."""
    cmd = typer.main.get_command(data_app())
    build = cmd.commands["data"].commands["build"].commands["sweethome3d"]
    opts = {p.name: p.default for p in build.params if p.param_type_name == "option"}
    assert len(opts) > 10
    d = SweetHome3DBuildConfig()
    for k, v in opts.items():
        if k == "archive":  # None on the command line stands for the config's empty tuple (all archives)
            assert v is None and d.archives == ()
            continue
        want = getattr(d, k)
        assert (str(v) if isinstance(want, Path) else v) == (str(want) if isinstance(want, Path) else want), k
