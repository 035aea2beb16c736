"""Decoding latent scenes rendered at sub-latent-pixel offsets (``render.offset_ensemble``, render_decoded)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import PoolAE, make_scene
from latentscenes.evaluation.evaluate import evaluate_scene
from latentscenes.evaluation.model import (
    CallableSceneModel,
    CompositeSceneModel,
    RenderOutput,
    offset_ensemble_for,
    render_decoded,
    set_offset_ensemble,
)


def shifting_model(scene, grid: int, calls: list, bias: float = 0.0) -> CallableSceneModel:
    """A latent model that renders what a perfect field would: the encoded view, moved as its camera says.

    A camera whose principal point is moved by (-ox / W, -oy / H) sees the view moved ox px left, oy px up.
    ``bias`` is added to every rendered latent (an imperfect field).
    """
    ae = PoolAE()
    H, W = scene.resolution

    def render(sid, c2w, K, hw):
        calls.append(c2w.shape[0])
        i = int(((scene.c2w - c2w[0]).abs().flatten(1).max(1).values).argmin())
        x = scene.images[i : i + 1] * 2 - 1
        out = []
        for v in range(c2w.shape[0]):
            ox = round(float(scene.K[i, 0, 2] - K[v, 0, 2]) * W)
            oy = round(float(scene.K[i, 1, 2] - K[v, 1, 2]) * H)
            xs = F.pad(x, (0, ox, 0, oy), mode="replicate")[..., oy : oy + H, ox : ox + W]
            out.append(ae.normalize(ae.encode_mean(xs)) + bias)
        z = torch.cat(out)
        return RenderOutput(image=z, depth=torch.ones(z.shape[0], 1, *hw))

    return CallableSceneModel("latent", "fake", [scene.scene_id], render, autoencoder=ae, offset_ensemble=grid)


def _psnr(a, b):
    return float(-10 * torch.log10(((a.clamp(-1, 1) - b) / 2).pow(2).mean()))


def test_offset_ensemble_renders_once_per_view_and_recovers_detail_one_decode_cannot():
    scene = make_scene("s", n_views=3, n_test=1, size=32, seed=4)
    scene.images = scene.images.clone()
    scene.images[:, :, 10:20, 13:17] = 0.9  # an edge inside a latent pixel: one decode smears it over 8x8 blocks
    gt = scene.images[:1] * 2 - 1
    c2w, K = scene.c2w[:1], scene.K[:1]
    calls1, calls2 = [], []
    one = render_decoded(shifting_model(scene, 1, calls1), "s", c2w, K, (4, 4))
    two = render_decoded(shifting_model(scene, 2, calls2), "s", c2w, K, (4, 4))
    assert calls1 == [1] and calls2 == [4]  # the g x g offsets go through the renderer as one batch
    assert one.rgb.shape == two.rgb.shape == (1, 3, 32, 32)
    ae = PoolAE()
    assert torch.allclose(one.rgb, ae.decode(ae.denormalize(one.render.image)), atol=1e-5)
    assert torch.allclose(two.render.image, one.render.image)  # copy 0: the view's own camera (latent metrics)
    assert _psnr(two.rgb, gt) > _psnr(one.rgb, gt) + 1.0
    assert one.render_s >= 0 and two.decode_s > 0


def test_evaluation_uses_the_ensemble_and_keeps_latent_metrics_of_the_view_itself():
    scene = make_scene("s", n_views=4, n_test=2, size=32, seed=5)
    r1 = evaluate_scene(shifting_model(scene, 1, [], bias=0.02), scene)["mean"]
    r2 = evaluate_scene(shifting_model(scene, 2, [], bias=0.02), scene)["mean"]
    assert r2["psnr"] > r1["psnr"]
    assert r2["latent_psnr"] == pytest.approx(r1["latent_psnr"]) and r2["ae_psnr"] == pytest.approx(r1["ae_psnr"])


def test_the_setting_follows_the_part_holding_a_scene_and_can_be_overridden():
    a, b = make_scene("a", seed=1), make_scene("b", seed=2)
    ma, mb = shifting_model(a, 2, []), shifting_model(b, 1, [])
    both = CompositeSceneModel("both", [ma, mb])
    assert offset_ensemble_for(both, "a") == 2 and offset_ensemble_for(both, "b") == 1
    set_offset_ensemble(both, 4)
    assert offset_ensemble_for(both, "a") == offset_ensemble_for(both, "b") == 4
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        set_offset_ensemble(both, 3)
    rgb = CallableSceneModel("rgb", "rgb", ["a"], lambda *args: None)
    assert offset_ensemble_for(rgb, "a") == 1
    with pytest.raises(ValueError, match="not a latent model"):
        render_decoded(rgb, "a", a.c2w[:1], a.K[:1], (4, 4))
