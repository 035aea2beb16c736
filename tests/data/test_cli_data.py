"""``latentscenes data build flightgear`` and ``data validate`` through typer (on a local app, fake data)."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from datafixtures import data_app, write_json, write_srn


def test_build_and_validate_cli(fake_fg, tmp_path):
    out = tmp_path / "ds"
    r = CliRunner().invoke(data_app(), ["data", "build", "flightgear", "--out", str(out), "--fg-root", str(fake_fg),
                                    "--num-instances", "3", "--views", "2", "--test-views", "1", "--resolution", "16",
                                    "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "manifest.json").read_text())["counts"]["built"] == 3
    r = CliRunner().invoke(data_app(), ["data", "validate", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "validation" / "cameras.png").is_file() and (out / "validation" / "contact_sheet.png").is_file()
    rep = json.loads((out / "validation" / "validation.json").read_text())
    assert rep["ok"] and rep["stats"]["scenes"] == 3 and rep["stats"]["views"] == 9
    assert abs(rep["stats"]["camera_distance"]["mean"] - 2.3) < 1e-4


def test_build_cli_missing_package(tmp_path):
    r = CliRunner().invoke(data_app(), ["data", "build", "flightgear", "--out", str(tmp_path / "o"), "--fg-root", str(tmp_path / "none")])
    assert r.exit_code == 2
    assert "apt-get install" in r.output


def test_validate_fails_on_bad_scene(tmp_path):
    root = tmp_path / "ds"
    write_srn(root / "a", n=2, size=8)
    write_srn(root / "b", n=2, size=8)
    bad = root / "b" / "pose" / "000001.txt"
    bad.write_text(" ".join(["nan"] * 16))
    r = CliRunner().invoke(data_app(), ["data", "validate", str(root)])
    assert r.exit_code == 1
    assert "FAILED" in r.output
    rep = json.loads((root / "validation" / "validation.json").read_text())
    assert not rep["ok"] and any(str(bad) in p and "NaN" in p for p in rep["problems"])


def test_validate_flags_manifest_inconsistencies(tmp_path):
    root = tmp_path / "ds"
    write_srn(root / "a", n=2, size=8)
    write_srn(root / "b", n=2, size=16)  # other image size than scene a
    write_json(root / "manifest.json", {"scenes": {"a": {}, "b": {}}, "splits": {"train": ["a", "b"], "exploit": ["b"]},
                                        "views_per_scene": {"train": 2, "test": 0}})
    from latentscenes.data.validate import validate_dataset

    rep = validate_dataset(root, progress=False)
    assert not rep.ok
    text = "\n".join(rep.problems)
    assert "different sizes" in text and "overlap" in text
    assert np.isclose(rep.stats["camera_distance"]["mean"], 2.0)


def test_validate_of_a_missing_folder_is_a_usage_error(tmp_path):
    """A wrong path is one line and exit 2 (a dataset that fails validation is exit 1)."""
    r = CliRunner().invoke(data_app(), ["data", "validate", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "dataset folder not found" in r.output and "Traceback" not in r.output
