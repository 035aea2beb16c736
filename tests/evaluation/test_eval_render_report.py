"""Cameras, turntables, image grids and the Markdown report."""

from __future__ import annotations

import json
import math
import re
import shutil

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from conftest import latent_model, rgb_model
from latentscenes.evaluation.cameras import (
    camera_defaults_from_manifest,
    camera_defaults_from_views,
    look_at_opencv,
    orbit_cameras,
)
from latentscenes.evaluation.images import depth_image, image_grid, latent_channels_image, save_mp4
from latentscenes.evaluation.render import TurntableConfig, render_turntable, turntable_formats
from latentscenes.evaluation.report import MethodRow, ReportContent, comparison_grid, write_report


def test_orbit_cameras_look_at_origin_opencv_z_up():
    c2w = orbit_cameras(8, radius=2.5, elevation=math.radians(30))
    R, t = c2w[:, :3, :3], c2w[:, :3, 3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(8, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(8), atol=1e-5)  # right-handed
    assert torch.allclose(t.norm(dim=-1), torch.full((8,), 2.5), atol=1e-5)
    assert torch.allclose(t[:, 2] / 2.5, torch.full((8,), 0.5), atol=1e-5)  # sin 30 deg
    fwd = R[:, :, 2]
    assert torch.allclose(fwd, -t / t.norm(dim=-1, keepdim=True), atol=1e-5)  # +z looks at the origin
    assert (R[:, 2, 1] < 0).all()  # camera y (down) points against world +z: the image is upright
    assert torch.allclose(R[:, 2, 0], torch.zeros(8), atol=1e-6)  # camera x (right) is horizontal
    # frame 0 sits on the +x axis and frames advance counter-clockwise (towards +y)
    assert t[0, 0] > 0 and abs(float(t[0, 1])) < 1e-5 and t[1, 1] > 0
    # a world point to the camera's right projects to u > 0.5
    p = torch.tensor([0.0, 1.0, 0.0])  # camera 0 at +x looking towards -x: +y is on its right? check sign
    pc = R[0].T @ (p - t[0])
    right_is_plus_y = bool(pc[0] < 0)
    assert not right_is_plus_y  # facing -x with z up, the right-hand side is -y
    with pytest.raises(ValueError):
        orbit_cameras(4, 1.0, math.pi / 2)
    with pytest.raises(ValueError):
        look_at_opencv(torch.zeros(1, 3))


def test_camera_defaults_from_views_and_manifest(tmp_path, scenes):
    d = camera_defaults_from_views(scenes.values())
    assert d.radius == pytest.approx(1.3, abs=1e-5)
    assert d.elevation == pytest.approx(0.4, abs=1e-5)
    assert d.K.shape == (3, 3)
    assert camera_defaults_from_manifest(tmp_path, fallback=d) is d  # no manifest
    (tmp_path / "manifest.json").write_text(json.dumps({"render_defaults": {"camera_distance": 2.4, "elevation_deg": 15}}))
    m = camera_defaults_from_manifest(tmp_path, fallback=d)
    assert m.radius == 2.4 and m.elevation == pytest.approx(math.radians(15))
    assert torch.equal(m.K, d.K) and "manifest.json" in m.source
    # the FlightGear builder's manifest: camera distance + elevation band; the object radius is not the distance
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"render": {"near": 1.3, "far": 3.3}, "camera": {"distance": 2.3, "radius": 0.9, "elevation_deg": [-15, 60], "fov_deg": 50}}))
    fg = camera_defaults_from_manifest(tmp_path, fallback=None)
    assert fg.radius == 2.3
    assert math.degrees(fg.elevation) == pytest.approx(17.67, abs=0.05)
    assert float(fg.K[0, 0]) == pytest.approx(0.5 / math.tan(math.radians(25)), abs=1e-6)
    (tmp_path / "manifest.json").write_text(json.dumps({"render": {"near": 1.3, "far": 3.3}}))
    assert camera_defaults_from_manifest(tmp_path, fallback=d) is d  # records no camera distance
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(ValueError, match="manifest.json"):
        camera_defaults_from_manifest(tmp_path, fallback=d)


