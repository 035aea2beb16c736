"""Analytic checks of the functional renderer: rays, sampling, tri-plane lookup, compositing, batching."""

from __future__ import annotations

import math

import pytest
import torch

from latentscenes.config import get_preset
from latentscenes.rendering import (
    RenderConfig,
    TriplaneDecoder,
    generate_rays,
    generate_rays_uv,
    importance_samples,
    measure_render_ms,
    pixel_indices_to_uv,
    render_rays,
    render_views,
    render_views_no_grad,
    sample_pdf,
    sample_triplanes,
    stratified_samples,
    volume_render,
)
from latentscenes.rendering.cameras import look_at_opencv

K_SRN = torch.tensor([[1.0254, 0.0, 0.5], [0.0, 1.0254, 0.5], [0.0, 0.0, 1.0]])


def _camera(eye=(1.3, 0.0, 0.4)):
    return look_at_opencv(torch.tensor(eye))[None]


# ------------------------------------------------------------------------------------------------- rays
@pytest.mark.parametrize("cx,cy", [(0.5, 0.5), (0.3, 0.6)])
def test_centre_pixel_ray_hits_principal_point_direction(cx, cy):
    c2w = _camera()
    K = torch.tensor([[1.1, 0.0, cx], [0.0, 0.9, cy], [0.0, 0.0, 1.0]])[None]
    # the principal point (cx, cy) in normalised coordinates is the optical axis: the camera's +z column
    o, d = generate_rays_uv(c2w, K, torch.tensor([[cx, cy]]))
    assert torch.allclose(d[0, 0], c2w[0, :3, 2], atol=1e-6)
    assert torch.allclose(o[0, 0], c2w[0, :3, 3])
    # with the principal point at the image centre, the centre pixel of an odd-sized image is that ray
    if (cx, cy) == (0.5, 0.5):
        o, d = generate_rays(c2w, K, 17, 17)
        assert torch.allclose(d[0, 8 * 17 + 8], c2w[0, :3, 2], atol=1e-6)
        assert torch.allclose(d.norm(dim=-1), torch.ones(1, 17 * 17), atol=1e-6)


def test_rays_follow_opencv_axes_and_resolution_invariance():
    c2w = torch.eye(4)[None]
    K = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])[None]
    _, d = generate_rays(c2w, K, 2, 2)
    # pixel (row 0, col 1) is up-right of centre: x > 0 (right), y < 0 (OpenCV y points down)
    assert d[0, 1, 0] > 0 and d[0, 1, 1] < 0
    # latent pixel (i, j) at 8x lower resolution passes through the centre of RGB block (8i..8i+7, 8j..8j+7)
    c2w = _camera()
    _, d_lat = generate_rays(c2w, K_SRN[None], 2, 2)
    uv = pixel_indices_to_uv(torch.tensor([3.5]), torch.tensor([11.5]), 16, 16)  # block rows 0-7, cols 8-15
    _, d_blk = generate_rays_uv(c2w, K_SRN[None], uv)
    assert torch.allclose(d_lat[0, 1], d_blk[0, 0], atol=1e-6)


# ------------------------------------------------------------------------------------------------- sampling
def test_stratified_samples_deterministic_and_bounded():
    t = stratified_samples(0.5, 2.1, (2, 3), 8, deterministic=True)
    assert torch.allclose(t[0, 0], torch.linspace(0.5, 2.1, 8))
    g = torch.Generator().manual_seed(0)
    t = stratified_samples(0.5, 2.1, (4, 100), 8, generator=g)
    assert t.min() >= 0.5 and t.max() <= 2.1
    assert (t[..., 1:] >= t[..., :-1]).all()


def test_sample_pdf_concentrates_on_heavy_bin():
    edges = torch.linspace(0.0, 1.0, 11)[None]
    w = torch.zeros(1, 10)
    w[0, 3] = 1.0
    t = sample_pdf(edges, w, 1000, deterministic=True)
    inside = ((t >= 0.3) & (t <= 0.4)).float().mean()
    assert inside > 0.99
    # uniform weights: deterministic samples are the quantiles of U[0, 1]
    t = sample_pdf(edges, torch.ones(1, 10), 4, deterministic=True)
    assert torch.allclose(t, torch.tensor([[0.125, 0.375, 0.625, 0.875]]), atol=1e-5)


