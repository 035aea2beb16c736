"""Fidelity levers of the exploit stage (docs/fidelity.md): L_ae on cached latents in the decoder fine-tune."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from latentscenes.training.config import StageConfig
from latentscenes.training.data import build_view_table
from latentscenes.training.pipeline import build_system, encode_views, exploit_3daae, exploit_config, train_3daae
from latentscenes.training.stages import stage_losses

from helpers_3daae import small_config, sphere_scenes


def test_lambda_ae_uses_cached_latents_with_a_frozen_encoder():
    cfg = small_config()
    from latentscenes.autoencoder.model import load_autoencoder

    torch.manual_seed(0)
    ae = load_autoencoder(cfg.ae, "cpu")
    scenes = sphere_scenes(2)
    table = build_view_table(scenes, "train", None, cfg.data.resolution)
    system = build_system(cfg, ae, table.scene_ids)
    lat, _, _ = encode_views(system, table, None, 8, False)
    rows = torch.arange(4)
    bank_rows = system.bank.rows(table.scene_ids)[table.scene_rows[rows]]
    st = StageConfig(lambda_enc=0.0, lambda_dec=1.0, lambda_ae=1.0, lr_decoder=1e-4)
    _, terms = stage_losses(system, table, lat, rows, bank_rows, st, torch.Generator().manual_seed(0), False)
    x = table.images[rows]
    with torch.no_grad():
        want = torch.mean((system.ae.decode(system.ae.denormalize(lat[rows])) - x) ** 2)
    assert torch.allclose(terms["ae"], want, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="cached latents"):
        stage_losses(system, table, None, rows, bank_rows, st, None, False)


def test_exploit_finetune_with_lambda_ae_logs_the_term(tmp_path):
    torch.set_num_threads(1)
    run = tmp_path / "run"
    train_3daae(small_config(), run, scenes=sphere_scenes(2))
    cfg = exploit_config(json_cfg(run), ["exploit.finetune.lambda_ae=0.5"])
    res = exploit_3daae(run, tmp_path / "ex", cfg, scenes=sphere_scenes(2, prefix="n", seed=3))
    assert "ae" in res["stages"]["exploit_finetune"]["final_losses"]
    saved = json.loads((tmp_path / "ex" / "config.json").read_text())
    assert saved["exploit"]["finetune"]["lambda_ae"] == 0.5


def json_cfg(run):
    from latentscenes.training.pipeline import load_run_config

    return load_run_config(run)


def test_exploit_takes_its_own_init_scales_but_keeps_the_runs_plane_sizes(tmp_path):
    torch.set_num_threads(1)
    run = tmp_path / "run"
    train_3daae(small_config(), run, scenes=sphere_scenes(2))
    cfg = exploit_config(json_cfg(run), ["triplane.local_init_std=0.01", "triplane.resolution=8",
                                         "exploit.fit.steps=0", "exploit.finetune_decoder=false"])
    res = exploit_3daae(run, tmp_path / "ex", cfg, scenes=sphere_scenes(2, prefix="n", seed=3))
    saved = json.loads((tmp_path / "ex" / "config.json").read_text())
    assert saved["triplane"]["local_init_std"] == 0.01
    assert saved["triplane"]["resolution"] == json.loads((run / "config.json").read_text())["triplane"]["resolution"]
    local = res["system"].bank.local.detach()
    assert 0.005 < float(local.std()) < 0.02  # no fit step: the planes are the initialisation


def test_tiny_cpu_exploit_budget_is_per_scene_and_an_explicit_steps_override_wins():
    from latentscenes.config import apply_overrides, get_preset
    from latentscenes.training.config import PipelineConfig
    from latentscenes.training.stages import resolve_steps

    cfg = get_preset(PipelineConfig, "tiny-cpu")
    for n_scenes in (20, 50):
        n_views = 24 * n_scenes
        assert abs(resolve_steps(cfg.exploit.fit, n_views) * 8 / n_scenes - 400) <= 8 / n_scenes + 1e-9
        assert resolve_steps(cfg.exploit.finetune, n_views) * 8 == 48 * n_scenes
    c = apply_overrides(cfg, ["exploit.fit.steps=7"])
    assert resolve_steps(c.exploit.fit, 480) == 7 and c.exploit.finetune.epochs == 2.0
    c = apply_overrides(cfg, ["exploit.fit.steps=7", "exploit.fit.epochs=1"])
    assert resolve_steps(c.exploit.fit, 480) == 60
