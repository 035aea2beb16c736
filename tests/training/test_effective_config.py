"""The saved config is the config that runs (issue 13, point 3): one pure function derives every stage's effective
config, conflicts are refused instead of overwritten, unknown keys are errors, manifests record what ran."""

from __future__ import annotations

import dataclasses
import json

import pytest

import latentscenes.training.pipeline as pipeline
from latentscenes.config import ConfigError, apply_overrides, get_preset, load_config, to_dict
from latentscenes.training.config import (
    EXPLOIT_STAGES,
    TRAIN_STAGES,
    PipelineConfig,
    StageConfig,
    _set,
    stage_configs,
    strategy_weights,
)
from latentscenes.training.pipeline import exploit_3daae, exploit_config, load_run_config, train_3daae

from helpers_3daae import single_thread, small_config, sphere_scenes


# ------------------------------------------------------------------------------------------ pure derivation
@pytest.mark.parametrize("source", ["test", "tiny-cpu", "paper", "shipped"])
@pytest.mark.parametrize("strategy", [None, "decode-scene", "encode-decode-scene"])
def test_presets_and_the_shipped_package_derive_without_conflict(source, strategy):
    cfg = load_run_config("shipped") if source == "shipped" else get_preset(PipelineConfig, source)
    ex = exploit_config(cfg, None, strategy)
    eff = stage_configs(ex)
    assert list(eff) == list(TRAIN_STAGES + EXPLOIT_STAGES)
    # no overwriting: every effective stage config is the config's own section
    assert eff["warmup"] is ex.warmup and eff["joint"] is ex.joint
    assert eff["exploit_fit"] is ex.exploit.fit and eff["exploit_finetune"] is ex.exploit.finetune
    # what the stages are: frozen AE in warm-up and fit, the strategy's weights, L_Dec in the fine-tune
    w = eff["warmup"]
    assert (w.lr_encoder, w.lr_decoder, w.lambda_ae, w.lambda_dec) == (0.0, 0.0, 0.0, 0.0)
    f = eff["exploit_fit"]
    assert (f.lambda_enc, f.lambda_dec) == strategy_weights(ex.exploit)
    assert (f.lambda_ae, f.lr_encoder, f.lr_decoder) == (0.0, 0.0, 0.0)
    ft = eff["exploit_finetune"]
    assert ft.lambda_enc == 0.0 and ft.lr_encoder == 0.0 and ft.lambda_dec > 0


def test_the_effective_numbers_of_the_presets_are_the_ones_that_ran_before():
    """Before the derivation was one function, pipeline.py overwrote fields after saving config.json; for every
    preset the overwrites were no-ops, so the numbers that run are unchanged."""
    for name in ("test", "tiny-cpu", "paper"):
        cfg = get_preset(PipelineConfig, name)
        ex = cfg.exploit
        eff = stage_configs(cfg)
        assert eff["warmup"] == dataclasses.replace(cfg.warmup, lr_encoder=0.0, lr_decoder=0.0, lambda_ae=0.0,
                                                    lambda_dec=0.0)
        assert eff["exploit_fit"] == dataclasses.replace(ex.fit, lambda_enc=1.0, lambda_dec=0.0, lambda_ae=0.0,
                                                         lr_encoder=0.0, lr_decoder=0.0)
        assert eff["exploit_finetune"] == dataclasses.replace(ex.finetune, lambda_enc=0.0, lr_encoder=0.0)
    # The bare defaults too: the fine-tune's default weights are the ones that used to be forced (0 and 1).
    assert (PipelineConfig().exploit.finetune.lambda_enc, PipelineConfig().exploit.finetune.lambda_dec) == (0.0, 1.0)
    stage_configs(PipelineConfig())