def test_importance_samples_in_range_without_grad():
    t = torch.linspace(0.5, 2.1, 9).expand(3, 9)
    w = torch.rand(3, 8, requires_grad=True)
    f = importance_samples(t, w, 16, generator=torch.Generator().manual_seed(1))
    assert f.shape == (3, 16) and not f.requires_grad
    assert f.min() >= 0.5 and f.max() <= 2.1


# ------------------------------------------------------------------------------------------------- tri-planes
def test_triplane_sampling_matches_hand_bilinear_and_sums_planes():
    T, Fd = 4, 2
    planes = torch.zeros(1, 3, Fd, T, T)
    # constant planes 1, 10, 100 -> every inside point gets 111 on every feature
    for k, v in enumerate((1.0, 10.0, 100.0)):
        planes[0, k] = v
    pts = torch.tensor([[[0.1, -0.2, 0.3], [0.0, 0.0, 0.0]]])
    assert torch.allclose(sample_triplanes(planes, pts), torch.full((1, 2, Fd), 111.0))
    # outside the box on every plane -> exactly zero
    assert torch.equal(sample_triplanes(planes, torch.tensor([[[3.0, 3.0, 3.0]]])), torch.zeros(1, 1, Fd))
    # XY plane: texel centres at (k + 0.5)/T of [-1, 1]; column <- x, row <- y
    planes = torch.zeros(1, 3, 1, T, T)
    planes[0, 0, 0, 1, 2] = 1.0  # row 1 (y centre -0.25), col 2 (x centre 0.25)
    val = sample_triplanes(planes, torch.tensor([[[0.25, -0.25, 0.0], [0.5, -0.25, 0.0]]]))
    assert torch.allclose(val[0, :, 0], torch.tensor([1.0, 0.5]))


def test_plane_axes_yz_vs_eg3d_legacy():
    T = 4
    planes = torch.zeros(1, 3, 1, T, T)
    planes[0, 2, 0, 1, 2] = 1.0  # third plane
    p = torch.tensor([[[0.9, 0.25, -0.25]]])  # YZ plane: col <- y = 0.25, row <- z = -0.25
    assert sample_triplanes(planes, p, plane_axes="xy_xz_yz").item() == pytest.approx(1.0)
    # legacy third plane is ZX: col <- z, row <- x
    q = torch.tensor([[[-0.25, 0.9, 0.25]]])
    assert sample_triplanes(planes, q, plane_axes="eg3d_legacy").item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        sample_triplanes(planes, p, plane_axes="zz")


def test_box_size_scales_coordinates():
    planes = torch.zeros(1, 3, 1, 4, 4)
    planes[0, 0, 0, 1, 2] = 1.0
    # a box of size 4 covers [-2, 2]: the texel centred at (0.25, -0.25) in [-1,1] is now at (0.5, -0.5)
    assert sample_triplanes(planes, torch.tensor([[[0.5, -0.5, 0.0]]]), box_size=4.0).item() == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------- compositing
def test_homogeneous_medium_opacity_is_beer_lambert():
    sigma = 0.7
    raw = math.log(math.expm1(sigma)) + 1.0  # softplus(raw - 1) = sigma
    t = torch.linspace(0.5, 2.1, 33).expand(4, 33)
    out = volume_render(torch.rand(4, 33, 3), torch.full((4, 33, 1), raw), t, torch.ones(3))
    expected = 1 - math.exp(-sigma * (2.1 - 0.5))
    assert torch.allclose(out["opacity"], torch.full((4, 1), expected), atol=1e-6)
    # uniform colour c: C = c * opacity + bg * (1 - opacity)
    c = torch.tensor([0.2, 0.4, 0.6])
    bg = torch.tensor([1.0, 0.0, 0.5])
    out = volume_render(c.expand(4, 33, 3), torch.full((4, 33, 1), raw), t, bg)
    assert torch.allclose(out["colour"], c * expected + bg * (1 - expected), atol=1e-6)
    # expected depth of a homogeneous slab (midpoint quadrature of the exponential density), within bounds
    assert (out["depth"] >= 0.5).all() and (out["depth"] <= 2.1).all()


