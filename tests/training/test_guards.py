"""Failure modes: NaN/inf loss guard, missing autoencoder weights, bad exploit arguments."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import latentscenes.training.stages as stages
from latentscenes.autoencoder.model import AEConfig, AutoencoderError
from latentscenes.config import get_preset
from latentscenes.training.checkpoint import read_json
from latentscenes.training.config import PipelineConfig
from latentscenes.training.losses import NonFiniteLossError
from latentscenes.training.pipeline import RunError, exploit_3daae, train_3daae

from helpers_3daae import small_config, sphere_scenes


def test_nan_loss_stops_stage_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = small_config(warmup=2)
    real = stages.recon_loss
    calls = {"n": 0}

    def poisoned(pred, target, kind="mse"):
        calls["n"] += 1
        out = real(pred, target, kind)
        return out * float("nan") if calls["n"] == 4 else out  # warm-up step 3 (0-based)

    monkeypatch.setattr(stages, "recon_loss", poisoned)
    with pytest.raises(NonFiniteLossError, match="step 3") as ei:
        train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))
    assert ei.value.stage == "warmup" and ei.value.step == 3
    assert "ckpt" in str(ei.value.checkpoint)
    state = read_json(tmp_path / "run" / "stages" / "warmup" / "ckpt" / "state.json")
    assert state["step"] == 2 and not state["done"]
    m = read_json(tmp_path / "run" / "manifest.json")
    assert m["status"] == "running"
    # After the cause is fixed, --resume continues from the good checkpoint and finishes.
    monkeypatch.setattr(stages, "recon_loss", real)
    res = train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2), resume=True)
    assert res["stages"]["warmup"]["resumed_from"] == 2
    assert read_json(tmp_path / "run" / "manifest.json")["status"] == "done"


def test_nan_guard_leaves_parameters_untouched(tmp_path, monkeypatch):
    """The failing step raises before backward/step, so the in-memory model is the last good one."""
    from latentscenes.autoencoder.model import load_autoencoder
    from latentscenes.training.data import build_view_table
    from latentscenes.training.pipeline import build_system

    cfg = small_config()
    ae = load_autoencoder(cfg.ae, "cpu")
    table = build_view_table(sphere_scenes(2), resolution=32)
    system = build_system(cfg, ae, table.scene_ids)
    before = {k: v.clone() for k, v in system.bank.state_dict().items()}
    lat = torch.full((len(table), 4, 4, 4), float("inf"))
    with pytest.raises(NonFiniteLossError):
        stages.run_stage(system, table, "warmup", cfg.warmup, seed=0, latents=lat)
    for k, v in system.bank.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_missing_ae_weights_is_a_clear_error_before_any_work(tmp_path):
    cfg = dataclasses.replace(small_config(), ae=AEConfig(source="path", path=str(tmp_path / "nope" / "vae")))
    with pytest.raises(FileNotFoundError, match="nope"):
        train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))
    assert not (tmp_path / "run" / "stages").exists()
    # The paper preset needs a user-given SD-1.5 path: without one it refuses rather than using a random AE.
    paper = dataclasses.replace(get_preset(PipelineConfig, "paper"), device="cpu")
    with pytest.raises(AutoencoderError, match="needs a path"):
        train_3daae(paper, tmp_path / "run2", scenes=sphere_scenes(2))


def test_mismatched_ae_weights_is_a_clear_error(tmp_path):
    from safetensors.torch import save_file

    bad = tmp_path / "vae.safetensors"
    save_file({"encoder.conv_in.weight": torch.zeros(1)}, str(bad))
    cfg = dataclasses.replace(small_config(), ae=AEConfig(source="path", path=str(bad)))
    with pytest.raises(AutoencoderError, match="does not match"):
        train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))


def test_exploit_refuses_unfinished_run_and_same_folder(tmp_path):
    cfg = small_config()
    train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))
    with pytest.raises(RunError, match="differ"):
        exploit_3daae(tmp_path / "run", tmp_path / "run", scenes=sphere_scenes(1, "n"))
    m = read_json(tmp_path / "run" / "manifest.json")
    m["status"] = "running"
    (tmp_path / "run" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(RunError, match="not a finished"):
        exploit_3daae(tmp_path / "run", tmp_path / "ex", scenes=sphere_scenes(1, "n"))


@pytest.mark.parametrize("override, key", [
    ("warmup.steps=-5", "warmup.steps"),
    ("joint.lr_encoder=-1e-4", "joint.lr_encoder"),
    ("exploit.fit.lr_local=nan", "exploit.fit.lr_local"),
    ("warmup.batch_size=0", "warmup.batch_size"),
    ("exploit.finetune.lambda_ae=inf", "exploit.finetune.lambda_ae"),
    ("data.resolution=30", "data.resolution"),
    ("render.far=0.1", "render.near/far"),
])
def test_bad_config_values_are_refused_before_any_file_is_written(tmp_path, override, key):
    from latentscenes.config import ConfigError, apply_overrides
    from latentscenes.training.pipeline import train_3daae

    cfg = apply_overrides(small_config(), [override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))
    assert not (tmp_path / "run").exists()


def test_a_run_with_missing_scene_shards_is_refused_not_evaluated_as_empty(tmp_path):
    from typer.testing import CliRunner

    from latentscenes.cli.main import app

    run = tmp_path / "run"
    train_3daae(small_config(), run, scenes=sphere_scenes(2))
    for p in (run / "model" / "scenes").iterdir():
        p.unlink()
    r = CliRunner().invoke(app, ["eval", "--run", str(run), "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 2 and "missing" in r.output and "scenes" in r.output


def _huge_update_at(monkeypatch, call: int) -> None:
    """Make optimiser update number ``call`` (1-based, counted over the whole run) use learning rates x1e32:
    the parameters stay finite (~1e30) and the loss of the next step is NaN, as with ``lr=1e30`` (issue 11)."""
    real = stages.StageOptimizers.step
    calls = {"n": 0}

    def step(self, bank_rows, skip=frozenset()):
        calls["n"] += 1
        if calls["n"] == call:
            self.set_lr_factor(1e32)
        return real(self, bank_rows, skip)

    monkeypatch.setattr(stages.StageOptimizers, "step", step)


def _checkpoint_max_abs(ckpt) -> float:
    from safetensors.torch import load_file

    tensors = load_file(str(ckpt / "shared.safetensors"))
    for p in (ckpt / "scenes").glob("*.safetensors"):
        tensors.update({f"scenes.{k}": v for k, v in load_file(str(p)).items()})
    return max(float(v.abs().max()) for v in tensors.values() if v.is_floating_point() and v.numel())


def test_huge_learning_rates_never_checkpoint_the_diverged_parameters(tmp_path):
    """Issue 11, defect 3: ``--set warmup.checkpoint_every=1`` with lr=1e30 kept a checkpoint holding ~1e30
    parameters, so "lower the learning rates and --resume" failed again at step 1."""
    from latentscenes.config import apply_overrides

    huge = [f"warmup.{k}=1e30" for k in ("lr_local", "lr_mlp", "lr_global", "lr_coefs")]
    cfg = apply_overrides(small_config(warmup=1), huge)
    with pytest.raises(NonFiniteLossError) as ei:
        train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))
    kept = ei.value.checkpoint
    if kept is not None:  # whatever was kept holds no diverged parameters
        assert _checkpoint_max_abs(tmp_path / "run" / "stages" / "warmup" / "ckpt") < 1e6
    else:
        assert "no checkpoint was written yet" in str(ei.value)
    res = train_3daae(small_config(warmup=1), tmp_path / "run", scenes=sphere_scenes(2), resume=True)
    assert res["stages"]["joint"]["steps"] == cfg.joint.steps


def test_diverging_update_mid_stage_keeps_the_checkpoint_before_it(tmp_path, monkeypatch):
    cfg = small_config(warmup=1)
    _huge_update_at(monkeypatch, 3)  # the 3rd update (step 2) diverges; the step-3 loss is NaN
    with pytest.raises(NonFiniteLossError, match="step 3") as ei:
        train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))
    ckpt = tmp_path / "run" / "stages" / "warmup" / "ckpt"
    assert read_json(ckpt / "state.json")["step"] == 2, "the checkpoint after the diverging update was kept"
    assert str(ckpt) in str(ei.value)
    assert _checkpoint_max_abs(ckpt) < 1e6
    monkeypatch.undo()
    res = train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2), resume=True)
    assert res["stages"]["warmup"]["resumed_from"] == 2


def test_diverging_last_update_leaves_the_stage_unfinished(tmp_path, monkeypatch):
    """The final state has no next step to show the divergence: it is probed before being marked done."""
    cfg = small_config(warmup=2)
    _huge_update_at(monkeypatch, cfg.warmup.steps)
    with pytest.raises(NonFiniteLossError, match=f"step {cfg.warmup.steps}"):
        train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))
    state = read_json(tmp_path / "run" / "stages" / "warmup" / "ckpt" / "state.json")
    assert state["step"] == cfg.warmup.steps - 2 and not state["done"]
    assert not (tmp_path / "run" / "stages" / "joint").exists()


def test_non_finite_parameters_or_optimizer_state_are_named():
    from latentscenes.autoencoder.model import load_autoencoder
    from latentscenes.training.pipeline import build_system

    cfg = small_config()
    system = build_system(cfg, load_autoencoder(cfg.ae, "cpu"), ["a", "b"])
    opts = stages.StageOptimizers(system, cfg.warmup)
    assert stages.non_finite_tensors(system, opts) == []
    with torch.no_grad():
        next(system.mlp.parameters())[0] = float("inf")
    assert stages.non_finite_tensors(system, opts) == [f"mlp.{next(iter(dict(system.mlp.named_parameters())))}"]
    with torch.no_grad():
        next(system.mlp.parameters())[0] = 0.0
    opts.dense["mlp"].state[next(system.mlp.parameters())] = {"exp_avg": torch.tensor([float("nan")])}
    assert stages.non_finite_tensors(system, opts)[0].startswith("optim.dense.mlp.state")


def test_cli_nan_learning_rate_is_one_line_and_exit_2(tmp_path):
    from typer.testing import CliRunner

    from latentscenes.cli.main import app

    r = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                                 "--preset", "test", "--set", "warmup.lr_mlp=nan"])
    assert r.exit_code == 2 and "warmup.lr_mlp" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run").exists()
