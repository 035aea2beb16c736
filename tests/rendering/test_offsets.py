"""Views at sub-latent-pixel offsets (rendering/offsets.py): the camera convention and the merge."""

from __future__ import annotations

import pytest
import torch

from latentscenes.rendering import RenderConfig, TriplaneDecoder, generate_rays, render_views_no_grad
from latentscenes.rendering.cameras import look_at_opencv
from latentscenes.rendering.offsets import merge_offset_images, offset_intrinsics, pixel_offsets

K0 = torch.tensor([[1.2, 0.0, 0.5], [0.0, 1.1, 0.45], [0.0, 0.0, 1.0]])


def test_pixel_offsets_row_major_copy_zero_first_and_bad_grids():
    assert pixel_offsets(1, 8) == [(0, 0)]
    assert pixel_offsets(2, 8) == [(0, 0), (4, 0), (0, 4), (4, 4)]
    assert len(pixel_offsets(4, 8)) == 16 and pixel_offsets(4, 8)[5] == (2, 2)
    for bad in (0, 3, 16):
        with pytest.raises(ValueError, match="divide"):
            pixel_offsets(bad, 8)


def test_offset_cameras_see_the_image_moved_left_and_up():
    c2w = look_at_opencv(torch.tensor([1.3, 0.2, 0.4]))[None]
    Ks = offset_intrinsics(K0[None], 2, 8, (16, 16))
    assert Ks.shape == (4, 3, 3) and torch.equal(Ks[0], K0)
    _, d0 = generate_rays(c2w, K0[None], 16, 16)
    for c, (ox, oy) in enumerate(pixel_offsets(2, 8)):
        _, d = generate_rays(c2w, Ks[c : c + 1], 16, 16)
        # pixel (i, j) of copy c looks along the ray of the view's pixel (i + oy, j + ox)
        assert torch.allclose(d.reshape(16, 16, 3)[: 16 - oy, : 16 - ox], d0.reshape(16, 16, 3)[oy:, ox:], atol=1e-6)
    with pytest.raises(ValueError, match=r"\[V,3,3\]"):
        offset_intrinsics(K0, 2, 8, (16, 16))


def test_shifted_training_views_use_the_same_cameras():
    from latentscenes.training.data import ViewTable, shift_views

    K = K0.repeat(3, 1, 1)
    table = ViewTable.from_images(["a"], torch.rand(3, 3, 16, 16), torch.eye(4).repeat(3, 1, 1), K, torch.zeros(3, dtype=torch.long))
    assert torch.equal(shift_views(table, 2, 8).K, offset_intrinsics(K, 2, 8, (16, 16)))


def test_merge_of_exactly_shifted_images_is_the_image_and_counts_the_covering_copies():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    copies = []
    for ox, oy in pixel_offsets(2, 8):
        c = torch.rand(2, 3, 16, 16)  # the border a copy does not cover holds garbage: it must not leak in
        c[:, :, : 16 - oy, : 16 - ox] = x[:, :, oy:, ox:]
        copies.append(c)
    assert torch.allclose(merge_offset_images(torch.cat(copies), 2, 8), x, atol=1e-6)
    # copy c filled with the value c: the interior averages all four, the border only the copies covering it
    flat = torch.cat([torch.full((1, 1, 16, 16), float(c)) for c in range(4)])
    m = merge_offset_images(flat, 2, 8)[0, 0]
    assert m[0, 0] == 0 and m[0, 8] == 0.5 and m[8, 0] == 1.0 and m[8, 8] == 1.5
    assert torch.equal(merge_offset_images(x, 1, 8), x)
    with pytest.raises(ValueError, match="offset grid"):
        merge_offset_images(torch.cat(copies)[:3], 2, 8)
    with pytest.raises(ValueError, match="larger"):
        merge_offset_images(torch.rand(4, 3, 4, 4), 2, 8)


def test_a_tri_plane_scene_rendered_at_the_offsets_and_merged_is_the_direct_render():
    torch.manual_seed(1)
    cfg = RenderConfig(near=0.5, far=2.1, n_coarse=8, n_importance=8, deterministic=True)
    planes = torch.randn(1, 3, 8, 8, 8) * 0.5
    mlp = TriplaneDecoder(8, 3, hidden=16)
    c2w = look_at_opencv(torch.tensor([1.3, 0.0, 0.4]))[None]
    bg = torch.ones(3)
    direct = render_views_no_grad(planes, mlp, c2w, K0[None], 16, 16, cfg, bg)["image"]
    shifted = render_views_no_grad(planes.expand(4, -1, -1, -1, -1), mlp, c2w.repeat(4, 1, 1),
                                   offset_intrinsics(K0[None], 2, 8, (16, 16)), 16, 16, cfg, bg)["image"]
    assert not torch.allclose(shifted[1], direct[0], atol=1e-3)  # the copies really are moved
    assert torch.allclose(merge_offset_images(shifted, 2, 8), direct, atol=1e-5)
