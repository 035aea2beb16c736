"""Smoke and bookkeeping checks of the Tri-Planes (RGB) baseline (fit_rgb_scenes and the fit-rgb command)."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open
from typer.testing import CliRunner

from latentscenes.config import apply_overrides, get_preset
from latentscenes.scenes.synthetic import make_sphere_scene
from latentscenes.baselines.rgb.fit import RGBFitConfig, effective_triplane, fit_rgb_scenes
from latentscenes.evaluation.curves import rgb_fit_evaluator


@pytest.fixture(scope="module")
def scenes():
    return [make_sphere_scene("sa", n_views=6, n_test=2, resolution=32, seed=0),
            make_sphere_scene("sb", n_views=6, n_test=2, resolution=32, seed=1)]


def test_fit_micro_records_time_bytes_quality_curve(scenes, tmp_path):
    cfg = get_preset(RGBFitConfig, "test")
    res = fit_rgb_scenes(scenes, cfg, tmp_path, evaluate=rgb_fit_evaluator())
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["summary"]["n_scenes"] == 2 and len(saved["scenes"]) == 2
    # scenes given in memory (config.resolution None): the folder still says the size they were fitted at, so
    # `eval` reloads the ground truth at it (the benchmark's RGB folder was evaluated at the data's 128 px before)
    from latentscenes.baselines.rgb.fit_format import fitted_resolution

    assert saved["image_size"] == [32, 32] and fitted_resolution(saved) == 32
    assert fitted_resolution({"config": {"resolution": None}, "image_size": [32, 32]}) == 32
    assert fitted_resolution({"config": {"resolution": 64}, "image_size": [32, 32]}) == 64
    assert fitted_resolution({"config": {}}) is None
    T, Fd = cfg.triplane.resolution, cfg.triplane.features
    for r in res["scenes"]:
        assert r["time_s"] > 0 and r["n_test_views"] == 2
        assert 0 < r["psnr"] < 60 and -1 <= r["ssim"] <= 1
        # per-scene bytes: planes 3*F*T*T fp32 + the scene's own MLP, exactly what is saved
        assert r["plane_bytes"] == 3 * Fd * T * T * 4
        with safe_open(str(tmp_path / "scenes" / f"{r['scene_id']}.safetensors"), "pt") as f:
            planes_saved = sum(f.get_tensor(k).numel() * 4 for k in f.keys())
        with safe_open(str(tmp_path / "scenes" / f"{r['scene_id']}.decoder.safetensors"), "pt") as f:
            dec_saved = sum(f.get_tensor(k).numel() * 4 for k in f.keys())
        assert r["param_bytes"] == planes_saved + dec_saved
        times = [t for t, _ in r["curve"]]
        assert times[0] == 0.0 and times == sorted(times) and times[-1] == pytest.approx(r["time_s"])
        assert len(r["curve"]) == 1 + cfg.steps // cfg.eval_every


def test_fit_without_an_evaluator_measures_no_quality(scenes):
    """The held-out metrics are the caller's evaluator's: without one the fit records none (no invented PSNR)."""
    cfg = apply_overrides(get_preset(RGBFitConfig, "test"), ["steps=2", "save_planes=false"])
    res = fit_rgb_scenes(scenes[:1], cfg, None)
    r = res["scenes"][0]
    assert r["psnr"] is None and r["ssim"] is None and r["curve"] == [] and r["n_test_views"] == 0
    assert res["summary"]["psnr"] is None and r["time_s"] > 0


@pytest.mark.parametrize("variant", ["micro", "macro"])
def test_evaluating_during_the_fit_does_not_change_it(scenes, variant):
    """The evaluator's renders (curve every 2 steps, final metrics) leave the optimisation exactly as without."""
    cfg = apply_overrides(get_preset(RGBFitConfig, "test"), [f"variant={variant}", "steps=4", "eval_every=2",
                                                            "save_planes=false"])
    plain = fit_rgb_scenes(scenes, cfg, None)
    measured = fit_rgb_scenes(scenes, cfg, None, evaluate=rgb_fit_evaluator())
    assert [r["final_loss"] for r in measured["scenes"]] == [r["final_loss"] for r in plain["scenes"]]
    assert len(measured["scenes"][0]["curve"]) == 3 and all(r["psnr"] is not None for r in measured["scenes"])


