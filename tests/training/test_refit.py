"""Collapsed exploit fits are found on their own train views and learned again (training/refit.py)."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest
import torch

from latentscenes.config import ConfigError
from latentscenes.training.data import build_view_table, shift_views
from latentscenes.training.pipeline import encode_views, exploit_3daae, exploit_config, load_exploited, load_run_config, train_3daae, validate_pipeline
from latentscenes.training.refit import fit_latent_psnr, refit_config, refit_scenes, scenes_to_refit

from helpers_3daae import assert_same_params, params_of, single_thread, small_config, sphere_scenes


def test_scenes_to_refit_takes_the_scenes_far_below_the_median_worst_first():
    psnr = {"a": 20.0, "b": 21.0, "c": 22.0, "d": 15.0, "e": 17.5}
    med, low = scenes_to_refit(psnr, 2.0)
    assert med == 20.0
    assert low == ["d", "e"]  # 5 and 2.5 dB below; b, c above; a at the median
    assert scenes_to_refit(psnr, 6.0)[1] == []
    assert scenes_to_refit({"a": 20.0, "b": 10.0, "c": 21.0}, 2.0) == (None, [])  # < 4 scenes: no median
    with pytest.raises(ValueError, match="refit_margin_db"):
        scenes_to_refit(psnr, 0.0)


def test_refit_config_keeps_the_per_scene_budget_and_freezes_what_is_shared():
    fit = small_config().exploit.fit
    by_steps = refit_config(fit, n_views_batch=40)  # the test preset's fit is given in steps
    assert by_steps.epochs == pytest.approx(fit.steps * fit.batch_size / 40)
    assert by_steps.lr_mlp == 0 and by_steps.lr_global == 0 and by_steps.checkpoint_every == 0
    assert by_steps.lr_local == fit.lr_local and by_steps.lambda_enc == fit.lambda_enc


def test_a_bad_margin_is_refused_before_any_work():
    cfg = small_config()
    cfg.exploit.refit_margin_db = -1.0
    with pytest.raises(ConfigError, match="exploit.refit_margin_db"):
        validate_pipeline(cfg)
    cfg = small_config()
    cfg.exploit.collapse_margin_db = 0.0
    with pytest.raises(ConfigError, match="exploit.collapse_margin_db"):
        validate_pipeline(cfg)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A ``test``-preset run and an exploit batch of 5 new scenes learned without refits."""
    root = tmp_path_factory.mktemp("refit")
    with single_thread():
        train_3daae(small_config(), root / "run", scenes=sphere_scenes(3))
        cfg = exploit_config(load_run_config(root / "run"), ["exploit.refit_margin_db=null",
                                                             "exploit.finetune_decoder=false"])
        new = sphere_scenes(5, "new", seed=1)
        res = exploit_3daae(root / "run", root / "batch", cfg, scenes=new)
    return {"root": root, "cfg": cfg, "scenes": new, "system": res["system"]}


def _table_and_latents(batch):
    cfg, system = batch["cfg"], batch["system"]
    table = build_view_table(batch["scenes"], "train", cfg.data.max_views, cfg.data.resolution)
    table = shift_views(table, cfg.data.shift_grid, system.downsample)
    latents, _, _ = encode_views(system, table, None, 8, False)
    return table, latents


def test_a_collapsed_fit_is_found_learned_again_and_nothing_else_moves(batch):
    system = load_exploited(batch["root"] / "batch", "cpu")
    table, latents = _table_and_latents({**batch, "system": system})
    before = fit_latent_psnr(system, table, latents)
    assert set(before) == {f"new{i:02d}" for i in range(5)} and all(math.isfinite(v) for v in before.values())
    # the collapse: one scene's local planes and coefficients replaced by noise far from any fit
    row = int(system.bank.rows(["new02"]))
    with torch.no_grad():
        system.bank.local.data[row] = torch.randn(system.bank.local.shape[1], generator=torch.Generator().manual_seed(0)) * 3
        system.bank.coefs.data[row] = 3.0
    broken = fit_latent_psnr(system, table, latents)
    assert broken["new02"] < before["new02"] - 3
    untouched = params_of(system)
    with single_thread():
        rec = refit_scenes(system, table, latents, batch["cfg"].exploit.fit, 2.0, seed=0)
    assert rec["checked"] == 5 and [r["scene"] for r in rec["scenes"]] == ["new02"]
    r = rec["scenes"][0]
    assert r["kept"] == "refit" and r["after_db"] > r["before_db"] + 3
    after = fit_latent_psnr(system, table, latents)
    assert after["new02"] == pytest.approx(r["after_db"], abs=1e-3)
    assert rec["steps"] > 0 and rec["train_s"] >= rec["refit_s"] > 0
    # only new02's rows changed: the other scenes, the MLP, the global planes and the autoencoder are as they were
    now = params_of(system)
    changed = [k for k in now if not torch.equal(now[k], untouched[k])]
    assert changed == ["bank.local", "bank.coefs"]
    for k in changed:
        keep = torch.ones(now[k].shape[0], dtype=torch.bool)
        keep[row] = False
        assert torch.equal(now[k][keep], untouched[k][keep])