def test_latent_and_depth_images():
    lat = torch.stack([torch.full((4, 4), -1.0), torch.full((4, 4), 1.0), torch.zeros(4, 4), torch.full((4, 4), 3.0)])
    img = latent_channels_image(lat, size=(32, 32), gap=2)
    assert img.shape == (32, 4 * 32 + 3 * 2, 3) and img.dtype == np.uint8
    assert img[0, 0, 0] == 0 and img[0, 34, 0] == 255 and img[0, 68, 0] in (127, 128) and img[0, 102, 0] == 255
    # 16 channels (a grown autoencoder): a 4 x 4 grid of smaller tiles at the same height, row-major
    lat16 = torch.full((16, 4, 4), -1.0)
    lat16[5] = 1.0  # row 1, column 1
    g16 = latent_channels_image(lat16, size=(32, 32), gap=2)
    tile = (32 - 3 * 2) // 4
    assert g16.shape == (32, 4 * tile + 3 * 2, 3)
    y, x = tile + 2 + 1, tile + 2 + 1
    assert g16[y, x, 0] == 255 and g16[1, 1, 0] == 0 and g16[y, 1, 0] == 0 and g16[1, x, 0] == 0
    d = torch.tensor([[0.5, 2.1], [float("inf"), 1.3]])
    di = depth_image(d, 0.5, 2.1, size=(4, 4))
    assert di.shape == (4, 4, 3)
    assert not np.array_equal(di[0, 0], di[0, 3])  # near and far differ
    assert np.array_equal(di[2, 0], di[0, 3])  # inf shown as far
    with pytest.raises(ValueError):
        image_grid([[img], [img, img]])


@pytest.mark.parametrize("kind", ["rgb", "latent"])
def test_turntable_files(tmp_path, scenes, kind):
    model = rgb_model(scenes, {k: 0.0 for k in scenes}) if kind == "rgb" else latent_model(scenes, {k: 0.0 for k in scenes})
    cam = camera_defaults_from_views(scenes.values())
    out = render_turntable(model, "a", cam, tmp_path / "tt", image_size=(32, 32),
                           cfg=TurntableConfig(n_frames=6, n_views=3, fps=5))
    frames = iio.imread(out["turntable"], index=None)
    assert frames.shape[0] == 6 and frames.shape[1:3] == (32, 32)
    if kind == "rgb":  # the fake's brightness follows the azimuth: frames must differ
        assert len({int(f.mean()) for f in frames}) > 1
    panel = iio.imread(out["panel"], index=None)
    assert panel.shape[0] == 6 and panel.shape[2] > 32  # RGB + depth (+ latent channels)
    if kind == "latent":
        assert panel.shape[2] >= 32 + 4 + 32 + 4 + 4 * 32
    assert len(out["views"]) == 3 and all(p.endswith(".png") for p in out["views"])
    assert (tmp_path / "tt" / "view_2_depth.png").is_file()
    assert (tmp_path / "tt" / "view_2_latent.png").is_file() == (kind == "latent")
    assert out["radius"] == pytest.approx(1.3, abs=1e-4)


@pytest.mark.parametrize("kind", ["rgb", "latent"])
def test_turntable_mp4_next_to_gif(tmp_path, scenes, kind):
    """Issue 14, deliverable 4: an MP4 (H.264, imageio-ffmpeg) with the GIF's frames, readable back by imageio."""
    model = rgb_model(scenes, {k: 0.0 for k in scenes}) if kind == "rgb" else latent_model(scenes, {k: 0.0 for k in scenes})
    cam = camera_defaults_from_views(scenes.values())
    out = render_turntable(model, "a", cam, tmp_path / "tt", image_size=(32, 32),
                           cfg=TurntableConfig(n_frames=7, n_views=1, fps=5, formats=("gif", "mp4")))
    assert set(out["animations"]) == {"gif", "mp4"} and out["turntable"].endswith("turntable.gif")
    for name in ("turntable", "panel"):
        gif = iio.imread(out["animations"]["gif"][name], index=None)
        mp4 = iio.imread(out["animations"]["mp4"][name], index=None)
        assert mp4.shape == gif.shape and mp4.shape[0] == 7, (mp4.shape, gif.shape)
        # the same frames, up to H.264's loss (the rgb fake's frames differ by up to ~100 levels from one another)
        err = np.abs(mp4.astype(float) - gif.astype(float)).mean(axis=(1, 2, 3))
        assert err.max() < 4.0, err
    assert iio.immeta(out["animations"]["mp4"]["turntable"])["fps"] == pytest.approx(5.0)
    only = render_turntable(model, "a", cam, tmp_path / "mp4", image_size=(32, 32),
                            cfg=TurntableConfig(n_frames=3, n_views=0, formats=("mp4",)))
    assert only["turntable"].endswith("turntable.mp4") and set(only["animations"]) == {"mp4"}
    assert sorted(p.name for p in (tmp_path / "mp4").iterdir()) == ["turntable.mp4", "turntable_panel.mp4"]