def test_fit_macro_shares_global_planes(scenes, tmp_path):
    cfg = apply_overrides(get_preset(RGBFitConfig, "test"), ["variant=macro", "steps=3"])
    tc = effective_triplane(cfg)
    assert tc.f_mic == 0 and tc.f_mac == cfg.triplane.features
    res = fit_rgb_scenes(scenes, cfg, tmp_path)
    assert [r["param_bytes"] for r in res["scenes"]] == [tc.n_global * 4] * 2  # coefficients only
    assert res["shared"]["global_planes_bytes"] == tc.n_global * 3 * tc.f_mac * tc.resolution**2 * 4
    assert res["scenes"][0]["time_s"] == pytest.approx(res["shared"]["total_time_s"] / 2)


def test_fit_learns_something(tmp_path):
    """A few dozen steps on one scene beat the untrained planes on held-out views."""
    scene = make_sphere_scene("s", n_views=8, n_test=1, resolution=24)
    cfg = apply_overrides(get_preset(RGBFitConfig, "test"), ["steps=40", "eval_every=40", "rays_per_batch=512"])
    r = fit_rgb_scenes([scene], cfg, None, evaluate=rgb_fit_evaluator())["scenes"][0]
    assert r["curve"][-1][1] > r["curve"][0][1] + 3.0


@pytest.mark.parametrize("preset", ["tiny-cpu", "paper"])
def test_presets_one_step_low_resolution(preset, scenes):
    cfg = apply_overrides(
        get_preset(RGBFitConfig, preset),
        ["steps=1", "resolution=8", "rays_per_batch=64", "eval_every=0", "curve_views=1", "max_eval_views=1",
         "measure_render=false", "save_planes=false"],
    )
    res = fit_rgb_scenes(scenes[:1], cfg, None)
    T = 64  # both presets: the paper's plane resolution
    assert res["scenes"][0]["plane_bytes"] == 3 * 32 * T * T * 4
    assert res["render_used"]["n_coarse"] == {"tiny-cpu": 24, "paper": 48}[preset]


def test_dataset_render_defaults_are_used(scenes):
    class FakeDataset:
        scene_ids = ["sa"]
        render_defaults = {"near": 0.6, "far": 2.0, "box_size": 2.0}

        def load(self, sid):
            return scenes[0]

    cfg = apply_overrides(get_preset(RGBFitConfig, "test"), ["steps=1", "eval_every=0", "save_planes=false"])
    res = fit_rgb_scenes(FakeDataset(), cfg, None)
    assert res["render_used"]["near"] == 0.6 and res["render_used"]["far"] == 2.0


def test_cli_missing_data_is_a_clean_error(tmp_path):
    from latentscenes.cli.main import app

    result = CliRunner().invoke(app, ["fit-rgb", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                                      "--preset", "test"])
    assert result.exit_code == 2
    assert "not found" in result.output


@pytest.mark.parametrize("variant", ["micro", "macro"])
def test_reload_fit_renders_the_same_metrics(scenes, tmp_path, variant):
    from latentscenes.metrics import rgb_metrics
    from latentscenes.evaluation.runs import load_rgb_run

    cfg = apply_overrides(get_preset(RGBFitConfig, "test"), [f"variant={variant}", "steps=1", "eval_every=0", "max_eval_views=1"])
    res = fit_rgb_scenes(scenes, cfg, tmp_path, evaluate=rgb_fit_evaluator())
    fit = load_rgb_run(tmp_path)
    assert fit.scene_ids == ["sa", "sb"]
    test = scenes[1].subset(scenes[1].view_indices("test")[:1])
    out = fit.render("sb", test.c2w, test.K, test.resolution)
    psnr = rgb_metrics(out.image, test.images)["psnr"].mean().item()
    assert psnr == pytest.approx(res["scenes"][1]["psnr"], abs=1e-3)
    with pytest.raises(KeyError):
        fit.render("zz", test.c2w, test.K, test.resolution)


