"""User errors of ``train`` / ``exploit`` / ``eval``: one line on the console, exit code 2, nothing written
(issue 11, defect 6)."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from latentscenes.cli.main import app
from latentscenes.training.pipeline import train_3daae

from helpers_3daae import single_thread, small_config, sphere_scenes, write_sphere_dataset


@pytest.fixture(scope="module")
def data_and_run(tmp_path_factory):
    """A sphere dataset and a finished ``test``-preset run trained on it (shared by the tests below)."""
    with single_thread():
        tmp = tmp_path_factory.mktemp("user-errors")
        data = write_sphere_dataset(tmp / "data")
        cfg = small_config()
        cfg.data.path = str(data)
        train_3daae(cfg, tmp / "run", data_root=data)
        return data, tmp / "run"


def _invoke(args: list[str]) -> tuple[int, str]:
    """Exit code and console output with the console's line wrapping undone."""
    r = CliRunner().invoke(app, args)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r.exit_code, " ".join(r.output.split())


@pytest.mark.parametrize("device", ["bogus", "cuda:7", "cuda"])
def test_unusable_device_is_one_line_and_nothing_is_written(tmp_path, device):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "run"
    code, text = _invoke(["train", "--data", str(tmp_path / "data"), "--out", str(out), "--preset", "test",
                          "--device", device])
    assert code == 2 and "device" in text and "Traceback" not in text, text
    assert not out.exists()


@pytest.mark.parametrize("command", ["train", "fit-rgb"])
def test_out_that_is_a_file_is_refused(tmp_path, data_and_run, command):
    data, _ = data_and_run
    f = tmp_path / "taken"
    f.write_text("mine")
    code, text = _invoke([command, "--data", str(data), "--out", str(f), "--preset", "test"])
    assert code == 2 and "is a file" in text, text
    assert f.read_text() == "mine"


def test_fit_rgb_unusable_device_writes_nothing(tmp_path, data_and_run):
    data, _ = data_and_run
    out = tmp_path / "rgb"
    code, text = _invoke(["fit-rgb", "--data", str(data), "--out", str(out), "--preset", "test", "--set",
                          "device=bogus"])
    assert code == 2 and "bogus" in text, text
    assert not out.exists()


def test_exploit_unknown_split_names_it_and_the_available_ones(tmp_path, data_and_run):
    data, run = data_and_run
    out = tmp_path / "ex"
    code, text = _invoke(["exploit", "--run", str(run), "--data", str(data), "--out", str(out), "--scenes", "bogus"])
    assert code == 2, text
    assert "'bogus'" in text and "exploit" in text and "train" in text
    assert not out.exists()


def test_truncated_scene_shard_at_eval_names_the_shard(tmp_path, data_and_run):
    import shutil

    _, run = data_and_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shard = sorted((copy / "model" / "scenes").glob("*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    code, text = _invoke(["eval", "--run", str(copy), "--out", str(tmp_path / "m.json"), "--device", "cpu"])
    assert code == 2 and shard.name in text.replace(" ", ""), text


def test_a_refused_start_writes_nothing_so_the_corrected_rerun_works(tmp_path):
    """An error found after the config was resolved (images of 36 px, not a multiple of 8) used to leave a
    config.json behind, and the corrected re-run was refused ("folder exists and is not empty")."""
    from latentscenes.data.types import DatasetError

    cfg = small_config()
    cfg.data.resolution = None
    with pytest.raises(DatasetError, match="multiple of 8"):
        train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2, resolution=36))
    assert not (tmp_path / "run").exists()
    train_3daae(small_config(), tmp_path / "run", scenes=sphere_scenes(2))


# ------------------------------------------------------------------ folder ownership (issue 11, defect 1)
def test_fit_rgb_into_a_training_run_is_refused_and_the_run_stays_usable(tmp_path, data_and_run):
    import shutil

    data, run = data_and_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    code, text = _invoke(["fit-rgb", "--data", str(data), "--out", str(copy), "--preset", "test", "--scenes", "1"])
    assert code == 2 and "training run" in text and "`latentscenes train`" in text, text
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


def test_fit_rgb_twice_into_one_out_is_refused(tmp_path, data_and_run):
    data, _ = data_and_run
    out = tmp_path / "rgb"
    args = ["fit-rgb", "--data", str(data), "--out", str(out), "--preset", "test", "--scenes", "1"]
    code, text = _invoke(args)
    assert code == 0, text
    results = (out / "results.json").read_bytes()
    code, text = _invoke(args + ["--set", "steps=2"])
    assert code == 2 and str(out) in text.replace(" ", "") and "already exists" in text, text
    assert (out / "results.json").read_bytes() == results
    # ... and a training run (even with --resume) or an autoencoder pre-training may not take it over.
    for cmd in (["train", "--data", str(data), "--preset", "test"], ["train", "--resume"],
                ["ae", "pretrain", "--data", str(data), "--preset", "test"]):
        code, text = _invoke(cmd + ["--out", str(out)])
        assert code == 2 and "Tri-Planes (RGB) fit" in text and "fit-rgb" in text, (cmd, text)
    assert (out / "results.json").read_bytes() == results


def test_ae_pretrain_and_exploit_refuse_a_training_run(tmp_path, data_and_run):
    data, run = data_and_run
    before = (run / "config.json").read_bytes()
    code, text = _invoke(["ae", "pretrain", "--data", str(data), "--out", str(run), "--preset", "test"])
    assert code == 2 and "training run" in text, text
    code, text = _invoke(["exploit", "--run", str(run), "--out", str(run)])
    assert code == 2, text
    code, text = _invoke(["train", "--data", str(data), "--out", str(run), "--preset", "test"])
    assert code == 2 and "--resume" in text, text
    assert (run / "config.json").read_bytes() == before


def test_a_folder_of_foreign_files_is_refused_even_with_resume(tmp_path, data_and_run):
    data, _ = data_and_run
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, text = _invoke(["train", "--data", str(data), "--out", str(out), "--preset", "test", "--resume"])
    assert code == 2 and "holds no latentscenes output" in text, text
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
