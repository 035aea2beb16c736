"""The Python API (latentscenes/api.py, issue 14 deliverable 3) on tiny real runs: a ``test``-preset 3Da-AE training
run, an exploit batch learned from it, a Tri-Planes (RGB) folder and a pre-trained package exported from the run."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "training"))
from helpers_3daae import tiny_run_set  # noqa: E402

import latentscenes as ls  # noqa: E402
from latentscenes.evaluation.cameras import orbit_cameras  # noqa: E402
from latentscenes.metrics import psnr_per_image  # noqa: E402
from latentscenes.rendering.offsets import merge_offset_images, offset_intrinsics  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    return tiny_run_set(tmp_path_factory.mktemp("api"))


def test_load_every_run_kind_and_list_its_scenes(runs):
    train = ls.load(runs["run"], device="cpu")
    assert (train.kind, train.scenes, train.groups) == ("train", ["tr00", "tr01"], {"train": ["tr00", "tr01"]})
    assert train.is_latent and train.downsample == 8 and train.data_root == str(runs["data"])
    batch = ls.load(runs["batch"], device="cpu")
    assert batch.kind == "exploit" and batch.groups == {"train": ["tr00", "tr01"], "exploit": ["ex00"]}
    assert batch.scenes == ["tr00", "tr01", "ex00"]
    assert ls.load(runs["batch"], scenes="exploit", device="cpu").scenes == ["ex00"]
    rgb = ls.load(runs["rgb"], device="cpu")
    assert (rgb.kind, rgb.scenes, rgb.is_latent, rgb.downsample) == ("rgb", ["ex00"], False, 1)
    assert (rgb.near, rgb.far) == (0.5, 2.1)  # the dataset manifest's render section
    pkg = ls.load(runs["pkg"], device="cpu")
    assert (pkg.kind, pkg.scenes) == ("pretrained", [])
    with pytest.raises(ValueError, match="pre-trained 3Da-AE without scenes"):
        pkg.render("tr00", np.eye(4), np.eye(3), 32, 32)
    with pytest.raises(ValueError, match="pre-trained 3Da-AE without scenes"):
        pkg.evaluate(data=runs["data"])


def _direct_render(system, sid, c2w, K, h, w, raw=False):
    """The renderer itself on the run's own objects (no evaluation adapter): deterministic samples, the system's
    latent background, then the run's decoder."""
    from latentscenes.rendering.renderer import render_views_no_grad

    cfg = dataclasses.replace(system.render, deterministic=True)
    with torch.no_grad():
        planes = system.bank.planes(system.bank.rows([sid]))
        out = render_views_no_grad(planes, system.mlp, c2w[None], K[None], h, w, cfg, system.background().float())
        rgb = system.ae.decode(system.ae.denormalize(out["image"]))
    return out, (rgb if raw else ((rgb + 1) / 2).clamp(0, 1))