def test_rgb_tv_smooths_the_planes_and_lr_decay_scales_every_group(scenes, tmp_path):
    from latentscenes.baselines.rgb.fit import _optimizers
    from latentscenes.rendering.decoder import TriplaneDecoder
    from latentscenes.scenes.bank import SceneBank, TriplaneConfig
    from latentscenes.training.losses import triplane_tv

    def plane_tv(folder, sid):
        with safe_open(str(folder / "scenes" / f"{sid}.safetensors"), "pt") as f:
            t = f.get_tensor([k for k in f.keys() if "local" in k][0])
        return float(triplane_tv(t.reshape(1, 3, -1, *t.shape[-2:])))

    base = apply_overrides(get_preset(RGBFitConfig, "test"), ["steps=20"])
    fit_rgb_scenes(scenes[:1], base, tmp_path / "a")
    fit_rgb_scenes(scenes[:1], apply_overrides(base, ["lambda_tv=1e-2"]), tmp_path / "b")
    assert plane_tv(tmp_path / "b", "sa") < 0.8 * plane_tv(tmp_path / "a", "sa")

    bank = SceneBank(TriplaneConfig(resolution=8, f_mic=2, f_mac=2, n_global=2), ["x"])
    mlp = TriplaneDecoder(4, 3, 8)
    for mode in ("dense", "sparse"):
        cfg = apply_overrides(base, [f"optimizer={mode}", "lr_planes=1e-2", "lr_coefs=3e-2", "lr_global=4e-2",
                                     "lr_mlp=2e-2"])
        opt = _optimizers(bank, mlp, cfg)
        opt.set_lr_factor(0.5)
        lrs = {k: o.param_groups[0]["lr"] for k, o in opt.dense.items()} | {k: o.lr for k, o in opt.lazy.items()}
        assert lrs == pytest.approx({"local": 5e-3, "coefs": 1.5e-2, "global": 2e-2, "mlp": 1e-2})
        assert set(opt.lazy) == ({"local", "coefs"} if mode == "sparse" else set())


def test_scene_ids_that_are_not_plain_names_are_refused_before_any_fit(tmp_path):
    """Issue 11, defect 4: scene ids name files under OUT/scenes; a bad one used to be found only when its turn
    came, after the scenes before it had been fitted and written."""
    from latentscenes.data.types import DatasetError

    good = make_sphere_scene("sa", n_views=6, n_test=2, resolution=32, seed=0)
    bad = make_sphere_scene("../victim", n_views=6, n_test=2, resolution=32, seed=1)
    out = tmp_path / "deep" / "out"
    with pytest.raises(DatasetError, match="not a plain name"):
        fit_rgb_scenes([good, bad], get_preset(RGBFitConfig, "test"), out)
    assert not (out / "scenes").exists() and not (tmp_path / "deep" / "victim.safetensors").exists()


def test_reloading_a_fit_refuses_scene_ids_that_leave_its_folder(scenes, tmp_path):
    from latentscenes.data.types import DatasetError
    from latentscenes.evaluation.runs import load_rgb_run

    out = tmp_path / "fit"
    fit_rgb_scenes(scenes[:1], get_preset(RGBFitConfig, "test"), out)
    res = json.loads((out / "results.json").read_text())
    res["scenes"][0]["scene_id"] = "../../elsewhere/sa"
    (out / "results.json").write_text(json.dumps(res))
    with pytest.raises(DatasetError, match="results.json.*not a plain name"):
        load_rgb_run(out)