def test_empty_space_returns_background_exactly():
    t = torch.linspace(0.5, 2.1, 16).expand(2, 5, 16)
    raw = torch.full((2, 5, 16, 1), -1e4)  # softplus(-1e4 - 1) == 0 exactly in float32
    bg = torch.tensor([0.59, 0.568, 0.5027, 0.4462])
    out = volume_render(torch.rand(2, 5, 16, 4), raw, t, bg)
    assert torch.equal(out["colour"], bg.expand(2, 5, 4))
    assert torch.equal(out["opacity"], torch.zeros(2, 5, 1))
    assert torch.equal(out["depth"], torch.full((2, 5, 1), 2.1))


class _ConstDecoder(torch.nn.Module):
    """Decoder with a constant density and colour (ignores features)."""

    def __init__(self, raw: float, colour: float, C: int = 3):
        super().__init__()
        self.raw, self.colour, self.out_channels = raw, colour, C

    def forward(self, f):
        return torch.full((*f.shape[:-1], 1), self.raw), torch.full((*f.shape[:-1], self.out_channels), self.colour)


def test_full_renderer_homogeneous_and_empty():
    cfg = RenderConfig(near=0.5, far=2.1, n_coarse=16, n_importance=16, deterministic=True)
    planes = torch.zeros(2, 3, 4, 8, 8)
    c2w = torch.cat([_camera(), _camera((0.0, -1.3, 0.2))])
    K = K_SRN.expand(2, 3, 3)
    sigma = 1.3
    dec = _ConstDecoder(math.log(math.expm1(sigma)) + 1.0, 0.25)
    out = render_views(planes, dec, c2w, K, 4, 4, cfg, torch.ones(3))
    expected = 1 - math.exp(-sigma * 1.6)
    assert torch.allclose(out["opacity"], torch.full_like(out["opacity"], expected), atol=1e-5)
    assert torch.allclose(out["image"], torch.full_like(out["image"], 2 * (0.25 * expected + 1 - expected) - 1), atol=1e-5)
    bg = torch.tensor([0.0, 0.5, 1.0])
    out = render_views(planes, _ConstDecoder(-1e4, 0.3), c2w, K, 4, 4, cfg, bg)
    assert torch.equal(out["image"], (2 * bg - 1)[None, :, None, None].expand(2, 3, 4, 4))


def test_chunking_does_not_change_results_and_gradients_flow():
    torch.manual_seed(0)
    planes = torch.randn(2, 3, 6, 8, 8, requires_grad=True)
    dec = TriplaneDecoder(6, 4, hidden=16)
    c2w = torch.cat([_camera(), _camera((0.0, -1.3, 0.2))])
    K = K_SRN.expand(2, 3, 3)
    cfg = RenderConfig(n_coarse=8, n_importance=8, deterministic=True, chunk_samples=10**9)
    full = render_views(planes, dec, c2w, K, 6, 6, cfg, torch.full((4,), 0.5))
    small = render_views(planes, dec, c2w, K, 6, 6, RenderConfig(**{**cfg.__dict__, "chunk_samples": 100}), torch.full((4,), 0.5))
    for k in full:
        assert torch.allclose(full[k], small[k], atol=1e-5)
    assert full["image"].shape == (2, 4, 6, 6) and full["depth"].shape == (2, 1, 6, 6)
    full["image"][1].sum().backward()
    # view 1 uses only planes[1]: no gradient leaks across the batch
    assert planes.grad[0].abs().max() == 0 and planes.grad[1].abs().max() > 0
    ng = render_views_no_grad(planes, dec, c2w, K, 6, 6, cfg, torch.full((4,), 0.5))
    assert not ng["image"].requires_grad and torch.allclose(ng["image"], full["image"].detach(), atol=1e-6)


def test_render_rays_validates_shapes_and_measure_speed():
    dec = TriplaneDecoder(4, 3, hidden=8)
    with pytest.raises(ValueError):
        render_rays(torch.zeros(1, 3, 4, 8, 8), dec, torch.zeros(2, 5, 3), torch.zeros(2, 5, 3), RenderConfig(), torch.ones(3))
    ms = measure_render_ms(torch.zeros(1, 3, 4, 8, 8), dec, _camera(), K_SRN[None], get_preset(RenderConfig, "test"), 16, 16, repeats=1)
    assert ms > 0