@pytest.mark.parametrize("sid", ["ex00", "tr01"])
def test_render_matches_the_renderer_and_the_evaluation(runs, sid):
    """The API's image of a dataset camera is the run's own render + decode (exploit scene: the batch's fine-tuned
    decoder; training scene: the training run's), laid out [H, W, 3] in [0, 1]; its PSNR is the one evaluate reports."""
    from latentscenes.training.pipeline import load_exploited, load_trained

    run = ls.load(runs["batch"], device="cpu")
    sv = run.views(sid)
    i = sv.view_indices("test")[0]
    out = run.render(sid, sv.c2w[i].numpy(), sv.K[i].tolist(), 32, 32)
    assert set(out) == {"rgb", "depth", "opacity", "latent"}
    assert out["rgb"].shape == (32, 32, 3) and out["rgb"].dtype == np.float32
    assert out["latent"].shape == (4, 4, 4) and out["depth"].shape == out["opacity"].shape == (4, 4)
    assert 0.0 <= out["rgb"].min() and out["rgb"].max() <= 1.0 and 0.0 <= out["opacity"].min() <= out["opacity"].max() <= 1.0

    system = (load_exploited(runs["batch"], "cpu") if sid.startswith("ex") else load_trained(runs["run"], "cpu"))
    direct, rgb = _direct_render(system, sid, sv.c2w[i], sv.K[i], 4, 4)
    # the test preset decodes at 2 x 2 offsets (render.offset_ensemble, as tiny-cpu): the mean of the renderer's
    # four decoded renders at the offset cameras, each moved back; with the override 1 it is the one decode
    assert system.render.offset_ensemble == 2
    Ks = offset_intrinsics(sv.K[i][None], 2, 8, (32, 32))
    shifted = torch.cat([_direct_render(system, sid, sv.c2w[i], Ks[c], 4, 4, raw=True)[1] for c in range(4)])
    merged = ((merge_offset_images(shifted, 2, 8) + 1) / 2).clamp(0, 1)
    np.testing.assert_allclose(out["rgb"], merged[0].permute(1, 2, 0).numpy(), atol=1e-5)
    one = ls.load(runs["batch"], device="cpu", offset_ensemble=1).render(sid, sv.c2w[i].numpy(), sv.K[i].tolist(), 32, 32)
    np.testing.assert_allclose(one["rgb"], rgb[0].permute(1, 2, 0).numpy(), atol=1e-5)
    assert np.abs(one["rgb"] - out["rgb"]).max() > 1e-3
    # the same for one call (the viewer's moving preview), the run keeping its own setting
    call = run.render(sid, sv.c2w[i].numpy(), sv.K[i].tolist(), 32, 32, offset_ensemble=1)
    np.testing.assert_allclose(call["rgb"], one["rgb"], atol=1e-6)
    with pytest.raises(ValueError, match="offset_ensemble"):
        run.render(sid, sv.c2w[i].numpy(), sv.K[i].tolist(), 32, 32, offset_ensemble=3)
    np.testing.assert_allclose(out["latent"], direct["image"][0].permute(1, 2, 0).numpy(), atol=1e-6)
    np.testing.assert_allclose(out["depth"], direct["depth"][0, 0].numpy(), atol=1e-6)
    assert run.near - 1e-5 <= out["depth"].min() and out["depth"].max() <= run.far + 1e-5

    ev = run.evaluate(scenes=[sid], max_views=1)
    assert list(ev["groups"]) == (["exploit"] if sid == "ex00" else ["train"]) and ev["overall"]["n_scenes"] == 1
    psnr = float(psnr_per_image(torch.from_numpy(out["rgb"]).permute(2, 0, 1)[None], sv.images[i : i + 1])[0])
    assert ev["scenes"][sid]["views"][0]["index"] == i
    assert ev["scenes"][sid]["views"][0]["psnr"] == pytest.approx(psnr, abs=1e-4)


def test_rgb_run_render_batches_and_other_cameras(runs):
    run = ls.load(runs["rgb"], device="cpu")
    sv = run.views("ex00", data=runs["data"])
    one = [run.render("ex00", sv.c2w[j], sv.K[j], 32, 32) for j in range(3)]
    many = run.render("ex00", sv.c2w[:3], sv.K[:3], 32, 32)
    assert set(many) == {"rgb", "depth", "opacity"}  # no latent for an RGB run
    assert many["rgb"].shape == (3, 32, 32, 3) and many["depth"].shape == (3, 32, 32)
    for j in range(3):
        np.testing.assert_allclose(many["rgb"][j], one[j]["rgb"], atol=1e-6)
    assert np.abs(one[0]["rgb"] - one[1]["rgb"]).max() > 0.05  # two views of the scene differ
    # any camera and size, a torch K shared by a batch of two cameras
    c2w = np.stack([ls.look_at([1.3, 0.0, 0.4]), ls.look_at([0.0, -1.2, 0.6])])
    wide = run.render("ex00", c2w, torch.from_numpy(ls.intrinsics(60.0, width=24, height=16)), 16, 24)
    assert wide["rgb"].shape == (2, 16, 24, 3) and np.isfinite(wide["rgb"]).all()
    ev = run.evaluate(data=runs["data"])
    assert math.isfinite(ev["overall"]["mean"]["psnr"]) and 0 < ev["overall"]["mean"]["ssim"] <= 1
    assert ev["overall"]["n_views"] == 2 and ev["run"] == str(runs["rgb"])