def test_lr_mlp_is_the_mlp_learning_rate_and_old_configs_with_lr_decoder_still_load(tmp_path):
    """``lr_mlp`` (the tri-plane MLP) was ``lr_decoder``, the name of the VAE decoder's rate in the 3Da-AE stages."""
    from latentscenes.config import ConfigError, load_config, save_config, to_dict

    cfg = apply_overrides(get_preset(RGBFitConfig, "test"), ["lr_mlp=0.003"])
    assert cfg.lr_mlp == 0.003 and "lr_decoder" not in to_dict(cfg)
    old = to_dict(cfg)
    old["lr_decoder"] = old.pop("lr_mlp")  # a config.json written before the rename
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert load_config(RGBFitConfig, tmp_path / "old.json") == cfg
    save_config(cfg, tmp_path / "new.json")
    assert json.loads((tmp_path / "new.json").read_text())["lr_mlp"] == 0.003
    with pytest.raises(ConfigError, match="it was renamed 'lr_mlp'"):
        apply_overrides(cfg, ["lr_decoder=0.01"])
    with pytest.raises(ConfigError, match="lr_mlp=-1"):
        apply_overrides(cfg, ["lr_mlp=-1"]).validate()


def test_an_interrupted_micro_fit_resumes_with_only_the_missing_scenes_fitted(scenes, tmp_path):
    """Each scene is written when it is done (its record after its weights); a resumed fit reuses those and fits
    the rest with the seeds an uninterrupted fit would have used, so its results are the uninterrupted fit's."""
    import shutil

    cfg = apply_overrides(get_preset(RGBFitConfig, "test"), ["steps=3", "eval_every=0"])
    whole = fit_rgb_scenes(scenes, cfg, tmp_path / "whole", evaluate=rgb_fit_evaluator())
    part = tmp_path / "part"
    shutil.copytree(tmp_path / "whole", part)
    # interrupted while fitting the second scene: no index yet, the second scene's weights written, not its record
    (part / "results.json").unlink()
    (part / "scenes" / "sb.json").unlink()
    logged = []
    res = fit_rgb_scenes(scenes, cfg, part, evaluate=rgb_fit_evaluator(), resume=True, log=logged.append)
    assert any(line.startswith("sa: fitted in an earlier run") for line in logged)
    assert not any(line.startswith("sb: fitted in an earlier run") for line in logged)
    for a, b in zip(whole["scenes"], res["scenes"]):
        assert a["scene_id"] == b["scene_id"] and a["psnr_per_view"] == b["psnr_per_view"]
    assert res["scenes"][0]["time_s"] == whole["scenes"][0]["time_s"]  # the record reused, not refitted
    assert json.loads((part / "results.json").read_text())["summary"]["n_scenes"] == 2
    # without resume the same folder is fitted again from scratch (the library call does not refuse it)
    logged.clear()
    fit_rgb_scenes(scenes[:1], cfg, tmp_path / "whole", evaluate=rgb_fit_evaluator(), log=logged.append)
    assert logged and not any("fitted in an earlier run" in line for line in logged)


def test_fit_rgb_resume_continues_its_own_folder_and_refuses_other_settings(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[2] / "training"))
    from helpers_3daae import write_sphere_dataset
    from latentscenes.cli.main import app

    data = write_sphere_dataset(tmp_path / "data", n_train=2, n_exploit=0, resolution=16)
    out = tmp_path / "o"
    args = ["fit-rgb", "--data", str(data), "--out", str(out), "--preset", "test", "--set", "steps=2"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    # the fit records its dataset: `eval --run` finds the ground truth without --data
    ev = CliRunner().invoke(app, ["eval", "--run", str(out), "--out", str(tmp_path / "m.json")])
    assert ev.exit_code == 0, ev.output
    assert json.loads((tmp_path / "m.json").read_text())["overall"]["n_scenes"] == 2
    again = CliRunner().invoke(app, args)  # its own folder: refused without --resume, nothing overwritten
    assert again.exit_code != 0 and "--resume" in again.output
    (out / "results.json").unlink()
    (out / "scenes" / sorted(p.name for p in (out / "scenes").glob("*.json"))[-1]).unlink()
    resumed = CliRunner().invoke(app, ["fit-rgb", "--data", str(data), "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "fitted in an earlier run" in resumed.output
    assert json.loads((out / "results.json").read_text())["summary"]["n_scenes"] == 2
    other = CliRunner().invoke(app, args[:-1] + ["steps=5", "--resume"])
    assert other.exit_code != 0 and "steps differ" in " ".join(other.output.split())
