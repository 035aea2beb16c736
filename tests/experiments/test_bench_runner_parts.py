"""The runner's pure helpers: per-scene exploit budget, baseline config, view selection, merged evaluations."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from latentscenes.bench.config import preset_cpu, preset_cpu_128, preset_test
from latentscenes.experiments.bench import (
    _keep_train_views,
    combine_evaluations,
    per_scene_exploit,
    pipeline_config,
    resolve_exploit_budget,
    rgb_config,
    variant_config,
)
from latentscenes.config import ConfigError
from latentscenes.scenes.synthetic import make_sphere_scene


def test_exploit_steps_are_per_scene():
    p = pipeline_config(preset_cpu(), torch.device("cpu"))
    cfg = resolve_exploit_budget(preset_cpu(), p)
    b = p.exploit.fit.batch_size
    for n in (24, 1000):
        e = per_scene_exploit(p, cfg, n)
        assert e.exploit.fit.batch_size == b
        assert e.exploit.fit.steps == math.ceil(cfg.fit_view_updates_per_scene * n / b)
    # a small batch (the re-learned train scenes) fits as a user's exploit would: smaller mini-batches, enough
    # updates (exploit.fit_min_steps), the same view-updates per scene
    for n in (1, 4):
        e = per_scene_exploit(p, cfg, n)
        fit = e.exploit.fit
        assert fit.batch_size < b and fit.steps >= p.exploit.fit_min_steps
        assert fit.steps == math.ceil(cfg.fit_view_updates_per_scene * n / fit.batch_size)
    for n in (1, 4, 24):
        e = per_scene_exploit(p, cfg, n)
        assert e.exploit.fit.epochs is None and e.exploit.fit.eval_every == 0
        assert e.exploit.finetune.steps == math.ceil(cfg.finetune_view_updates_per_scene * n / e.exploit.finetune.batch_size)
    e = per_scene_exploit(p, cfg, 24, curve_points=8)
    assert e.exploit.fit.eval_every == e.exploit.fit.steps // 8


def test_a_package_preset_takes_the_packages_exploit_recipe():
    # cpu / cpu-128 leave the budget to the package: its epochs over the 24 train views each scene keeps
    for preset in (preset_cpu, preset_cpu_128):
        cfg = preset()
        assert cfg.fit_view_updates_per_scene is None and cfg.finetune_view_updates_per_scene is None
        p = pipeline_config(cfg, torch.device("cpu"))
        r = resolve_exploit_budget(cfg, p)
        assert r.fit_view_updates_per_scene == round(p.exploit.fit.epochs * cfg.max_train_views)
        assert r.finetune_view_updates_per_scene == round(p.exploit.finetune.epochs * cfg.max_train_views)
        # the stages get those view-updates per scene whether or not the caller resolved the budget first
        assert per_scene_exploit(p, cfg, 10).exploit == per_scene_exploit(p, r, 10).exploit
    # a change of the package's recipe reaches the benchmark without a preset edit
    p = pipeline_config(preset_cpu_128(), torch.device("cpu"))
    p2 = dataclasses.replace(p, exploit=dataclasses.replace(
        p.exploit, finetune=dataclasses.replace(p.exploit.finetune, epochs=1.5)))
    assert resolve_exploit_budget(preset_cpu_128(), p2).finetune_view_updates_per_scene == 36
    # a number set in the config wins over the recipe
    assert resolve_exploit_budget(dataclasses.replace(preset_cpu_128(), finetune_view_updates_per_scene=7),
                                  p).finetune_view_updates_per_scene == 7


def test_exploit_budget_none_needs_epochs_and_a_view_count():
    p = pipeline_config(preset_cpu(), torch.device("cpu"))
    with pytest.raises(ConfigError, match="max_train_views is null"):
        resolve_exploit_budget(dataclasses.replace(preset_cpu(), max_train_views=None), p)
    steps_only = dataclasses.replace(p, exploit=dataclasses.replace(
        p.exploit, fit=dataclasses.replace(p.exploit.fit, epochs=None)))
    with pytest.raises(ConfigError, match="fit stage is sized in steps"):
        resolve_exploit_budget(preset_cpu(), steps_only)


def test_variants_keep_F_and_the_rgb_baseline_matches_it():
    cfg = preset_test()
    p = pipeline_config(cfg, torch.device("cpu"))
    F = p.triplane.f_mic + p.triplane.f_mac
    micro, macro = variant_config(p, "ours-micro").triplane, variant_config(p, "ours-macro").triplane
    assert (micro.f_mic, micro.f_mac) == (F, 0) and (macro.f_mic, macro.f_mac) == (0, F)
    assert variant_config(p, "plain-ae").joint.steps == 0
    r = rgb_config(cfg, p, "micro", 4, torch.device("cpu"))
    assert r.triplane.features == F and r.render == p.render
    # T is the RGB preset's own (tuned for the baseline), whatever ours' is; rgb_overrides change it
    from latentscenes.baselines.rgb.fit import RGBFitConfig
    from latentscenes.config import get_preset

    assert r.triplane.resolution == get_preset(RGBFitConfig, cfg.rgb_preset).triplane.resolution
    cfg.rgb_overrides = ["triplane.resolution=24"]
    assert rgb_config(cfg, p, "micro", 4, torch.device("cpu")).triplane.resolution == 24
    cfg.rgb_overrides = []
    m = rgb_config(cfg, p, "macro", 4, torch.device("cpu"))
    S = min(m.scenes_per_batch, 4)
    # every scene gets the same rays in the Macro fit as in its own Micro fit
    assert m.steps * (m.rays_per_batch // S) * S == pytest.approx(r.steps * r.rays_per_batch * 4, rel=0.5)


def test_spread_ids_is_deterministic_and_even():
    from latentscenes.experiments.bench import spread_ids

    ids = [f"s{i:02d}" for i in range(10)]
    assert spread_ids(list(reversed(ids)), 5) == ["s00", "s02", "s04", "s06", "s08"]
    assert spread_ids(ids, 20) == ids


def test_rgb_baselines_fit_exploit_scenes_spread_over_ours():
    from latentscenes.experiments.bench import rgb_scene_ids

    cfg = dataclasses.replace(preset_cpu(), n_rgb_exploit=3, n_rgb_train=1)
    ex = [f"e{i}" for i in range(9)]
    ids = rgb_scene_ids(ex, ["t0", "t1"], cfg)
    # not the first 3 (one kind of object when ids group kinds): one from each third of the sorted ids
    assert ids == {"exploit": ["e0", "e3", "e6"], "train": ["t0"]}
    assert rgb_scene_ids(ex, ["t0"], dataclasses.replace(cfg, n_rgb_exploit=20))["exploit"] == ex
    assert preset_cpu_128().n_rgb_exploit == preset_cpu_128().n_exploit_scenes


def test_keep_train_views_keeps_all_test_views():
    sc = make_sphere_scene("a", n_views=8, n_test=3, resolution=8)
    kept = _keep_train_views(sc, 2)
    assert kept.view_indices("train") == [0, 1] and len(kept.view_indices("test")) == 3
    assert _keep_train_views(sc, None) is sc


def test_combine_evaluations_means_over_scenes():
    a = {"model": {}, "groups": {"exploit": {"n_scenes": 2}}, "scenes": {"x": {"mean": {"psnr": 20.0}, "n_views": 2},
                                                                       "y": {"mean": {"psnr": 22.0}, "n_views": 2}}}
    b = {"model": {}, "groups": {"train": {"n_scenes": 1}}, "scenes": {"z": {"mean": {"psnr": 30.0}, "n_views": 1}}}
    c = combine_evaluations([a, b])
    assert set(c["groups"]) == {"exploit", "train"} and set(c["scenes"]) == {"x", "y", "z"}
    assert c["overall"]["mean"]["psnr"] == pytest.approx(24.0) and c["overall"]["n_views"] == 5


@pytest.mark.parametrize("name", ["test", "cpu", "tiny-cpu", "cpu-own", "paper"])
def test_presets_resolve_to_consistent_configs(name):
    from latentscenes.bench.config import BenchConfig
    from latentscenes.config import get_preset
    from latentscenes.training.pipeline import SHIPPED_RUN

    cfg = get_preset(BenchConfig, name)
    if cfg.pretrained == "shipped" and not (SHIPPED_RUN / "model" / "shared.safetensors").is_file():
        pytest.skip("no shipped pre-trained 3Da-AE in this checkout")
    p = pipeline_config(cfg, torch.device("cpu"))
    if cfg.pretrained:  # the package's own training scenes
        from latentscenes.bench.pretrained import load_package

        assert p.data.n_train_scenes == len(load_package(cfg.pretrained).train_scene_ids)
    else:
        assert p.data.n_train_scenes == cfg.n_train_scenes
    assert cfg.n_rgb_exploit <= cfg.n_exploit_scenes and cfg.n_rgb_train <= cfg.n_train_relearn
    e = per_scene_exploit(p, cfg, cfg.n_exploit_scenes)
    assert e.exploit.fit.steps > 0
    r = rgb_config(cfg, p, "micro", cfg.n_rgb_exploit + cfg.n_rgb_train, torch.device("cpu"))
    assert r.triplane.features == p.triplane.f_mic + p.triplane.f_mac
