"""The adapters over the project's real components (scene bank, tiny MLP, renderer, AutoencoderKL)."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import make_scene
from latentscenes.autoencoder.model import AEConfig, load_autoencoder
from latentscenes.config import get_preset
from latentscenes.evaluation.evaluate import evaluate_scene
from latentscenes.evaluation.runs import autoencoder_view, triplane_scene_model
from latentscenes.rendering.decoder import TriplaneDecoder
from latentscenes.rendering.renderer import RenderConfig
from latentscenes.scenes.bank import SceneBank, TriplaneConfig


def _bank(ids):
    cfg = get_preset(TriplaneConfig, "test")
    return SceneBank(cfg, ids, generator=torch.Generator().manual_seed(0)), cfg


def test_rgb_adapter_is_deterministic_and_full_resolution():
    bank, tcfg = _bank(["s0", "s1"])
    mlp = TriplaneDecoder(tcfg.features, 3, hidden=16)
    rcfg = get_preset(RenderConfig, "test")
    assert not rcfg.deterministic
    m = triplane_scene_model("rgb", "rgb", bank, mlp, rcfg, torch.ones(3))
    sc = make_scene("s0", n_views=3, n_test=1, size=32)
    a = m.render("s0", sc.c2w[:1], sc.K[:1], (32, 32))
    b = m.render("s0", sc.c2w[:1], sc.K[:1], (32, 32))
    assert a.image.shape == (1, 3, 32, 32) and a.depth.shape == (1, 1, 32, 32)
    assert torch.equal(a.image, b.image)  # deterministic sampling, even though the stage config is not
    c = m.render("s1", sc.c2w[:1], sc.K[:1], (32, 32))
    assert not torch.equal(a.image, c.image)  # a different scene renders differently
    r = evaluate_scene(m, sc)
    assert math.isfinite(r["mean"]["psnr"]) and r["views"][0]["render_ms"] > 0
    with pytest.raises(KeyError):
        m.render("nope", sc.c2w[:1], sc.K[:1], (32, 32))


def test_latent_adapter_with_real_autoencoder():
    ae = load_autoencoder(get_preset(AEConfig, "test"))
    view = autoencoder_view(ae)
    assert view.downsample == 8
    bank, tcfg = _bank(["s0"])
    mlp = TriplaneDecoder(tcfg.features, ae.latent_channels, hidden=16)
    m = triplane_scene_model("latent", "ours", bank, mlp, get_preset(RenderConfig, "test"),
                             ae.latent_background(32), autoencoder=view)
    sc = make_scene("s0", n_views=3, n_test=2, size=32)
    r = evaluate_scene(m, sc)
    v = r["views"][0]
    for k in ("psnr", "ssim", "latent_psnr", "latent_ssim", "ae_psnr", "ae_ssim", "decode_ms"):
        assert math.isfinite(v[k]), k
    # the posterior mean makes the AE upper bound deterministic
    assert evaluate_scene(m, sc)["views"][0]["ae_psnr"] == v["ae_psnr"]
    # the benchmark's AE ceiling (bench/measure.py) is this same reconstruction, without a scene model
    from latentscenes.evaluation.evaluate import autoencoder_ceiling

    ceil = autoencoder_ceiling(view, sc)
    assert [c["psnr"] for c in ceil["views"]] == pytest.approx([w["ae_psnr"] for w in r["views"]], abs=1e-5)
    assert ceil["mean"]["psnr"] == pytest.approx(r["mean"]["ae_psnr"], abs=1e-5)
    with pytest.raises(ValueError, match="no 'train' views"):
        autoencoder_ceiling(view, sc.subset(sc.view_indices("test")), "train")
    with pytest.raises(ValueError, match="latent model"):
        triplane_scene_model("latent", "x", bank, mlp, get_preset(RenderConfig, "test"), torch.ones(4))


def test_rgb_run_folder_matches_the_baselines_own_metrics(tmp_path):
    from latentscenes.evaluation.evaluate import evaluate_model
    from latentscenes.evaluation.runs import load_rgb_run
    from latentscenes.baselines.rgb.fit import RGBFitConfig, fit_rgb_scenes

    scenes = {s: make_scene(s, n_views=6, n_test=2, size=32, seed=i) for i, s in enumerate(["p", "q"])}
    cfg = get_preset(RGBFitConfig, "test")
    from latentscenes.evaluation.curves import rgb_fit_evaluator

    # the fit evaluates its live tensors; eval reads the saved files: equal figures = a lossless folder
    res = fit_rgb_scenes(list(scenes.values()), cfg, out_dir=tmp_path / "rgb", evaluate=rgb_fit_evaluator())
    model = load_rgb_run(tmp_path / "rgb")
    assert model.kind == "rgb" and model.scene_ids == ["p", "q"]
    ev = evaluate_model(model, scenes, {"exploit": ["p", "q"]}, show_progress=False)
    for r in res["scenes"]:
        # same views (max_eval_views = 2 = all held-out views here), same deterministic render, same protocol
        assert ev["scenes"][r["scene_id"]]["mean"]["psnr"] == pytest.approx(r["psnr"], abs=1e-3)
        assert ev["scenes"][r["scene_id"]]["mean"]["ssim"] == pytest.approx(r["ssim"], abs=1e-4)
    (tmp_path / "rgb" / "scenes" / "q.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="q.safetensors"):
        load_rgb_run(tmp_path / "rgb")
    with pytest.raises(FileNotFoundError, match="results.json"):
        load_rgb_run(tmp_path)


def test_eval_of_a_run_without_scenes_is_an_error_not_zero_scenes(tmp_path):
    """Issue 11, defect 5: ``eval`` of a folder whose scene list is empty reported "0 scenes" with exit code 0."""
    import json

    from latentscenes.evaluation.runs import load_run
    from latentscenes.baselines.rgb.fit import RGBFitConfig, fit_rgb_scenes

    fit_rgb_scenes([make_scene("p", n_views=6, n_test=2, size=32)], get_preset(RGBFitConfig, "test"),
                   out_dir=tmp_path / "rgb")
    res = json.loads((tmp_path / "rgb" / "results.json").read_text())
    res["scenes"] = []
    (tmp_path / "rgb" / "results.json").write_text(json.dumps(res))
    with pytest.raises(ValueError, match="no scenes") as e:
        load_run(tmp_path / "rgb", device="cpu")
    assert type(e.value) is ValueError  # the eval command's one-line user error (cli/evaluate.py eval_errors)