def test_mp4_pads_odd_sizes_with_white_and_writes_atomically(tmp_path):
    rng = np.random.default_rng(0)
    frames = [np.full((33, 21, 3), v, np.uint8) for v in rng.integers(0, 200, size=5)]
    path = save_mp4(frames, tmp_path / "odd.mp4", fps=4)
    back = iio.imread(path, index=None)
    assert back.shape == (5, 34, 22, 3)
    assert back[:, :33, :21].astype(float).mean(axis=(1, 2, 3)) == pytest.approx([float(f[0, 0, 0]) for f in frames], abs=3)
    assert back[:, 33:, :].min() > 240 and back[:, :, 21:].min() > 240  # the padding is white
    assert [p.name for p in tmp_path.iterdir()] == ["odd.mp4"]  # no temporary file left
    with pytest.raises(ValueError, match="different sizes"):
        save_mp4([frames[0], frames[0][:-1]], tmp_path / "bad.mp4")


def test_turntable_formats():
    assert turntable_formats("gif") == ("gif",) and turntable_formats("MP4") == ("mp4",)
    assert turntable_formats("both") == ("gif", "mp4") == turntable_formats(["mp4", ".gif"])
    for bad in ("webm", [], ["gif", "avi"]):
        with pytest.raises(ValueError, match="gif, mp4 or both"):
            turntable_formats(bad)


def test_report_links_are_relative_and_survive_a_move(tmp_path, scenes):
    ours = latent_model(scenes, {k: 0.05 for k in scenes})
    base = rgb_model({"a": scenes["a"]}, {"a": 0.02})
    rep = tmp_path / "rep"
    grid, cols = comparison_grid([scenes["a"], scenes["b"]], ours, base, rep / "grid.png", views_per_scene=2)
    assert cols == ["ground truth", "fake 3Da-AE", "fake RGB", "AE reconstruction"]
    g = iio.imread(grid)
    assert g.shape[0] > 4 * 128 and g.shape[1] > 4 * 128  # 4 rows, 4 columns upscaled to 128 px
    tt = render_turntable(ours, "a", camera_defaults_from_views(scenes.values()), rep / "turntables" / "a",
                          (32, 32), TurntableConfig(n_frames=3, n_views=0))
    rows = [MethodRow("3Da-AE", 2, 25.0, 0.9, 3.0, 40_000, 12.0), MethodRow("Tri-Planes (RGB)", 1, None, None, None, None, None)]
    md = write_report(rep, ReportContent(title="t", rows=rows, grid_png=str(grid), turntables=[("a", tt["turntable"])],
                                         phase_seconds={"train": 60.0, "exploit": 30.0}, files={"metrics": str(grid)}))
    text = md.read_text()
    assert "| 3Da-AE | 2 | 25.00 | 0.9000 | 3.0 | 39.1 KiB | 12.0 |" in text
    assert "| Tri-Planes (RGB) | 1 | - | - | - | - | - |" in text
    assert "**90.0**" in text
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links and all(not l.startswith("/") for l in links)
    moved = tmp_path / "moved"
    shutil.move(str(rep), str(moved))
    for l in links:
        assert (moved / l).is_file(), l
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "x", ReportContent(title="t", grid_png=str(tmp_path / "missing.png")))


def test_depth_image_blends_empty_space_to_white():
    d = torch.full((1, 2, 2), 1.0)
    op = torch.tensor([[[0.0, 1.0], [0.5, 1.0]]])
    im = depth_image(d, 0.5, 2.1, opacity=op)
    assert (im[0, 0] == 255).all()  # no opacity: white
    assert not (im[0, 1] == 255).all()
    assert (im[1, 0].astype(int) > im[0, 1].astype(int)).all()  # half opacity: between colour and white
