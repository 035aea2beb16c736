"""The latent consistency probe and the paired bootstrap (docs/fidelity.md)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from latentscenes.evaluation.stats import format_interval, paired_bootstrap, scene_values

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from helpers_3daae import small_config, sphere_scenes  # noqa: E402


def test_paired_bootstrap_interval_contains_the_mean_and_detects_a_shift():
    g = torch.Generator().manual_seed(1)
    base = {f"s{i}": float(v) for i, v in enumerate(torch.rand(30, generator=g) * 10 + 20)}
    better = {k: v + 1.0 + 0.1 * ((hash(k) % 7) - 3) for k, v in base.items()}
    r = paired_bootstrap(better, base)
    assert r["n_scenes"] == 30 and r["lo"] <= r["diff"] <= r["hi"]
    assert r["lo"] > 0.5  # a consistent +1 dB shift: the interval excludes 0
    noise = {k: v + float(torch.randn((), generator=g)) for k, v in base.items()}
    r2 = paired_bootstrap(noise, base)
    assert r2["lo"] < r2["diff"] < r2["hi"] and r2["hi"] - r2["lo"] > 0.2
    assert format_interval(r).startswith("+")


def test_paired_bootstrap_rejects_too_few_scenes_and_bad_level():
    with pytest.raises(ValueError, match=">= 2 scenes"):
        paired_bootstrap({"a": 1.0}, {"a": 2.0, "b": 1.0})
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap({"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 1.0}, level=1.5)


def test_scene_values_reads_evaluation_results():
    res = {"scenes": {"a": {"mean": {"psnr": 20.0}}, "b": {"mean": {"ssim": 0.5}}}}
    assert scene_values(res) == {"a": 20.0}


def test_consistency_probe_fits_all_views_and_reports_the_gap():
    from latentscenes.autoencoder.model import load_autoencoder
    from latentscenes.evaluation.probe import ProbeConfig, consistency_probe

    torch.set_num_threads(1)
    cfg = small_config()
    torch.manual_seed(0)
    ae = load_autoencoder(cfg.ae, "cpu")
    before = {k: v.clone() for k, v in ae.state_dict().items()}
    scenes = sphere_scenes(2)
    res = consistency_probe(ae, scenes, cfg, ProbeConfig(view_updates_per_scene=8, batch_size=4))
    s = res["summary"]
    assert res["steps"] == 4 and res["n_scenes"] == 2
    assert s["consistency_gap_db"] == pytest.approx(s["ae_psnr"] - s["probe_psnr"])
    assert res["heldout"]["groups"]["probe"]["n_views"] == 4  # the 2 test views of each scene
    assert all(torch.equal(before[k], v) for k, v in ae.state_dict().items())  # the autoencoder is frozen
    # with data.shift_grid the fit sees every view at 2 x 2 offsets (4x the latent cache), same budget
    shifted = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, shift_grid=2))
    res2 = consistency_probe(ae, scenes, shifted, ProbeConfig(view_updates_per_scene=8, batch_size=4))
    assert res2["steps"] == res["steps"] and res2["heldout"]["groups"]["probe"]["n_views"] == 4
    assert res2["summary"]["probe_psnr"] != s["probe_psnr"]


def test_probe_needs_heldout_views():
    from latentscenes.autoencoder.model import load_autoencoder
    from latentscenes.data.types import DatasetError
    from latentscenes.evaluation.probe import consistency_probe

    cfg = small_config()
    sc = sphere_scenes(2)
    sc[0] = dataclasses.replace(sc[0], split=["train"] * sc[0].num_views)
    with pytest.raises(DatasetError, match="held-out"):
        consistency_probe(load_autoencoder(cfg.ae, "cpu"), sc, cfg)