def test_render_presets():
    assert get_preset(RenderConfig, "tiny-cpu").samples_per_ray == 48
    assert get_preset(RenderConfig, "paper").n_coarse == 48 and get_preset(RenderConfig, "paper").n_importance == 48


def test_decoder_output_ranges():
    dec = TriplaneDecoder(5, 4)
    raw, col = dec(torch.randn(10, 5) * 100)
    assert raw.shape == (10, 1) and col.shape == (10, 4)
    assert col.min() >= -0.001 and col.max() <= 1.001
    assert sum(p.numel() for p in TriplaneDecoder(32, 4).parameters()) == 2437  # 32*64 + 64 + 64*5 + 5, the authors' MLP


def test_supersample_is_the_box_filtered_finer_render_and_jitter_only_moves_training_rays():
    torch.manual_seed(0)
    planes = torch.randn(2, 3, 6, 8, 8)
    dec = TriplaneDecoder(6, 4, hidden=16)
    c2w = torch.cat([_camera(), _camera((0.0, -1.3, 0.2))])
    K = K_SRN.expand(2, 3, 3)
    bg = torch.full((4,), 0.5)
    cfg = RenderConfig(n_coarse=8, n_importance=8, deterministic=True)
    fine = render_views(planes, dec, c2w, K, 8, 8, cfg, bg)
    ss = render_views(planes, dec, c2w, K, 4, 4, RenderConfig(**{**cfg.__dict__, "supersample": 2}), bg)
    for k in ("image", "depth", "opacity"):
        assert ss[k].shape[-2:] == (4, 4)
        assert torch.allclose(ss[k], torch.nn.functional.avg_pool2d(fine[k], 2), atol=1e-6)
    centre = render_views(planes, dec, c2w, K, 4, 4, cfg, bg)["image"]
    assert not torch.allclose(centre, ss["image"], atol=1e-3)  # the footprint differs from its centre ray
    # jitter is ignored by deterministic (evaluation) renders and moves the rays of training renders
    jit = RenderConfig(**{**cfg.__dict__, "pixel_jitter": True})
    assert torch.equal(render_views(planes, dec, c2w, K, 4, 4, jit, bg)["image"], centre)
    noisy = RenderConfig(**{**jit.__dict__, "deterministic": False, "n_importance": 0, "n_coarse": 64})
    a = render_views(planes, dec, c2w, K, 4, 4, noisy, bg, torch.Generator().manual_seed(1))["image"]
    b = render_views(planes, dec, c2w, K, 4, 4, RenderConfig(**{**noisy.__dict__, "pixel_jitter": False}), bg,
                     torch.Generator().manual_seed(1))["image"]
    assert not torch.allclose(a, b, atol=1e-3)
    with pytest.raises(ValueError, match="supersample"):
        render_views(planes, dec, c2w, K, 4, 4, RenderConfig(**{**cfg.__dict__, "supersample": 0}), bg)


def test_crop_intrinsics_gives_the_rays_of_the_window():
    from latentscenes.rendering.rays import crop_intrinsics

    torch.manual_seed(0)
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[:, :3, 3] = torch.tensor([0.1, -0.2, -2.0])
    K = torch.tensor([[1.1, 0.05, 0.52], [0.0, 1.3, 0.47], [0.0, 0.0, 1.0]]).repeat(2, 1, 1)  # skew, off-centre
    H, W, top, left, h, w = 12, 16, 3, 5, 6, 7
    o_full, d_full = generate_rays(c2w, K, H, W)
    o_win, d_win = generate_rays(c2w, crop_intrinsics(K, top, left, h, w, (H, W)), h, w)
    want = d_full.reshape(2, H, W, 3)[:, top:top + h, left:left + w].reshape(2, h * w, 3)
    assert torch.allclose(d_win, want, atol=1e-6)
    assert torch.equal(o_win, o_full[:, : h * w])
    assert torch.equal(crop_intrinsics(K, 0, 0, H, W, (H, W)), K)  # the whole image is the camera itself
    for bad in ((0, 10, 6, 7), (-1, 0, 2, 2), (0, 0, 0, 3)):
        with pytest.raises(ValueError, match="not inside"):
            crop_intrinsics(K, *bad, (H, W))
    with pytest.raises(ValueError, match=r"\[B,3,3\]"):
        crop_intrinsics(K[0], 0, 0, 2, 2, (H, W))
