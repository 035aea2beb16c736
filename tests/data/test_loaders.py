"""Every loader on generated fixtures: SRN, EG3D dataset.json, nerfstudio transforms.json, Blender."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentscenes.data import MultiSceneDataset, detect_layout, load_scene
from datafixtures import random_images, ring_cameras, write_json, write_srn

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def test_srn_scene_roundtrip(srn_scene):
    root, imgs, c2w = srn_scene
    sv = load_scene(root)
    assert detect_layout(root) == "srn"
    assert sv.scene_id == "car0"
    assert sv.images.shape == (4, 3, 16, 16) and sv.images.dtype == torch.float32
    np.testing.assert_allclose(sv.images.permute(0, 2, 3, 1).numpy(), imgs / 255.0, atol=1e-6)
    np.testing.assert_allclose(sv.c2w.numpy(), c2w, atol=1e-6)
    np.testing.assert_allclose(sv.K[0].numpy(), [[1.2, 0, 0.5], [0, 1.2, 0.5], [0, 0, 1]], atol=1e-6)
    assert sv.split == ["train"] * 4  # fewer than 20 views: no paper test split
    assert sv.masks is None
    assert sv.view_names == ["000000", "000001", "000002", "000003"]


def test_srn_intrinsics_for_other_size_are_normalised_by_stated_size(tmp_path):
    # ShapeNet cars: intrinsics.txt written for 512x512 while the images are 128x128 (here: 16x16)
    root, _, _ = write_srn(tmp_path / "car", size=16, intr_size=512)
    sv = load_scene(root)
    np.testing.assert_allclose(sv.K[0, 0, 0].item(), 1.2, rtol=1e-6)
    np.testing.assert_allclose(sv.K[0, :2, 2].numpy(), [0.5, 0.5], atol=1e-6)


def test_srn_paper_split_and_masks(tmp_path):
    root, _, _ = write_srn(tmp_path / "car", n=22, size=8, masks=True)
    sv = load_scene(root)
    assert sv.split[:10] == ["test"] * 10 and sv.split[10:] == ["train"] * 12
    assert sv.masks is not None and sv.masks.shape == (22, 1, 8, 8)
    assert sv.masks[0, 0, 4, 4] == 1.0 and sv.masks[0, 0, 0, 0] == 0.0


def test_resolution_area_resize_keeps_K(srn_scene):
    root, imgs, _ = srn_scene
    sv = load_scene(root, resolution=8)
    assert sv.images.shape == (4, 3, 8, 8)
    expected = (imgs / 255.0).reshape(4, 8, 2, 8, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(sv.images.permute(0, 2, 3, 1).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(sv.K.numpy(), load_scene(root).K.numpy())


def _eg3d_labels(prefix: str, n: int, size: int, base: Path, seed: int = 0) -> list:
    (base / prefix / "rgb").mkdir(parents=True)
    imgs = random_images(n, size, size, seed)
    c2w = ring_cameras(n)
    K = np.array([[1.0254, 0, 0.5], [0, 1.0254, 0.5], [0, 0, 1]])
    labels = []
    for i in range(n):
        rel = f"{prefix}/rgb/{i:06d}.png"
        Image.fromarray(imgs[i]).save(base / rel)
        labels.append([rel, c2w[i].reshape(-1).tolist() + K.reshape(-1).tolist()])
    return labels


def test_eg3d_single_and_multi_scene(tmp_path):
    root = tmp_path / "eg3d"
    labels = _eg3d_labels("objA", 3, 8, root) + _eg3d_labels("objB", 2, 8, root, seed=1)
    write_json(root / "dataset.json", {"labels": labels})
    ds = MultiSceneDataset(root)
    assert ds.scene_ids == ["objA", "objB"]
    a = ds.load("objA")
    assert a.num_views == 3 and a.scene_id == "objA"
    np.testing.assert_allclose(a.K[0, 0, 0].item(), 1.0254, rtol=1e-6)
    np.testing.assert_allclose(a.c2w.numpy(), ring_cameras(3), atol=1e-6)
    assert ds.load("objB").num_views == 2
    # a single-scene folder with its own dataset.json
    single = tmp_path / "single"
    write_json(single / "dataset.json", {"labels": _eg3d_labels("x", 2, 8, single)}) if single.mkdir() is None else None
    sv = load_scene(single)
    assert detect_layout(single) == "eg3d" and sv.num_views == 2


def test_nerfstudio_transforms_opengl_to_opencv(tmp_path):
    root = tmp_path / "ns"
    (root / "images").mkdir(parents=True)
    c2w_cv = ring_cameras(3)
    frames = []
    for i in range(3):
        Image.fromarray(random_images(1, 12, 16, i)[0]).save(root / "images" / f"f{i}.png")
        frames.append({"file_path": f"images/f{i}.png", "transform_matrix": (c2w_cv[i] @ GL_TO_CV).tolist()})
    write_json(root / "transforms.json", {"fl_x": 20.0, "fl_y": 18.0, "cx": 8.0, "cy": 6.0, "w": 16, "h": 12,
                                          "frames": frames, "test_filenames": ["images/f2.png"]})
    sv = load_scene(root)
    assert detect_layout(root) == "transforms"
    assert sv.images.shape == (3, 3, 12, 16)
    np.testing.assert_allclose(sv.c2w.numpy(), c2w_cv, atol=1e-6)
    np.testing.assert_allclose(sv.K[0].numpy(), [[20 / 16, 0, 0.5], [0, 18 / 12, 0.5], [0, 0, 1]], atol=1e-6)
    assert sv.split == ["train", "train", "test"]


def test_blender_transforms_rgba_on_white(tmp_path):
    root = tmp_path / "lego"
    c2w_cv = ring_cameras(4)
    for split, idx in (("train", [0, 1]), ("test", [2, 3])):
        (root / split).mkdir(parents=True)
        frames = []
        for i in idx:
            rgba = np.zeros((8, 8, 4), np.uint8)
            rgba[..., 0] = 255  # red where opaque
            rgba[2:6, 2:6, 3] = 255  # opaque centre, transparent border
            Image.fromarray(rgba, "RGBA").save(root / split / f"r_{i}.png")
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": (c2w_cv[i] @ GL_TO_CV).tolist()})
        write_json(root / f"transforms_{split}.json", {"camera_angle_x": 0.6911, "frames": frames})
    sv = load_scene(root)
    assert detect_layout(root) == "blender"
    assert sv.split == ["train", "train", "test", "test"]
    np.testing.assert_allclose(sv.images[0, :, 0, 0].numpy(), [1, 1, 1])  # transparent -> white
    np.testing.assert_allclose(sv.images[0, :, 3, 3].numpy(), [1, 0, 0])
    assert sv.masks is not None and sv.masks[0, 0, 3, 3] == 1 and sv.masks[0, 0, 0, 0] == 0
    np.testing.assert_allclose(sv.K[0, 0, 0].item(), 0.5 / np.tan(0.6911 / 2), rtol=1e-5)
    np.testing.assert_allclose(sv.c2w.numpy(), c2w_cv, atol=1e-6)


def test_multiscene_without_and_with_manifest(tmp_path):
    root = tmp_path / "ds"
    for name in ("b", "a", "c"):
        write_srn(root / name, n=2, size=8)
    (root / ".tmp-d-1").mkdir()  # half-written scene of an interrupted build: ignored
    ds = MultiSceneDataset(root)
    assert ds.scene_ids == ["a", "b", "c"]
    assert ds.split_scene_ids("train") == ["a", "b", "c"] and ds.split_scene_ids("exploit") == []
    assert ds.render_defaults == {"near": 0.5, "far": 2.1, "box_size": 2.0}
    assert ds.load("a") is ds.load("a")  # cached
    with pytest.raises(ValueError):
        ds.split_scene_ids("nope")
    with pytest.raises(KeyError):
        ds.load("zzz")
    write_json(root / "manifest.json", {"scenes": {"a": {"livery": "x"}, "b": {}, "c": {}},
                                        "splits": {"train": ["a", "b"], "exploit": ["c"]},
                                        "render": {"near": 1.3, "far": 3.3, "box_size": 2.0}})
    ds = MultiSceneDataset(root, resolution=4)
    assert ds.split_scene_ids("exploit") == ["c"] and ds.split_scene_ids("train") == ["a", "b"]
    assert ds.render_defaults == {"near": 1.3, "far": 3.3, "box_size": 2.0}
    assert ds.scene_meta("a") == {"livery": "x"}
    sv = ds.load("a")
    assert sv.images.shape[-2:] == (4, 4) and sv.meta["livery"] == "x"