def test_a_refit_that_is_worse_is_not_kept(batch):
    system = load_exploited(batch["root"] / "batch", "cpu")
    table, latents = _table_and_latents({**batch, "system": system})
    untouched = params_of(system)
    fit = batch["cfg"].exploit.fit
    # a refit that hardly moves (learning rates 1e-9) from a loud initialisation (std 10): worse than every first fit
    frozen = dataclasses.replace(fit, lr_local=1e-9, lr_coefs=1e-9)
    system.bank.cfg = dataclasses.replace(system.bank.cfg, local_init_std=10.0, coef_init_std=10.0)
    with single_thread():
        rec = refit_scenes(system, table, latents, frozen, 1e-6, seed=0, init="fresh")
    assert rec["refitted"] >= 1 and rec["replaced"] == 0
    assert all(r["kept"] == "first" and r["after_db"] <= r["before_db"] for r in rec["scenes"])
    assert_same_params(untouched, params_of(system))


def test_exploit_records_its_refits_and_repeats_them_exactly(tmp_path, batch):
    """A margin small enough to refit about half the batch: the manifest says which scenes and what was kept,
    the refit time counts in the batch's time, and a second batch from scratch is bit-identical (what --resume
    relies on: the refit has no checkpoint of its own)."""
    cfg = exploit_config(load_run_config(batch["root"] / "run"), ["exploit.refit_margin_db=0.000001"])
    with single_thread():
        a = exploit_3daae(batch["root"] / "run", tmp_path / "a", cfg, scenes=batch["scenes"])
        b = exploit_3daae(batch["root"] / "run", tmp_path / "b", cfg, scenes=batch["scenes"])
    rec = a["stages"]["exploit_refit"]
    assert rec["checked"] == 5 and rec["refitted"] == 2  # the two scenes below the median of five
    assert all((r["kept"] == "refit") == (r["after_db"] > r["before_db"]) for r in rec["scenes"])
    assert a["train_s"] >= rec["train_s"] + a["stages"]["exploit_fit"]["train_s"]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["stages"]["exploit_refit"]["scenes"] == rec["scenes"]
    assert_same_params(params_of(load_exploited(tmp_path / "a", "cpu")), params_of(load_exploited(tmp_path / "b", "cpu")))


def test_a_refit_starts_from_the_mean_of_the_scenes_that_did_not_collapse(batch):
    from latentscenes.training.refit import _healthy_mean

    system = load_exploited(batch["root"] / "batch", "cpu")
    healthy = ["new00", "new01", "new03"]
    st = system.bank.per_scene_state(healthy)
    mean = _healthy_mean(system, healthy, None)
    for k in st:
        assert torch.allclose(mean[k][0], st[k].mean(0), atol=1e-6)
    # several processes: the parts of every process give the same mean as one process holding all the scenes
    parts = [({k: v[:2].double().sum(0) for k, v in st.items()}, 2), ({k: v[2:].double().sum(0) for k, v in st.items()}, 1)]
    split = _healthy_mean(system, [], lambda part: parts)
    for k in st:
        assert torch.allclose(split[k], mean[k], atol=1e-6)
    with pytest.raises(ValueError, match="refit_init"):
        table, latents = _table_and_latents({**batch, "system": system})
        refit_scenes(system, table, latents, batch["cfg"].exploit.fit, 2.0, seed=0, init="median")


def test_the_exploit_command_says_which_scenes_it_refitted(tmp_path):
    from typer.testing import CliRunner

    from latentscenes.cli.main import app

    from helpers_3daae import write_sphere_dataset

    data = write_sphere_dataset(tmp_path / "data", n_train=2, n_exploit=5)
    with single_thread():
        cfg = small_config()
        train_3daae(cfg, tmp_path / "run", data_root=data)
        sets = ["exploit.refit_margin_db=0.000001", "logging.progress=false"]
        res = CliRunner().invoke(app, ["exploit", "--run", str(tmp_path / "run"), "--data", str(data), "--out",
                                       str(tmp_path / "b"), *[a for kv in sets for a in ("--set", kv)]])
    assert res.exit_code == 0, res.output + repr(res.exception)
    rec = json.loads((tmp_path / "b" / "manifest.json").read_text())["stages"]["exploit_refit"]
    assert "exploit_refit: 2 of 5 scenes more than 1e-06 dB below the median" in " ".join(res.output.split())
    for r in rec["scenes"]:
        assert f"{r['scene']} {r['before_db']:.2f} -> {r['after_db']:.2f} dB" in " ".join(res.output.split())


