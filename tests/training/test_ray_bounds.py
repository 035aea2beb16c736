"""Ray bounds of ``train`` / ``exploit`` / ``fit-rgb`` on data whose manifest states none (issue 11, defect 7):
cameras at distance 2.4 used to train with the defaults 0.5/2.1, which end before the far half of the object."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from latentscenes.cli.main import app
from latentscenes.data.flightgear import write_srn_scene

from helpers_3daae import sphere_scenes, write_sphere_dataset


def _far_dataset(root, manifest: dict | None = None):
    """Two SRN scenes with cameras at distance 2.4 and no manifest (a user's own folder)."""
    from latentscenes.scenes.synthetic import make_sphere_scene

    for i, sv in enumerate(sphere_scenes(2)):
        far = make_sphere_scene(sv.scene_id, n_views=6, n_test=2, radius=2.4, seed=i)
        write_srn_scene(root / far.scene_id, [im.permute(1, 2, 0).numpy() for im in far.images],
                        [m[0].numpy() for m in far.masks], far.c2w.numpy(), far.K[0].numpy(), far.split, {})
    if manifest is not None:
        (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _invoke(args):
    r = CliRunner().invoke(app, args)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r.exit_code, " ".join(r.output.split())


@pytest.fixture(scope="module")
def far_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bounds")
    data = _far_dataset(tmp / "data")
    code, text = _invoke(["train", "--data", str(data), "--out", str(tmp / "run"), "--preset", "test",
                          "--device", "cpu"])
    assert code == 0, text
    return tmp, data, text


def test_train_derives_and_prints_the_bounds_of_data_that_states_none(far_run):
    tmp, _, text = far_run
    assert "ray bounds from the cameras" in text and "camera distances 2.400..2.400" in text, text
    render = json.loads((tmp / "run" / "config.json").read_text())["render"]
    assert render["near"] == pytest.approx(1.4, abs=2e-3) and render["far"] == pytest.approx(3.4, abs=2e-3)


def test_stated_bounds_that_cannot_see_the_box_are_refused(tmp_path, far_run):
    data = _far_dataset(tmp_path / "data", {"render": {"near": 0.5, "far": 2.1, "box_size": 2.0}})
    code, text = _invoke(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--preset", "test",
                          "--device", "cpu"])
    assert code == 2 and "cannot see the scene box" in text and "2.400" in text, text
    assert not (tmp_path / "run").exists()


def test_exploit_refuses_cameras_the_runs_bounds_cannot_see(tmp_path, far_run):
    tmp, _, _ = far_run
    near_data = write_sphere_dataset(tmp_path / "near")  # cameras at 1.3: before the run's near 1.4
    code, text = _invoke(["exploit", "--run", str(tmp / "run"), "--data", str(near_data), "--out",
                          str(tmp_path / "ex"), "--device", "cpu"])
    assert code == 2 and "cannot see the scene box" in text, text
    assert not (tmp_path / "ex").exists()


def test_fit_rgb_derives_the_bounds_too(tmp_path, far_run):
    _, data, _ = far_run
    code, text = _invoke(["fit-rgb", "--data", str(data), "--out", str(tmp_path / "rgb"), "--preset", "test",
                          "--scenes", "1"])
    assert code == 0 and "ray bounds from the cameras" in text, text
    used = json.loads((tmp_path / "rgb" / "results.json").read_text())["render_used"]
    assert used["near"] == pytest.approx(1.4, abs=2e-3) and used["far"] == pytest.approx(3.4, abs=2e-3)


def test_resume_keeps_the_bounds_derived_when_the_run_started(far_run):
    tmp, data, _ = far_run
    before = {p: p.read_bytes() for p in (tmp / "run").rglob("*") if p.is_file()}
    code, text = _invoke(["train", "--data", str(data), "--out", str(tmp / "run"), "--preset", "test",
                          "--device", "cpu", "--resume"])
    assert code == 0, text
    assert {p: p.read_bytes() for p in (tmp / "run").rglob("*") if p.is_file()} == before


def test_fit_rgb_names_a_scene_folder_of_unknown_layout(tmp_path):
    """Issue 11, defect 5: fit-rgb fell back to reading the root as one scene and blamed the root."""
    data = _far_dataset(tmp_path / "data")
    (data / "s01" / "rgb").rename(data / "s01" / "images")
    code, text = _invoke(["fit-rgb", "--data", str(data), "--out", str(tmp_path / "rgb"), "--preset", "test"])
    assert code == 2 and str(data / "s01") in text.replace(" ", "") and "unknown scene layout" in text, text
