"""New exploit scenes can start from the run's average learned object (``exploit.fit_init``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentscenes.scenes.bank import SceneBank, TriplaneConfig
from latentscenes.training.pipeline import RunError, _start_from_train_mean


def _bank(ids, T=8, seed=0):
    cfg = TriplaneConfig(resolution=T, f_mic=2, f_mac=3, n_global=4)
    return SceneBank(cfg, ids, generator=torch.Generator().manual_seed(seed))


def test_new_scenes_start_at_the_training_scenes_mean():
    train = _bank(["t0", "t1", "t2"], seed=1)
    new = _bank(["n0", "n1"], seed=2)
    draw = new.per_scene_state()
    _start_from_train_mean(new, train, keep_draw=False, source=Path("RUN"))
    mean = {k: v.mean(0) for k, v in train.per_scene_state().items()}
    got = new.per_scene_state()
    for k in ("local", "coefs"):
        for i in range(2):
            torch.testing.assert_close(got[k][i], mean[k])
    again = _bank(["n0", "n1"], seed=2)
    _start_from_train_mean(again, train, keep_draw=True, source=Path("RUN"))
    for k in ("local", "coefs"):
        torch.testing.assert_close(again.per_scene_state()[k], draw[k] + mean[k].unsqueeze(0))


def test_the_mean_is_resampled_to_the_batch_plane_resolution():
    train = _bank(["t0", "t1"], T=8)
    with torch.no_grad():
        train.local.fill_(0.5)
    new = _bank(["n0"], T=16)
    _start_from_train_mean(new, train, keep_draw=False, source=Path("RUN"))
    local = new.per_scene_state()["local"]
    assert local.shape[-1] == 16
    # a constant field stays constant inside the plane (grid_sample fades only the outer half texel)
    torch.testing.assert_close(local[..., 2:-2, 2:-2], torch.full_like(local[..., 2:-2, 2:-2], 0.5))


def test_a_source_without_training_scenes_is_refused_with_its_name():
    with pytest.raises(RunError, match="PKG"):
        _start_from_train_mean(_bank(["n0"]), _bank([]), keep_draw=False, source=Path("PKG"))
