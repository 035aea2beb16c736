"""Latent contraction guard of the joint stage (docs/training.md, "Latent contraction").

Eq. 5's L_Enc trains the encoder towards the rendered latents and falls with the square of the latent scale,
so with nothing else holding it the encoder shrinks its normalised latents; ``lambda_latent_anchor`` removes
that incentive.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from latentscenes.autoencoder.model import load_autoencoder
from latentscenes.config import get_preset
from latentscenes.training.config import PipelineConfig
from latentscenes.training.data import build_view_table
from latentscenes.training.losses import latent_scale_anchor
from latentscenes.training.pipeline import build_system, encode_views
from latentscenes.training.stages import run_stage

from helpers_3daae import small_config, sphere_scenes


def _latent_std(system, table) -> float:
    with torch.no_grad():
        z = system.ae.normalize(system.ae.encode_distribution(table.batch_images(torch.arange(len(table)))).mean)
    return float(z.flatten(2).std(-1).mean())


def _joint_std_ratio(**joint_kw) -> float:
    """Ratio of the normalised latents' spatial std after / before a few L_Enc-only joint steps that train
    the encoder with a large learning rate (the contraction, accelerated), after a short warm-up."""
    torch.manual_seed(0)
    cfg = small_config()
    scenes = sphere_scenes(2)
    table = build_view_table(scenes, "train", None, cfg.data.resolution)
    ae = load_autoencoder(cfg.ae, "cpu")
    system = build_system(cfg, ae, table.scene_ids)
    latents, _, _ = encode_views(system, table, None, 8, False)
    run_stage(system, table, "warmup", dataclasses.replace(cfg.warmup, steps=20), seed=0, latents=latents)
    before = _latent_std(system, table)
    joint = dataclasses.replace(cfg.joint, steps=12, lambda_ae=0.0, lambda_dec=0.0, lambda_tv=0.0,
                                lr_encoder=3e-3, lr_decoder=0.0, **joint_kw)
    run_stage(system, table, "joint", joint, seed=0, latents=latents, encode_live=True)
    return _latent_std(system, table) / before


def test_unguarded_l_enc_contracts_latents_and_anchor_keeps_scale():
    free = _joint_std_ratio()
    anchored = _joint_std_ratio(lambda_latent_anchor=100.0)
    assert free < 0.93, f"expected the unguarded L_Enc to shrink the latents, std ratio {free:.3f}"
    assert 0.85 < anchored < 1.15, f"anchor should keep the latent std, ratio {anchored:.3f} (free: {free:.3f})"


def test_anchor_loss_values():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 4, 4, 4, generator=g)
    assert float(latent_scale_anchor(ref.clone(), ref)) == pytest.approx(0.0, abs=1e-9)
    assert float(latent_scale_anchor(0.5 * ref, ref)) > 0.0
    z = ref.clone().requires_grad_(True)
    latent_scale_anchor(z * 0.5, ref).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_presets_paper_keeps_authors_settings_tiny_cpu_guards():
    paper = get_preset(PipelineConfig, "paper")
    assert paper.joint.lambda_latent_anchor == 0.0  # Eq. 5 as published
    assert paper.exploit.fit.lr_mlp == paper.exploit.fit.lr_global == 1e-2  # the authors' exploit lrs
    tiny = get_preset(PipelineConfig, "tiny-cpu")
    assert tiny.joint.lambda_latent_anchor > 0.0 and tiny.joint.lr_encoder > 0.0
    assert tiny.exploit.fit.lr_mlp < tiny.exploit.fit.lr_local and tiny.exploit.fit.lr_global < tiny.exploit.fit.lr_coefs


def test_pipeline_joint_stage_logs_anchor(tmp_path):
    from latentscenes.training.pipeline import train_3daae

    cfg = small_config()
    cfg.joint = dataclasses.replace(cfg.joint, lambda_latent_anchor=100.0, log_every=1)
    res = train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))
    assert "anchor" in res["stages"]["joint"]["final_losses"]
