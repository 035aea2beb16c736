"""The evaluation protocol on fakes whose errors are known in closed form."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import latent_model, rgb_model
from latentscenes.evaluation.evaluate import evaluate_model, evaluate_scene, format_summary, write_metrics_json


def test_rgb_psnr_matches_closed_form_and_averages_per_scene(scenes):
    offsets = {"a": 0.01, "b": 0.1, "c": 0.05}
    model = rgb_model(scenes, offsets)
    res = evaluate_model(model, scenes, {"train": ["a", "b"], "exploit": ["c"]}, show_progress=False)
    for sid, d in offsets.items():
        expected = -10 * math.log10(d * d)  # constant offset d in [0,1] units: MSE = d^2, data_range 1
        sc = res["scenes"][sid]
        assert sc["n_views"] == 2  # the two test views only
        assert [v["index"] for v in sc["views"]] == [0, 1]
        for v in sc["views"]:
            assert v["psnr"] == pytest.approx(expected, abs=1e-3)
        assert sc["mean"]["psnr"] == pytest.approx(expected, abs=1e-3)
    # group means are means over scenes of per-scene PSNR (not PSNR of the pooled MSE)
    g = res["groups"]["train"]["mean"]["psnr"]
    assert g == pytest.approx((40.0 + 20.0) / 2, abs=1e-3)
    pooled = -10 * math.log10((0.01**2 + 0.1**2) / 2)
    assert abs(g - pooled) > 5
    assert res["overall"]["n_scenes"] == 3 and res["overall"]["n_views"] == 6
    assert res["overall"]["mean"]["psnr"] == pytest.approx((40 + 20 + -10 * math.log10(0.0025)) / 3, abs=1e-3)
    # no latent metrics for an RGB model
    assert "latent_psnr" not in res["overall"]["mean"]
    assert res["overall"]["mean"]["render_ms"] >= 0


def test_ssim_drops_with_noise(scenes):
    model = rgb_model(scenes, {"a": 0.0, "b": 0.0, "c": 0.0})
    clean = evaluate_scene(model, scenes["a"])
    assert clean["views"][0]["ssim"] == pytest.approx(1.0, abs=1e-4)
    assert clean["views"][0]["psnr"] > 100  # identical up to float round-off
    sc = scenes["a"]
    g = torch.Generator().manual_seed(0)
    sc2 = type(sc)(sc.scene_id, sc.images, sc.c2w, sc.K, sc.split, view_names=sc.view_names)
    noisy_model = rgb_model({"a": sc2}, {"a": 0.0})
    base = noisy_model.render_fn

    def render(sid, c2w, K, hw):
        out = base(sid, c2w, K, hw)
        out.image = out.image + 0.2 * torch.randn(out.image.shape, generator=g)
        return out

    noisy_model.render_fn = render
    r = evaluate_scene(noisy_model, sc2)
    assert r["mean"]["ssim"] < 0.9
    assert 10 < r["mean"]["psnr"] < 30


def test_latent_metrics_and_ae_upper_bound(scenes):
    res = evaluate_model(latent_model(scenes, {"a": 0.0, "b": 0.1, "c": 0.02}), scenes, {"exploit": ["a", "b", "c"]},
                         show_progress=False)
    b = res["scenes"]["b"]["mean"]
    assert b["latent_psnr"] == pytest.approx(10 * math.log10(4 / 0.01), abs=1e-3)  # data_range 2, offset 0.1
    c = res["scenes"]["c"]["mean"]
    assert c["latent_psnr"] == pytest.approx(10 * math.log10(4 / 0.0004), abs=1e-2)
    # the AE reconstruction is the 8x box filter: compute it independently
    sa = scenes["a"]
    x = sa.images[:2]
    box = F.interpolate(F.avg_pool2d(x, 8), scale_factor=8, mode="nearest")
    mse = ((box - x) ** 2).flatten(1).mean(1)
    expected_ae = (-10 * torch.log10(mse)).mean().item()
    a = res["scenes"]["a"]["mean"]
    assert a["ae_psnr"] == pytest.approx(expected_ae, abs=1e-3)
    # with a perfect latent, decoded RGB equals the AE reconstruction; a latent error makes it worse
    assert a["psnr"] == pytest.approx(a["ae_psnr"], abs=1e-2)
    assert b["psnr"] < b["ae_psnr"] - 1
    assert res["scenes"]["a"]["views"][0]["latent_psnr"] > 100
    for k in ("decode_ms", "total_ms", "latent_ssim", "ae_ssim"):
        assert k in a


def test_deterministic_and_json_roundtrip(tmp_path, scenes):
    m = latent_model(scenes, {"a": 0.03, "b": 0.1, "c": 0.02})
    r1 = evaluate_model(m, scenes, {"train": ["a"], "exploit": ["b", "c"]}, show_progress=False)
    r2 = evaluate_model(m, scenes, {"train": ["a"], "exploit": ["b", "c"]}, show_progress=False)
    for k in ("psnr", "ssim", "latent_psnr", "ae_psnr"):
        assert r1["overall"]["mean"][k] == r2["overall"]["mean"][k]
    p = write_metrics_json(r1, tmp_path / "out" / "metrics.json")
    back = json.loads(p.read_text())
    assert back["groups"]["exploit"]["n_scenes"] == 2
    assert back["scenes"]["b"]["group"] == "exploit"
    assert back["protocol"]["averaging"].startswith("per image")
    assert "overall" in format_summary(r1)


def test_errors_name_the_problem(scenes):
    m = rgb_model({"a": scenes["a"]}, {"a": 0.0})
    with pytest.raises(KeyError, match="holds no scene 'b'"):
        evaluate_model(m, scenes, {"x": ["b"]}, show_progress=False)
    with pytest.raises(KeyError, match="no ground truth"):
        evaluate_model(m, {}, {"x": ["a"]}, show_progress=False)
    only_train = scenes["a"].subset([2, 3])
    with pytest.raises(ValueError, match="no 'test' views"):
        evaluate_scene(m, only_train)


def test_subset_result_equals_evaluating_the_subset(scenes):
    from latentscenes.evaluation.evaluate import subset_result

    m = rgb_model(scenes, {"a": 0.01, "b": 0.1, "c": 0.05})
    full = evaluate_model(m, scenes, {"train": ["a"], "exploit": ["b", "c"]}, show_progress=False)
    sub = subset_result(full, ["c", "a"], "x")
    direct = evaluate_model(m, scenes, {"x": ["c", "a"]}, show_progress=False)
    assert sub["overall"]["mean"]["psnr"] == pytest.approx(direct["overall"]["mean"]["psnr"], abs=1e-6)
    assert sub["groups"]["x"]["n_views"] == 4 and set(sub["scenes"]) == {"a", "c"}
    with pytest.raises(KeyError):
        subset_result(full, ["zz"])


def test_chroma_error_sees_colour_that_psnr_barely_sees():
    from latentscenes.metrics import chroma_error_per_image, opponent_chroma, psnr_per_image

    grey = torch.rand(2, 1, 16, 16).expand(2, 3, 16, 16)
    assert opponent_chroma(grey).abs().max().item() < 1e-6
    # a white frame with a small red patch; the "reconstruction" draws the patch in the same-luminance grey
    gt = torch.ones(1, 3, 32, 32)
    gt[:, :, 10:14, 10:14] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]
    rec = gt.clone()
    rec[:, :, 10:14, 10:14] = gt[:, :, 10:14, 10:14].mean(1, keepdim=True)
    assert chroma_error_per_image(gt, gt).item() == 0
    err = chroma_error_per_image(rec, gt).item()
    assert err == pytest.approx((0.8 + abs(0.5 - 0.1)) / 2, rel=1e-5)  # |R-G| and |(R+G)/2-B| of the patch
    assert psnr_per_image(rec, gt).item() > 20  # PSNR of the same colour-blind image stays high
    assert chroma_error_per_image(torch.ones(1, 3, 8, 8), torch.ones(1, 3, 8, 8)).item() == 0  # no object pixels


def test_chroma_metrics_reject_bad_shapes():
    from latentscenes.metrics import chroma_error_per_image, opponent_chroma

    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        opponent_chroma(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="shape mismatch"):
        chroma_error_per_image(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 4, 4))
