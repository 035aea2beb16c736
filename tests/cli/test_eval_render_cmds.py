"""``latentscenes render`` (several scenes in one call, GIF and/or MP4) and ``latentscenes eval``, both through the
Python API (issue 14, deliverables 3-4), on a Tri-Planes (RGB) folder of three tiny scenes (fitted in a second)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest
import typer.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from helpers_3daae import single_thread, write_sphere_dataset  # noqa: E402


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory) -> dict:
    from latentscenes.config import get_preset
    from latentscenes.data import MultiSceneDataset
    from latentscenes.baselines.rgb.fit import RGBFitConfig, fit_rgb_scenes

    with single_thread():
        tmp = tmp_path_factory.mktemp("cmds")
        data = write_sphere_dataset(tmp / "data")  # tr00, tr01, ex00 at 32 px
        fit_rgb_scenes(MultiSceneDataset(data), get_preset(RGBFitConfig, "test"), out_dir=tmp / "rgb")
    return {"data": data, "run": tmp / "rgb", "ids": ["ex00", "tr00", "tr01"]}  # the dataset's order


def invoke(*args: object):
    from latentscenes.cli.main import app

    return typer.testing.CliRunner().invoke(app, [str(a) for a in args])


def _render(rgb_run, out, *args):
    r = invoke("render", "--run", rgb_run["run"], "--data", rgb_run["data"], "--out", out, "--frames", 5,
               "--views", 1, "--device", "cpu", *args)
    assert r.exit_code == 0, r.output
    return r


def test_render_several_scenes_in_one_call_as_mp4_and_gif(rgb_run, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "out"
    _render(rgb_run, out, "--scene", "ex00", "--scene", "tr01", "--format", "both")
    assert sorted(p.name for p in out.iterdir()) == ["ex00", "tr01"]  # one folder per scene, only those asked
    for s in ("ex00", "tr01"):
        for name in ("turntable", "turntable_panel"):
            assert (out / s / f"{name}.gif").is_file()
            mp4 = iio.imread(out / s / f"{name}.mp4", index=None)
            assert mp4.shape[0] == 5 and mp4.shape[-1] == 3
            if name == "turntable":
                assert mp4.shape[1:3] == (32, 32)
    a = iio.imread(out / "ex00" / "turntable.mp4", index=None).astype(float)
    b = iio.imread(out / "tr01" / "turntable.mp4", index=None).astype(float)
    assert abs(a - b).mean() > 1.0  # each file shows its own scene


def test_render_all_and_first_n_scenes(rgb_run, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    _render(rgb_run, tmp_path / "all", "--all", "--format", "mp4")
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(rgb_run["ids"])
    for s in rgb_run["ids"]:
        assert sorted(p.name for p in (tmp_path / "all" / s).glob("turntable*")) == ["turntable.mp4", "turntable_panel.mp4"]
    _render(rgb_run, tmp_path / "n", "--n-scenes", "2")
    assert sorted(p.name for p in (tmp_path / "n").iterdir()) == sorted(rgb_run["ids"][:2])
    assert (tmp_path / "n" / rgb_run["ids"][0] / "turntable.gif").is_file()


def test_render_one_scene_writes_into_out_as_before(rgb_run, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "one"
    r = _render(rgb_run, out, "--scene", "tr00")
    assert sorted(p.name for p in out.iterdir()) == ["turntable.gif", "turntable_panel.gif", "view_0.png",
                                                     "view_0_depth.png", "view_0_panel.png"]
    assert "tr00: 5 frames" in r.output


# (no selection at all and an unknown --format are rows of the bad-input corpus, test_bad_input_corpus.py)
@pytest.mark.parametrize("args, message", [
    (["--scene", "tr00", "--all"], "choose the scenes to render: --scene ID (repeatable), --all or --n-scenes N"),
    (["--n-scenes", "0"], "--n-scenes must be >= 1"),
    (["--scene", "tr00", "--scene", "tr0"], "scene 'tr0' is not in {run} (it holds 3 scenes, e.g. ['tr00'"),
])
def test_render_bad_selection_is_one_line_and_writes_nothing(rgb_run, tmp_path, args, message):
    out = tmp_path / "out"
    r = invoke("render", "--run", rgb_run["run"], "--data", rgb_run["data"], "--out", out, "--device", "cpu", *args)
    assert r.exit_code == 2, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message.format(run=rgb_run["run"]) in errors[0], r.stderr
    assert not out.exists()


def test_eval_command_writes_what_the_api_returns(rgb_run, tmp_path, monkeypatch):
    import latentscenes as ls

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    r = invoke("eval", "--run", rgb_run["run"], "--data", rgb_run["data"], "--out", tmp_path / "m.json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    written = json.loads((tmp_path / "m.json").read_text())
    api = ls.load(rgb_run["run"], device="cpu").evaluate(data=rgb_run["data"])
    assert written["run"] == api["run"] == str(rgb_run["run"]) and written["data"] == str(rgb_run["data"])
    assert list(written["scenes"]) == rgb_run["ids"] and written["overall"]["n_views"] == 6
    for s in rgb_run["ids"]:
        assert written["scenes"][s]["mean"]["psnr"] == pytest.approx(api["scenes"][s]["mean"]["psnr"], abs=1e-6)
        assert written["scenes"][s]["mean"]["ssim"] == pytest.approx(api["scenes"][s]["mean"]["ssim"], abs=1e-6)


def test_eval_scenes_of_one_split_of_an_rgb_folder(rgb_run, tmp_path, monkeypatch):
    """An RGB folder fitted on train and exploit scenes together (the benchmark's) records no split per scene:
    ``--scenes exploit`` takes its scenes in that split of the dataset instead of silently evaluating all of them."""
    import shutil

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for split, ids in (("exploit", ["ex00"]), ("train", ["tr00", "tr01"])):
        out = tmp_path / f"{split}.json"
        r = invoke("eval", "--run", rgb_run["run"], "--data", rgb_run["data"], "--scenes", split, "--out", out,
                   "--device", "cpu")
        assert r.exit_code == 0, r.output
        m = json.loads(out.read_text())
        assert list(m["scenes"]) == ids and list(m["groups"]) == [split] and m["overall"]["n_scenes"] == len(ids)
    # a folder that records no dataset: the split needs --data (one line, exit code 2), "all" does not
    bare = tmp_path / "bare"
    shutil.copytree(rgb_run["run"], bare)
    res = json.loads((bare / "results.json").read_text())
    for k in ("data_root", "data"):
        res.pop(k, None)
    (bare / "results.json").write_text(json.dumps(res))
    r = invoke("eval", "--run", bare, "--scenes", "exploit", "--out", tmp_path / "x.json", "--device", "cpu")
    assert r.exit_code == 2 and "pass --data" in r.output and not (tmp_path / "x.json").exists()
    from latentscenes.evaluation.runs import load_run

    assert load_run(bare, "all", device="cpu").groups == {"rgb": rgb_run["ids"]}
