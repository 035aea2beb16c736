"""``ensure_flightgear_subset``: reuse a large-enough dataset, build or grow a FlightGear subset, refuse others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latentscenes.data.subsets import ensure_flightgear_subset
from latentscenes.data.types import DatasetError


def _ensure(root: Path, fake_fg: Path, n_train: int, n_exploit: int, **kw):
    return ensure_flightgear_subset(
        root, n_train, n_exploit, views=3, test_views=1, resolution=16, workers=1,
        build_overrides=[f"fg_root={fake_fg}", "exploit_mesh_fraction=0.3"], log=lambda _: None, **kw,
    )


def test_builds_then_grows_keeping_finished_scenes(fake_fg, tmp_path):
    root = tmp_path / "ds"
    info = _ensure(root, fake_fg, 1, 1)
    assert info["built"] and info["train_scenes"] >= 1 and info["exploit_scenes"] >= 1
    first = sorted(json.loads((root / "manifest.json").read_text())["scenes"])
    stamps = {sid: (root / sid / "scene.json").stat().st_mtime_ns for sid in first}

    info2 = _ensure(root, fake_fg, 3, 2)
    assert info2["train_scenes"] >= 3 and info2["exploit_scenes"] >= 2
    # scenes of the smaller build that are still selected were kept, not re-rendered
    kept = [sid for sid in first if (root / sid / "scene.json").is_file()]
    assert kept and all((root / sid / "scene.json").stat().st_mtime_ns == stamps[sid] for sid in kept)

    # enough scenes now: reused as is without a build (no overrides -> no forced build)
    info3 = ensure_flightgear_subset(root, 2, 1, views=3, test_views=1, resolution=16, log=lambda _: None)
    assert info3["built"] is False


def test_refuses_other_build_settings(fake_fg, tmp_path):
    root = tmp_path / "ds"
    _ensure(root, fake_fg, 1, 1)
    with pytest.raises(DatasetError, match="views=3"):
        ensure_flightgear_subset(root, 1, 1, views=5, test_views=1, resolution=16, workers=1,
                                 build_overrides=[f"fg_root={fake_fg}", "exploit_mesh_fraction=0.3"], log=lambda _: None)


def test_too_small_foreign_dataset_is_a_clear_error(tmp_path):
    from datafixtures import write_srn

    root = tmp_path / "mine"
    write_srn(root / "a")
    (root / "manifest.json").write_text(json.dumps({"name": "mine", "splits": {"train": ["a"], "exploit": []}}))
    with pytest.raises(DatasetError, match="this job needs 2 and 1"):
        ensure_flightgear_subset(root, 2, 1, views=3, test_views=1, resolution=16, log=lambda _: None)