def test_turntable_frames_are_api_renders_and_mp4_is_written(runs, tmp_path):
    run = ls.load(runs["run"], device="cpu")
    res = run.turntable("tr00", tmp_path / "tt", frames=4, views=4, fps=4, format="both")
    assert set(res["animations"]) == {"gif", "mp4"}
    mp4 = iio.imread(res["animations"]["mp4"]["turntable"], index=None)
    assert mp4.shape == (4, 32, 32, 3)
    c2w = orbit_cameras(4, res["radius"], math.radians(res["elevation_deg"]), azimuth_start=math.radians(30.0))
    for k in range(4):  # views = frames: view k is frame k
        png = iio.imread(res["views"][k]).astype(int)
        api = run.render("tr00", c2w[k], res["K"], 32, 32)["rgb"]
        assert np.abs(png - (api * 255 + 0.5).astype(int)).max() <= 1, k


def test_unknown_scene_and_bad_cameras_are_clear_errors(runs):
    run = ls.load(runs["batch"], device="cpu")
    eye = ls.look_at([1.3, 0.0, 0.4])
    with pytest.raises(ls.SceneNotFoundError) as e:
        run.render("tr0", eye, ls.intrinsics(), 32, 32)
    msg = str(e.value)
    assert isinstance(e.value, KeyError) and "'tr0'" in msg and str(runs["batch"]) in msg
    assert "tr00" in msg and "ex00" in msg and "3 scenes" in msg
    for call in (lambda: run.evaluate(scenes=["ex00", "nope"]), lambda: run.views("nope"),
                 lambda: run.turntable("nope", "unused")):
        with pytest.raises(KeyError, match="scene 'nope' is not in"):
            call()
    K = ls.intrinsics()
    with pytest.raises(ValueError, match="pixel intrinsics"):
        run.render("ex00", eye, K * np.array([[32], [32], [1]]), 32, 32)
    with pytest.raises(ValueError, match="multiple of the autoencoder downsampling 8"):
        run.render("ex00", eye, K, 30, 32)
    with pytest.raises(ValueError, match=r"c2w must be \[4,4\]"):
        run.render("ex00", eye[:3], K, 32, 32)
    with pytest.raises(ValueError, match=r"K must be \[3,3\] or \[2,3,3\]"):
        run.render("ex00", np.stack([eye, eye]), np.stack([K, K, K]), 32, 32)
    with pytest.raises(ValueError, match="non-finite"):
        run.render("ex00", eye * np.nan, K, 32, 32)


def test_a_folder_that_is_not_a_run_is_one_error_naming_it(runs, tmp_path):
    (tmp_path / "empty").mkdir()
    for folder, what in [(runs["data"], "no config.json"), (tmp_path / "empty", "no manifest.json or results.json"),
                         (tmp_path / "gone", "run folder not found")]:
        with pytest.raises(ls.NotARunError) as e:
            ls.load(folder)
        assert isinstance(e.value, FileNotFoundError)
        assert str(e.value).startswith(f"{folder}: ") and what in str(e.value)


def test_camera_helpers():
    c2w = ls.look_at([1.3, 0.0, 0.5])
    assert c2w.shape == (4, 4) and c2w.dtype == np.float32
    np.testing.assert_allclose(c2w[:3, 3], [1.3, 0.0, 0.5])
    np.testing.assert_allclose(c2w[:3, :3].T @ c2w[:3, :3], np.eye(3), atol=1e-6)
    fwd = -c2w[:3, 3] / np.linalg.norm(c2w[:3, 3])
    np.testing.assert_allclose(c2w[:3, 2], fwd, atol=1e-6)  # z looks at the origin
    assert c2w[2, 1] < 0  # y (image down) points away from world up
    assert ls.look_at([[1, 0, 0], [0, 2, 0]]).shape == (2, 4, 4)
    K = ls.intrinsics(90.0, width=200, height=100)
    np.testing.assert_allclose(K, [[0.5, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]], atol=1e-6)
    with pytest.raises(ValueError, match="fov_deg"):
        ls.intrinsics(180.0)