@pytest.mark.parametrize("override, key", [
    ("warmup.lr_encoder=1e-4", "warmup.lr_encoder"),
    ("warmup.lambda_dec=1", "warmup.lambda_dec"),
    ("exploit.fit.lr_decoder=1e-4", "exploit.fit.lr_decoder"),
    ("exploit.fit.lambda_ae=0.1", "exploit.fit.lambda_ae"),
    ("exploit.finetune.lambda_dec=0", "exploit.finetune.lambda_dec"),
    ("exploit.finetune.lambda_enc=1", "exploit.finetune.lambda_enc"),
    ("exploit.finetune.lr_encoder=1e-4", "exploit.finetune.lr_encoder"),
])
def test_a_setting_that_contradicts_its_stage_is_refused_naming_it(override, key):
    cfg = apply_overrides(small_config(), [override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as ei:
        stage_configs(cfg)
    assert isinstance(ei.value, ValueError) and "must be" in str(ei.value)


def test_a_skipped_finetune_is_not_checked():
    cfg = apply_overrides(small_config(), ["exploit.finetune.lambda_dec=0", "exploit.finetune_decoder=false"])
    assert list(stage_configs(cfg, EXPLOIT_STAGES)) == ["exploit_fit"]


def test_the_strategy_sets_the_fit_weights_and_an_explicit_contradiction_is_refused():
    base = small_config()
    cfg = exploit_config(base, ["exploit.t=0.3"], "encode-decode-scene")
    assert (cfg.exploit.fit.lambda_enc, cfg.exploit.fit.lambda_dec) == (0.3, 1.0 - 0.3)
    cfg = exploit_config(base, ["exploit.strategy=decode-scene"])
    assert (cfg.exploit.fit.lambda_enc, cfg.exploit.fit.lambda_dec) == (0.0, 1.0)
    # an explicit weight that agrees is kept; one that contradicts the strategy is an error, not overwritten
    stage_configs(exploit_config(base, ["exploit.fit.lambda_dec=1", "exploit.fit.lambda_enc=0"], "decode-scene"))
    with pytest.raises(ConfigError, match=r"exploit\.fit\.lambda_dec=0\.5.*exploit\.strategy='encode-scene'"):
        stage_configs(exploit_config(base, ["exploit.fit.lambda_dec=0.5"]))
    # a config built without exploit_config (API use) that contradicts its strategy is refused too
    raw = dataclasses.replace(base, exploit=dataclasses.replace(base.exploit, strategy="decode-scene"))
    with pytest.raises(ConfigError, match=r"exploit\.fit\.lambda_enc=1\.0"):
        stage_configs(raw, EXPLOIT_STAGES)
    with pytest.raises(ConfigError, match="exploit.t must lie in"):
        exploit_config(base, ["exploit.t=1.5"], "encode-decode-scene")


def test_a_conflict_stops_train_and_exploit_before_any_file_is_written(tmp_path):
    cfg = apply_overrides(small_config(), ["warmup.lr_encoder=1e-4"])
    with pytest.raises(ConfigError, match=r"warmup\.lr_encoder"):
        train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------ unknown keys
def test_unknown_set_key_names_the_key_its_section_and_the_valid_keys():
    with pytest.raises(ConfigError) as ei:
        apply_overrides(small_config(), ["exploit.fit.lr_mpl=1e-3"])
    msg = str(ei.value)
    assert "'lr_mpl'" in msg and "section 'exploit.fit'" in msg
    for f in dataclasses.fields(StageConfig):
        assert f.name in msg
    with pytest.raises(ConfigError, match=r"unknown key 'warmpu'.*valid keys: data, ae, triplane"):
        apply_overrides(small_config(), ["warmpu.steps=3"])


def test_unknown_config_file_key_lists_the_valid_keys(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"warmup": {"stpes": 3}}))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['stpes'\] for StageConfig; valid keys: steps, epochs"):
        load_config(PipelineConfig, p)


def test_a_preset_that_sets_an_unknown_component_key_fails_loudly():
    from latentscenes.scenes.bank import TriplaneConfig

    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['f_micro'\] of TriplaneConfig; valid keys: .*f_mic"):
        _set(TriplaneConfig(), f_micro=4)
    assert _set(TriplaneConfig(), f_mic=3).f_mic == 3