def test_a_batch_that_collapsed_as_a_whole_is_found_against_its_flat_prediction_and_refitted(batch):
    """The median rule cannot see a batch whose every fit collapsed; the flat prediction (each scene's mean latent
    everywhere) can, and the refits, one scene each, get ``min_steps`` updates from a fresh draw."""
    from latentscenes.training.refit import flat_latent_psnr

    system = load_exploited(batch["root"] / "batch", "cpu")
    table, latents = _table_and_latents({**batch, "system": system})
    with torch.no_grad():  # every scene collapsed: empty planes, the same coefficients
        system.bank.local.data.zero_()
        system.bank.coefs.data.zero_()
    collapsed = fit_latent_psnr(system, table, latents)
    flat = flat_latent_psnr(table, latents)
    assert all(collapsed[s] < flat[s] + 1.0 for s in collapsed)
    # a flat prediction is the best constant: the scene's mean latent beats any other constant
    x = latents[: table.n_source_views][table.scene_rows[: table.n_source_views] == 0][:8]
    off = x.mean(dim=(0, 2, 3), keepdim=True) + 0.05
    from latentscenes.metrics import psnr_per_image
    assert float(psnr_per_image(off.expand_as(x), x, data_range=2.0).mean()) < flat["new00"]
    # a per-scene budget of 20 passes over its 4 views: 20 updates at the fit's batch of 4, 80 at batch 1
    fit = dataclasses.replace(batch["cfg"].exploit.fit, epochs=20.0)
    with single_thread():
        median_only = refit_scenes(system, table, latents, fit, 2.0, seed=0)
        assert median_only["refitted"] == 0  # all alike: nothing below the median
        few = refit_scenes(copy.deepcopy(system), table, latents, fit, 2.0, seed=0, collapse_margin_db=1.0)
        rec = refit_scenes(system, table, latents, fit, 2.0, seed=0, collapse_margin_db=1.0, min_steps=60)
    assert rec["refitted"] == 5 and rec["collapse_margin_db"] == 1.0
    assert rec["flat_gap_min_db"] == pytest.approx(min(collapsed[s] - flat[s] for s in flat), abs=1e-3)
    assert all(r["flat_db"] == pytest.approx(flat[r["scene"]], abs=1e-3) for r in rec["scenes"])
    assert rec["steps"] >= 5 * 60  # one scene per refit: at least min_steps updates each
    gains = [r["after_db"] - r["before_db"] for r in rec["scenes"]]
    assert min(gains) > 0.5 and rec["replaced"] == 5
    # the same view-updates in 20 updates of 4 views (the fit's batch) leave the refits lower
    assert few["steps"] == 5 * 20
    assert sum(r["after_db"] for r in rec["scenes"]) > sum(r["after_db"] for r in few["scenes"]) + 5 * 0.5
    assert rec["still_collapsed"] == sorted(r["scene"] for r in rec["scenes"] if r["after_db"] < r["flat_db"] + 1.0)


def test_an_exact_fit_is_written_as_strict_json(batch, monkeypatch):
    """An exact fit has an infinite PSNR (and exact minus exact flat is nan): the manifest's record must still be
    strict JSON (no ``Infinity`` / ``NaN`` tokens), with ``None`` where a figure is not finite."""
    from latentscenes.training import refit as refit_mod

    system = load_exploited(batch["root"] / "batch", "cpu")
    table, latents = _table_and_latents({**batch, "system": system})
    ids = sorted(fit_latent_psnr(system, table, latents))
    monkeypatch.setattr(refit_mod, "fit_latent_psnr", lambda *a, **k: {s: math.inf for s in ids})
    monkeypatch.setattr(refit_mod, "flat_latent_psnr", lambda *a, **k: {s: math.inf for s in ids})
    rec = refit_scenes(system, table, latents, batch["cfg"].exploit.fit, 2.0, seed=0, collapse_margin_db=1.0)
    json.dumps(rec, allow_nan=False)  # raises ValueError on a non-finite float
    assert rec["median_db"] is None and rec["flat_gap_min_db"] is None and rec["refitted"] == 0
