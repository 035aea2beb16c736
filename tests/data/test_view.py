"""Data views (latentscenes/data/view.py, `latentscenes data view`): symlinked scenes of built datasets, one manifest."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datafixtures import data_app, write_json, write_srn
from latentscenes.data import MultiSceneDataset
from latentscenes.data.types import DatasetError
from latentscenes.data.view import Take, build_view

CAMERA = {"distance": 2.3, "fov_deg": 50.0}


def built(root: Path, prefix: str, n_train: int, n_exploit: int, camera: dict = CAMERA, name: str = "src") -> Path:
    """A small built dataset: SRN scenes and a manifest with splits, camera, render bounds and per-scene metadata."""
    train = [f"{prefix}-{i}" for i in range(n_train)]
    exploit = [f"{prefix}-x{i}" for i in range(n_exploit)]
    for k, sid in enumerate(train + exploit):
        write_srn(root / sid, n=3, size=16, seed=k)
    write_json(root / "manifest.json", {
        "format": "srn", "name": name, "camera": camera, "render": {"near": 1.3, "far": 3.3, "box_size": 2.0},
        "resolution": [16, 16], "views_per_scene": {"train": 3, "test": 0}, "counts": {"built": n_train + n_exploit},
        "splits": {"train": train, "exploit": exploit}, "generator": f"build {name}", "held_out_meshes": [f"{prefix}.ac"],
        "scenes": {s: {"scene_id": s, "source": name} for s in train + exploit},
    })
    return root


def test_view_mixes_two_datasets_and_loads(tmp_path: Path) -> None:
    a = built(tmp_path / "a", "air", 3, 2, name="airliners")
    b = built(tmp_path / "b", "obj", 2, 1, name="objects")
    out = tmp_path / "view"
    m = build_view(out, [Take(a, "train", n=2), Take(b, "train"), Take(a, "exploit", ids=("air-x1",))])
    assert m["splits"] == {"train": ["air-0", "air-1", "obj-0", "obj-1"], "exploit": ["air-x1"]}
    assert m["scenes"]["obj-1"]["source"] == "objects"  # per-scene metadata carried over
    assert "counts" not in m and "generator" not in m and m["views_per_scene"] == {"train": 3, "test": 0}
    assert m["held_out_meshes"] == ["air.ac", "obj.ac"]  # merged: validate checks train scenes against all of them
    assert {r: v["name"] for r, v in m["view"]["sources"].items()} == {str(a): "airliners", str(b): "objects"}
    assert m["view"]["sources"][str(b)]["generator"] == "build objects"
    assert (out / "obj-0").is_symlink() and (out / "obj-0").resolve() == (b / "obj-0").resolve()
    assert not os.path.isabs(os.readlink(out / "obj-0"))  # relative: moving data/ keeps the view
    assert not (out / "air-2").exists()  # not taken
    ds = MultiSceneDataset(out)
    assert ds.split_scene_ids("train") == ["air-0", "air-1", "obj-0", "obj-1"]
    assert ds.split_scene_ids("exploit") == ["air-x1"]
    assert json.loads((out / "manifest.json").read_text()) == m
    assert not list(tmp_path.glob(".*view-tmp"))


def test_view_of_a_view_moved_in_place_and_after_moving(tmp_path: Path) -> None:
    a = built(tmp_path / "data" / "a", "air", 3, 1)
    v1 = tmp_path / "data" / "v1"
    build_view(v1, [Take(a, "train")])
    build_view(v1, [Take(v1, "train", n=2)])  # rebuilt from itself: the links are read before it is replaced
    assert MultiSceneDataset(v1).split_scene_ids("train") == ["air-0", "air-1"]
    v2 = tmp_path / "data" / "v2"
    build_view(v2, [Take(v1, "train", ids=("air-1",))])
    assert (v2 / "air-1").resolve() == (a / "air-1").resolve()  # to the real scene, not through v1
    shutil.move(tmp_path / "data", tmp_path / "moved")
    assert MultiSceneDataset(tmp_path / "moved" / "v2").split_scene_ids("train") == ["air-1"]


def test_view_replaces_an_earlier_view_but_never_a_dataset(tmp_path: Path) -> None:
    a = built(tmp_path / "a", "air", 3, 1)
    out = tmp_path / "view"
    build_view(out, [Take(a, "train")])
    build_view(out, [Take(a, "exploit")])
    assert sorted(p.name for p in out.iterdir()) == ["air-x0", "manifest.json"]  # the earlier links are gone
    with pytest.raises(DatasetError, match="not a view"):
        build_view(a, [Take(a, "train", n=1)])
    assert (a / "air-0" / "rgb").is_dir()  # untouched
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="not a folder"):
        build_view(tmp_path / "file", [Take(a, "train")])


def test_view_write_error_keeps_the_earlier_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = built(tmp_path / "a", "air", 3, 1)
    out = tmp_path / "view"
    before = build_view(out, [Take(a, "train")])

    def no_links(*args, **kwargs):
        raise OSError("symlinks not supported")

    monkeypatch.setattr(os, "symlink", no_links)
    with pytest.raises(DatasetError, match="could not write the view.*symlinks not supported"):
        build_view(out, [Take(a, "exploit")])
    assert json.loads((out / "manifest.json").read_text()) == before  # the earlier view, whole
    assert sorted(p.name for p in out.iterdir()) == ["air-0", "air-1", "air-2", "manifest.json"]
    assert not list(tmp_path.glob(".*view-tmp"))


@pytest.mark.parametrize("takes, match", [
    (lambda a, b: [Take(a, "val")], "no split 'val'"),
    (lambda a, b: [Take(a, "train", n=9)], "has 2 scenes, 9 asked"),
    (lambda a, b: [Take(a, "train", ids=("air-7",))], r"\['air-7'\] not in split"),
    (lambda a, b: [Take(a, "train"), Take(a, "train", n=1)], "taken twice"),
    (lambda a, b: [Take(a, "train"), Take(b, "train")], "camera .* differs"),
    (lambda a, b: [Take(a.parent / "none", "train")], "no manifest.json"),
])
def test_view_refuses_bad_takes(tmp_path: Path, takes, match: str) -> None:
    a = built(tmp_path / "a", "air", 2, 1)
    b = built(tmp_path / "b", "obj", 2, 1, camera={**CAMERA, "distance": 4.0})
    with pytest.raises(DatasetError, match=match):
        build_view(tmp_path / "view", takes(a, b))
    assert not (tmp_path / "view").exists()  # nothing written before the checks pass


def test_take_parse() -> None:
    assert Take.parse("d:train") == Take(Path("d"), "train")
    assert Take.parse("d:train:5") == Take(Path("d"), "train", n=5)
    assert Take.parse("d:exploit:a,b") == Take(Path("d"), "exploit", ids=("a", "b"))
    assert Take.parse("d:exploit:a,b").spec() == "d:exploit:a,b"
    with pytest.raises(ValueError, match="at least 1"):
        Take.parse("d:train:0")
    for bad in ("d", "d:", ":train", "d:train:", "d:a:b:c"):
        with pytest.raises(ValueError, match="expected ROOT:SPLIT"):
            Take.parse(bad)


def test_cli_data_view(tmp_path: Path) -> None:
    a = built(tmp_path / "a", "air", 3, 1)
    out = tmp_path / "v"
    r = CliRunner().invoke(data_app(), ["data", "view", "--out", str(out), "--take", f"{a}:train:2",
                                        "--take", f"{a}:exploit"])
    assert r.exit_code == 0, r.output
    assert "3 scenes (train 2, exploit 1)" in " ".join(r.output.split())
    cmd = json.loads((out / "manifest.json").read_text())["view"]["command"]
    assert cmd == f"latentscenes data view --out {out} --take {a}:train:2 --take {a}:exploit"
    r = CliRunner().invoke(data_app(), ["data", "view", "--out", str(out), "--take", "nocolon"])
    assert r.exit_code == 2 and "expected ROOT:SPLIT" in r.output
    r = CliRunner().invoke(data_app(), ["data", "view", "--out", str(out), "--take", f"{a}:val"])
    assert r.exit_code == 2 and "no split 'val'" in r.output


def test_view_refuses_a_source_with_a_path_as_scene_id(tmp_path: Path) -> None:
    a = built(tmp_path / "a", "air", 2, 1)
    m = json.loads((a / "manifest.json").read_text())
    m["splits"]["train"].append("../a")
    write_json(a / "manifest.json", m)
    with pytest.raises(DatasetError, match="not a plain name"):
        build_view(tmp_path / "view", [Take(a, "train")])


def test_a_view_is_never_grown_by_a_builder(tmp_path: Path) -> None:
    from latentscenes.data.subsets import ensure_flightgear_subset

    a = built(tmp_path / "a", "air", 3, 1)
    m = json.loads((a / "manifest.json").read_text())
    write_json(a / "manifest.json", {**m, "source": {"name": "flightgear"}, "generator": "latentscenes data build flightgear"})
    view = build_view(tmp_path / "view", [Take(a, "train", n=2)])
    assert "source" not in view and "generator" not in view
    with pytest.raises(DatasetError, match="this job needs"):
        ensure_flightgear_subset(tmp_path / "view", 3, 0, views=3, test_views=0, resolution=16)
    assert sorted(p.name for p in (tmp_path / "view").iterdir()) == ["air-0", "air-1", "manifest.json"]