def test_component_preset_falls_back_to_defaults_only_for_a_missing_preset(monkeypatch):
    import latentscenes.config as config_mod
    from latentscenes.training.config import _component_preset

    class Comp:
        pass

    assert isinstance(_component_preset(Comp, "tiny-cpu"), Comp)  # no presets registered: the defaults

    def broken():
        raise ConfigError("a preset factory's own error")

    monkeypatch.setitem(config_mod._PRESETS, Comp, {"tiny-cpu": broken})
    with pytest.raises(ConfigError, match="own error"):  # no longer swallowed into the defaults
        _component_preset(Comp, "tiny-cpu")


# ------------------------------------------------------------------------------------------ manifests
@pytest.fixture(scope="module")
def recorded_runs(tmp_path_factory):
    """A tiny training run and an exploit batch, with the StageConfig each stage actually ran with."""
    ran: dict[str, StageConfig] = {}
    real = pipeline.run_stage

    def spy(system, table, stage, scfg, **kw):
        ran[stage] = scfg
        return real(system, table, stage, scfg, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(pipeline, "run_stage", spy)
    root = tmp_path_factory.mktemp("eff")
    try:
        with single_thread():
            train_3daae(small_config(), root / "run", scenes=sphere_scenes(2))
            cfg = exploit_config(load_run_config(root / "run"), ["exploit.t=0.25"], "encode-decode-scene")
            exploit_3daae(root / "run", root / "ex", cfg, scenes=sphere_scenes(1, "n", seed=3))
    finally:
        mp.undo()
    return root, ran


def test_manifests_hold_the_effective_config_of_every_stage_equal_to_what_ran(recorded_runs):
    root, ran = recorded_runs
    assert set(ran) == set(TRAIN_STAGES + EXPLOIT_STAGES)
    run_m = json.loads((root / "run" / "manifest.json").read_text())
    ex_m = json.loads((root / "ex" / "manifest.json").read_text())
    assert set(run_m["stage_configs"]) == set(TRAIN_STAGES)
    assert set(ex_m["stage_configs"]) == set(EXPLOIT_STAGES)
    for stage in TRAIN_STAGES:
        assert run_m["stage_configs"][stage] == json.loads(json.dumps(to_dict(ran[stage]))), stage
    for stage in EXPLOIT_STAGES:
        assert ex_m["stage_configs"][stage] == json.loads(json.dumps(to_dict(ran[stage]))), stage
    fit = ex_m["stage_configs"]["exploit_fit"]
    assert (fit["lambda_enc"], fit["lambda_dec"]) == (0.25, 0.75)
    # and the saved config.json says the same: nothing is changed after it is written
    saved = json.loads((root / "ex" / "config.json").read_text())
    assert saved["exploit"]["fit"] == fit and saved["exploit"]["finetune"] == ex_m["stage_configs"]["exploit_finetune"]
    saved_run = json.loads((root / "run" / "config.json").read_text())
    assert saved_run["warmup"] == run_m["stage_configs"]["warmup"]
    assert saved_run["joint"] == run_m["stage_configs"]["joint"]


def test_export_copies_the_stage_configs_of_the_exported_stages(recorded_runs, tmp_path):
    root, _ = recorded_runs
    m = pipeline.export_pretrained(root / "run", tmp_path / "pkg")
    assert set(m["stage_configs"]) == set(TRAIN_STAGES)
    m = pipeline.export_pretrained(root / "run", tmp_path / "pkg-warm", stage="warmup")
    assert set(m["stage_configs"]) == {"warmup"}


def test_resuming_a_batch_saved_before_stage_configs_compares_what_it_ran(recorded_runs, tmp_path):
    """Older batches saved the preset's fit weights in config.json and ran the strategy's: a --resume reads them
    as they ran instead of refusing a change; a batch that records stage_configs is compared as saved."""
    import shutil

    from latentscenes.training.pipeline import RunError

    root, _ = recorded_runs
    for legacy in (True, False):
        ex = tmp_path / f"ex-{legacy}"
        shutil.copytree(root / "ex", ex)
        cfg_json, man_json = json.loads((ex / "config.json").read_text()), json.loads((ex / "manifest.json").read_text())
        cfg_json["exploit"]["fit"].update(lambda_enc=1.0, lambda_dec=0.0)  # what the file showed before
        (ex / "config.json").write_text(json.dumps(cfg_json))
        if legacy:
            man_json.pop("stage_configs")
        (ex / "manifest.json").write_text(json.dumps(man_json))
        before = {p: p.read_bytes() for p in ex.rglob("*") if p.is_file()}
        cfg = exploit_config(load_run_config(ex))
        assert (cfg.exploit.fit.lambda_enc, cfg.exploit.fit.lambda_dec) == (0.25, 0.75)
        if legacy:
            res = exploit_3daae(root / "run", ex, cfg, scenes=sphere_scenes(1, "n", seed=3), resume=True)
            assert res["scene_ids"] == ["n00"]
            assert {p: p.read_bytes() for p in ex.rglob("*") if p.is_file()} == before  # nothing written
        else:
            with pytest.raises(RunError, match=r"exploit\.fit\.lambda_dec"):
                exploit_3daae(root / "run", ex, cfg, scenes=sphere_scenes(1, "n", seed=3), resume=True)


# ------------------------------------------------------------------------------------ small exploit batches
def test_fit_for_min_steps_keeps_the_per_scene_budget_in_smaller_batches():
    from latentscenes.training.config import fit_for_min_steps
    from latentscenes.training.stages import resolve_steps

    fit = StageConfig(epochs=400 / 24, batch_size=8)
    # one scene of 24 views at the tiny-cpu budget: 50 updates of 8 -> 400 updates of 1, the same 400 view-updates
    one = fit_for_min_steps(fit, 24, 400)
    assert one.batch_size == 1 and resolve_steps(one, 24) == 400
    two = fit_for_min_steps(fit, 24, 200)
    assert two.batch_size == 2 and resolve_steps(two, 24) * two.batch_size == resolve_steps(fit, 24) * 8
    # ten scenes already give 500 updates at batch 8: unchanged (the card's, demo's and benchmark's batches)
    assert fit_for_min_steps(fit, 240, 400) is fit
    # an explicit step count, or the rule off, runs as given
    assert fit_for_min_steps(StageConfig(steps=10, batch_size=8), 24, 400).batch_size == 8
    assert fit_for_min_steps(fit, 24, None) is fit


def test_a_one_scene_exploit_batch_fits_in_smaller_batches_and_records_it(tmp_path):
    from latentscenes.training.stages import resolve_steps

    cfg = small_config()
    run = tmp_path / "run"
    with single_thread():
        train_3daae(cfg, run, scenes=sphere_scenes(2))
        ex = exploit_config(load_run_config(run), ["exploit.fit.epochs=4", "exploit.fit.batch_size=4",
                                                   "exploit.fit_min_steps=8", "exploit.finetune_decoder=false"])
        res = exploit_3daae(run, tmp_path / "b", ex, scenes=sphere_scenes(1, "new", seed=3))
    n_views = res["n_views"]
    want = max(1, int(4 * n_views // 8))
    assert want < 4  # the case under test: the per-scene budget gives fewer than 8 updates at batch 4
    rec = json.loads((tmp_path / "b" / "manifest.json").read_text())["stage_configs"]["exploit_fit"]
    assert rec["batch_size"] == want
    assert res["stages"]["exploit_fit"]["steps"] == resolve_steps(StageConfig(epochs=4, batch_size=want), n_views)
    with pytest.raises(ConfigError, match="fit_min_steps"):
        pipeline.validate_pipeline(apply_overrides(small_config(), ["exploit.fit_min_steps=0"]))
