"""``train --init``: a training run that starts from a pre-trained 3Da-AE (its autoencoder, MLP and global planes)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from latentscenes.config import ConfigError
from latentscenes.training.pipeline import RunError, load_trained, train_3daae

from helpers_3daae import params_of, small_config, sphere_scenes


def _frozen_shared(cfg):
    """Warm-up that only fits the scenes' own planes, no joint stage: the shared weights must stay the init's."""
    w = dataclasses.replace(cfg.warmup, steps=3, lr_mlp=0.0, lr_global=0.0)
    return dataclasses.replace(cfg, warmup=w, joint=dataclasses.replace(cfg.joint, steps=0))


def test_init_starts_from_the_pretrained_autoencoder_mlp_and_global_planes(tmp_path):
    torch.set_num_threads(1)
    cfg = small_config()
    train_3daae(cfg, tmp_path / "a", scenes=sphere_scenes(2))
    a = params_of(load_trained(tmp_path / "a", "cpu"))
    res = train_3daae(dataclasses.replace(_frozen_shared(cfg), init=str(tmp_path / "a"), seed=1), tmp_path / "b",
                      scenes=sphere_scenes(2, prefix="n", seed=5))
    b = params_of(res["system"])
    shared = [k for k in a if k.startswith(("ae.", "mlp.")) or k == "bank.global_planes"]
    assert shared and all(torch.equal(a[k], b[k]) for k in shared)
    # without init the same run starts from the preset's autoencoder and a new MLP
    res0 = train_3daae(_frozen_shared(dataclasses.replace(cfg, seed=1)), tmp_path / "c",
                       scenes=sphere_scenes(2, prefix="n", seed=5))
    c = params_of(res0["system"])
    assert not all(torch.equal(a[k], c[k]) for k in shared)


def test_init_refuses_an_unfinished_run_and_other_sizes(tmp_path):
    cfg = small_config()
    with pytest.raises(RunError, match="no manifest"):
        train_3daae(dataclasses.replace(cfg, init=str(tmp_path / "nothing")), tmp_path / "x", scenes=sphere_scenes(1))
    train_3daae(cfg, tmp_path / "a", scenes=sphere_scenes(1))
    other = dataclasses.replace(cfg, init=str(tmp_path / "a"),
                                triplane=dataclasses.replace(cfg.triplane, f_mic=cfg.triplane.f_mic + 2))
    with pytest.raises(ConfigError, match="init="):
        train_3daae(other, tmp_path / "y", scenes=sphere_scenes(1))
    assert not (tmp_path / "y").exists()  # refused before anything is written
