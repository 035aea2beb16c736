"""``latentscenes ae finetune``: starts from the given weights, trains on the train split, measures the held-out
views before and after, writes weights that ``--ae PATH`` loads, resumes, and refuses foreign folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from latentscenes.autoencoder.model import AEConfig, load_autoencoder
from latentscenes.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))
from helpers_3daae import single_thread, write_sphere_dataset  # noqa: E402

TINY = ["--set", "ae.block_out_channels=[8,8,16,16]", "--set", "ae.norm_num_groups=4",
        "--set", "ae.mid_block_attention=false", "--set", "batch_size=2", "--set", "crop=32",
        "--set", "warmup_steps=1", "--set", "eval_every=2", "--set", "eval_images=2", "--set", "amp=false"]


def _invoke(args):
    with single_thread():
        r = CliRunner().invoke(app, args)
    return r.exit_code, r.output + (repr(r.exception) if r.exception and r.exit_code != 2 else "")


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A tiny scratch autoencoder saved as ``ae.safetensors`` (stands for the shipped one) and a dataset."""
    root = tmp_path_factory.mktemp("ft")
    data = write_sphere_dataset(root / "data")
    code, text = _invoke(["ae", "pretrain", "--data", str(data), "--out", str(root / "base"), "--preset", "test",
                          "--steps", "2"])
    assert code == 0, text
    return data, root / "base" / "ae.safetensors"


def test_finetune_reports_before_and_after_and_writes_loadable_weights(tmp_path, start):
    data, base = start
    out = tmp_path / "ft"
    code, text = _invoke(["ae", "finetune", "--data", str(data), "--ae", str(base), "--out", str(out),
                          "--steps", "3", "--resolution", "32", "--eval-scenes", "2", *TINY])
    assert code == 0, text
    r = json.loads((out / "finetune.json").read_text())
    assert r["status"] == "done" and r["steps"] == 3
    # the "before" figures are the starting weights', measured on the held-out views; the change is after - before
    start_ae = load_autoencoder(AEConfig.from_option(str(base), AEConfig()), "cpu")
    assert r["before"]["32"]["n_views"] > 0 and r["before"]["32"]["n_views"] == r["after"]["32"]["n_views"]
    assert r["change"]["32"]["psnr"] == pytest.approx(r["after"]["32"]["psnr"] - r["before"]["32"]["psnr"])
    assert r["held_out"]["scenes"] in ("exploit", "train")
    assert "PSNR" in text and "->" in text and str(out / "finetune.json") in text.replace("\n", "")
    tuned = load_autoencoder(AEConfig.from_option(str(out / "ae.safetensors"), AEConfig()), "cpu")
    a, b = start_ae.state_dict(), tuned.state_dict()
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a), "the weights did not move"


def test_finetune_resumes_and_keeps_the_first_before(tmp_path, start):
    data, base = start
    out = tmp_path / "ft"
    args = ["ae", "finetune", "--data", str(data), "--ae", str(base), "--out", str(out), "--resolution", "32",
            "--eval-scenes", "2", *TINY]
    assert _invoke(args + ["--steps", "2"])[0] == 0
    first = json.loads((out / "finetune.json").read_text())["before"]
    code, text = _invoke(args + ["--steps", "2"])
    assert code == 2 and "--resume" in text, text
    code, text = _invoke(["ae", "finetune", "--data", str(data), "--out", str(out), "--resume", "--steps", "4",
                          "--resolution", "32", "--eval-scenes", "2"])
    assert code == 0, text
    r = json.loads((out / "finetune.json").read_text())
    assert r["steps"] == 4 and r["before"] == first


def test_finetune_refuses_a_training_run_folder_and_a_missing_dataset(tmp_path, start):
    data, base = start
    code, text = _invoke(["ae", "finetune", "--data", str(tmp_path / "nope"), "--ae", str(base),
                          "--out", str(tmp_path / "ft"), *TINY])
    assert code == 2 and "nope" in text, text
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "latentscenes.json").write_text(json.dumps({"command": "bench", "version": 1}))
    code, text = _invoke(["ae", "finetune", "--data", str(data), "--ae", str(base), "--out", str(tmp_path / "bench"),
                          *TINY])
    assert code == 2 and "benchmark" in text, text


def test_decoder_only_finetune_keeps_the_latent_space_exactly(tmp_path, start):
    """``--set train_part=decoder``: the encoder, its tanh scale and so every latent (and tri-plane fitted in them)
    stay bit-identical while the decoder moves (docs/fidelity.md, "The decoder's capacity")."""
    data, base = start
    out = tmp_path / "dec"
    code, text = _invoke(["ae", "finetune", "--data", str(data), "--ae", str(base), "--out", str(out),
                          "--steps", "3", "--resolution", "32", "--eval-scenes", "2", "--set", "train_part=decoder",
                          *TINY])
    assert code == 0, text
    a = load_autoencoder(AEConfig.from_option(str(base), AEConfig()), "cpu")
    b = load_autoencoder(AEConfig.from_option(str(out / "ae.safetensors"), AEConfig()), "cpu")
    enc_a, enc_b = list(a.encoder_parameters()), list(b.encoder_parameters())
    assert all(torch.equal(p, q) for p, q in zip(enc_a, enc_b, strict=True))
    assert any(not torch.equal(p, q) for p, q in zip(a.decoder_parameters(), b.decoder_parameters(), strict=True))
    assert b.tanh_scale == a.tanh_scale
    assert torch.equal(a.latent_background(), b.latent_background())


def test_decoder_only_training_refuses_a_scratch_encoder(tmp_path, start):
    data, _ = start
    code, text = _invoke(["ae", "pretrain", "--data", str(data), "--out", str(tmp_path / "x"), "--preset", "test",
                          "--steps", "2", "--set", "train_part=decoder"])
    assert code != 0 and "train_part" in text and "scratch" in text


def test_finetune_starts_from_the_general_autoencoder_by_default():
    # a user's own objects are rarely airliners: the general model (issue 15) is the better start, measured on cars
    import inspect

    from latentscenes.autoencoder.pretrain import PretrainConfig
    from latentscenes.cli.ae import finetune_cmd
    from latentscenes.config import get_preset

    assert get_preset(PretrainConfig, "finetune").ae.source == "shipped-general"
    assert inspect.signature(finetune_cmd).parameters["ae"].default.default == "shipped-general"
