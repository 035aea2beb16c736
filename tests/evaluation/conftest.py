"""Small fakes for the evaluation tests: scenes with known images and models whose errors are known exactly."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from latentscenes.data.types import SceneViews
from latentscenes.evaluation.cameras import orbit_cameras
from latentscenes.evaluation.model import CallableSceneModel, RenderOutput


def make_scene(scene_id: str, n_views: int = 6, n_test: int = 2, size: int = 32, seed: int = 0) -> SceneViews:
    """A scene of smooth random images (values in [0.2, 0.8], so offsets of up to 0.2 never clamp)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n_views, 3, size // 8, size // 8, generator=g)
    images = 0.2 + 0.6 * F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    c2w = orbit_cameras(n_views, radius=1.3, elevation=0.4)
    K = torch.tensor([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]]).repeat(n_views, 1, 1)
    split = ["test"] * n_test + ["train"] * (n_views - n_test)
    return SceneViews(scene_id, images, c2w, K, split, view_names=[f"v{i:02d}" for i in range(n_views)])


class PoolAE:
    """A deterministic fake autoencoder: 8x average pooling to 4 channels (RGB and its mean), x50 scale.

    decode(encode_mean(x)) is the 8x box-filtered image upsampled with nearest neighbours.
    """

    downsample = 8
    scale = 0.02

    def encode_mean(self, x):
        p = F.avg_pool2d(x, 8)
        return 50.0 * torch.cat([p, p.mean(1, keepdim=True)], dim=1)

    def decode(self, z):
        return F.interpolate(z[:, :3] / 50.0, scale_factor=8, mode="nearest")

    def normalize(self, z):
        return torch.tanh(self.scale * z)

    def denormalize(self, zbar):
        return torch.atanh(zbar.clamp(-1 + 1e-6, 1 - 1e-6)) / self.scale


def _match_view(scene: SceneViews, c2w: torch.Tensor) -> int | None:
    d = (scene.c2w - c2w[0]).abs().flatten(1).max(1).values
    i = int(d.argmin())
    return i if float(d[i]) < 1e-5 else None


def rgb_model(scenes: dict[str, SceneViews], offsets: dict[str, float]) -> CallableSceneModel:
    """An RGB model that reproduces each known view plus a constant offset (in [0,1] units) per scene.

    Unknown cameras render a mid-grey image whose brightness follows the azimuth (so turntables change).
    """

    def render(sid, c2w, K, hw):
        sc = scenes[sid]
        i = _match_view(sc, c2w)
        if i is None:
            az = math.atan2(float(c2w[0, 1, 3]), float(c2w[0, 0, 3]))
            img = torch.full((1, 3, *hw), 0.5 + 0.4 * math.sin(az))
        else:
            img = sc.images[i : i + 1] + offsets[sid]
        depth = torch.full((1, 1, *hw), 1.3)
        return RenderOutput(image=img * 2 - 1, depth=depth)

    return CallableSceneModel("rgb", "fake RGB", list(scenes), render)


def latent_model(scenes: dict[str, SceneViews], latent_offsets: dict[str, float]) -> CallableSceneModel:
    """A latent model whose render is normalize(encode_mean(gt)) + a per-scene offset (normalised units)."""
    ae = PoolAE()

    def render(sid, c2w, K, hw):
        sc = scenes[sid]
        i = _match_view(sc, c2w)
        if i is None:  # unknown camera: a flat latent whose value follows the azimuth
            az = math.atan2(float(c2w[0, 1, 3]), float(c2w[0, 0, 3]))
            zbar = torch.full((1, 4, *hw), 0.4 * math.sin(az))
        else:
            zbar = ae.normalize(ae.encode_mean(sc.images[i : i + 1] * 2 - 1)) + latent_offsets[sid]
        return RenderOutput(image=zbar, depth=torch.full((1, 1, *hw), 1.0))

    return CallableSceneModel("latent", "fake 3Da-AE", list(scenes), render, autoencoder=ae)


@pytest.fixture
def scenes():
    return {"a": make_scene("a", seed=1), "b": make_scene("b", seed=2), "c": make_scene("c", seed=3)}
