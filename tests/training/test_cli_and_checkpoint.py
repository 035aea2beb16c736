"""The ``train`` / ``exploit`` commands on a dataset folder, and the pickle-free checkpoint helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from latentscenes.training.checkpoint import flatten_state, load_states, save_states, unflatten_state
from latentscenes.training.data import batch_indices

from helpers_3daae import sphere_scenes

GL_TO_CV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


def write_transforms_dataset(root: Path, train: list, exploit: list) -> Path:
    """Scenes as nerfstudio ``transforms.json`` folders plus a manifest with the train/exploit split."""
    for sc in train + exploit:
        d = root / sc.scene_id
        (d / "images").mkdir(parents=True)
        frames = []
        H, W = sc.resolution
        for i in range(sc.num_views):
            name = f"images/{i:03d}.png"
            img = (sc.images[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(img).save(d / name)
            frames.append({"file_path": name, "transform_matrix": (sc.c2w[i] @ GL_TO_CV).tolist()})
        K = sc.K[0]
        meta = {"fl_x": float(K[0, 0]) * W, "fl_y": float(K[1, 1]) * H, "cx": float(K[0, 2]) * W,
                "cy": float(K[1, 2]) * H, "w": W, "h": H, "frames": frames,
                "test_filenames": [f["file_path"] for f, s in zip(frames, sc.split) if s == "test"]}
        (d / "transforms.json").write_text(json.dumps(meta))
    manifest = {"splits": {"train": [s.scene_id for s in train], "exploit": [s.scene_id for s in exploit]},
                "render": {"near": 0.5, "far": 2.1, "box_size": 2.0}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_cli_train_resume_exploit(tmp_path, monkeypatch):
    from latentscenes.cli.main import app

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the CLI keeps a user's thread setting (tiny tensors here)

    data = write_transforms_dataset(tmp_path / "data", sphere_scenes(2, "tr"), sphere_scenes(1, "ex", seed=4))
    run = tmp_path / "run"
    runner = CliRunner()
    args = ["train", "--data", str(data), "--out", str(run), "--preset", "test", "--set", "device=cpu",
            "--set", "warmup.steps=3", "--set", "joint.steps=2"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["warmup"]["steps"] == 3 and cfg["data"]["path"] == str(data)
    # an existing run without --resume is a one-line error, exit code 2
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "--resume" in r.output
    r = runner.invoke(app, args + ["--resume"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["exploit", "--run", str(run), "--out", str(tmp_path / "ex"), "--strategy", "decode-scene",
                            "--no-prior", "--set", "exploit.fit.steps=2", "--set", "exploit.finetune.steps=1"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "ex" / "manifest.json").read_text())
    assert m["scene_ids"] == ["ex00"] and m["strategy"] == "decode-scene" and m["no_prior"] is True
    assert m["stages"]["exploit_fit"]["steps"] == 2
    # a missing autoencoder path is a one-line error
    r = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "r2"), "--preset", "test",
                            "--ae", str(tmp_path / "missing.safetensors")])
    assert r.exit_code == 2 and "missing.safetensors" in r.output


def test_optimizer_state_roundtrip_without_pickle(tmp_path):
    p = torch.nn.Parameter(torch.randn(5, 3))
    opt = torch.optim.Adam([p], lr=1e-2, betas=(0.8, 0.9))
    (p**2).sum().backward()
    opt.step()
    sd = opt.state_dict()
    tensors, skeleton = flatten_state(sd)
    json.dumps(skeleton)  # the skeleton is plain JSON
    back = unflatten_state(skeleton, tensors)
    assert back["param_groups"][0]["betas"] == (0.8, 0.9)
    assert torch.equal(back["state"][0]["exp_avg"], sd["state"][0]["exp_avg"])
    save_states({"adam": sd, "nested": {1: [torch.ones(2), "x", None]}}, tmp_path / "o.safetensors")
    loaded = load_states(tmp_path / "o.safetensors")
    opt2 = torch.optim.Adam([torch.nn.Parameter(p.detach().clone())], lr=1.0)
    opt2.load_state_dict(loaded["adam"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg_sq"], sd["state"][0]["exp_avg_sq"])
    assert loaded["nested"][1][1] == "x" and loaded["nested"][1][2] is None
    with pytest.raises(ValueError, match="not an optimiser-state"):
        from safetensors.torch import save_file

        save_file({"a": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
        load_states(tmp_path / "plain.safetensors")


def test_batches_are_epoch_permutations_and_pure():
    n, b = 10, 4
    seen = torch.cat([batch_indices(n, b, 0, "warmup", s) for s in range(5)])  # 20 draws = 2 epochs
    assert sorted(seen[:10].tolist()) == list(range(10)) and sorted(seen[10:20].tolist()) == list(range(10))
    assert torch.equal(batch_indices(n, b, 0, "warmup", 3), batch_indices(n, b, 0, "warmup", 3))
    assert not torch.equal(batch_indices(n, b, 0, "warmup", 0), batch_indices(n, b, 0, "joint", 0))
    assert batch_indices(3, 8, 0, "x", 0).shape == (8,)  # a batch larger than the data set wraps epochs


def test_train_and_exploit_with_more_latent_channels(tmp_path, monkeypatch):
    """Nothing in the pipeline assumes 4 latent channels (``ae grow --latent-channels``, docs/autoencoder.md):
    the MLP decodes C latent channels, the latent background has C entries, exploit and eval run."""
    from latentscenes.cli.main import app

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = write_transforms_dataset(tmp_path / "data", sphere_scenes(2, "tr"), sphere_scenes(1, "ex", seed=4))
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(run), "--preset", "test", "--set", "device=cpu",
                                 "--set", "ae.latent_channels=8", "--set", "warmup.steps=2", "--set", "joint.steps=1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["exploit", "--run", str(run), "--out", str(tmp_path / "ex"),
                                 "--set", "exploit.fit.steps=2", "--set", "exploit.finetune.steps=1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["eval", "--run", str(tmp_path / "ex"), "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["groups"]["exploit"]["n_scenes"] == 1 and np.isfinite(m["groups"]["exploit"]["mean"]["latent_psnr"])
    from safetensors import safe_open

    from latentscenes.training.run_format import shared_path

    with safe_open(str(shared_path(tmp_path / "ex")), "pt") as f:
        assert f.get_slice("latent_background").get_shape() == [8]
        assert f.get_slice("mlp.net.2.bias").get_shape() == [1 + 8]  # density + 8 latent channels
