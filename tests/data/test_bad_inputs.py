"""Each bad-input case gives a DatasetError that names the file and the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from datafixtures import ring_cameras, write_json, write_srn
from latentscenes.data import DatasetError, MultiSceneDataset, load_scene

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def _raises(path, *words):
    with pytest.raises(DatasetError) as ei:
        load_scene(path)
    msg = str(ei.value)
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"
    return msg


def test_truncated_image(srn_scene):
    root, _, _ = srn_scene
    f = root / "rgb" / "000002.png"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    _raises(root, str(f), "truncated")


def test_not_an_image(srn_scene):
    root, _, _ = srn_scene
    f = root / "rgb" / "000001.png"
    f.write_bytes(b"this is not a png")
    _raises(root, str(f), "unreadable")


def test_missing_pose(srn_scene):
    root, _, _ = srn_scene
    (root / "pose" / "000003.txt").unlink()
    _raises(root, "000003.txt", "missing pose")


def test_malformed_pose(srn_scene):
    root, _, _ = srn_scene
    (root / "pose" / "000000.txt").write_text("1 0 0 zero")
    _raises(root, str(root / "pose" / "000000.txt"), "malformed")
    (root / "pose" / "000000.txt").write_text("1 0 0 0 0 1 0 0 0 0 1 0 0 0 0")  # 15 numbers
    _raises(root, str(root / "pose" / "000000.txt"), "malformed pose")


def test_non_rotation_matrix(srn_scene):
    root, _, c2w = srn_scene
    m = c2w[1].copy()
    m[:3, :3] *= 2.0  # scaled: not a rotation
    (root / "pose" / "000001.txt").write_text(" ".join(map(str, m.reshape(-1))))
    _raises(root, "000001.txt", "not a rotation")
    m = c2w[1].copy()
    m[:3, 0] *= -1.0  # reflection, det -1
    (root / "pose" / "000001.txt").write_text(" ".join(map(str, m.reshape(-1))))
    _raises(root, "000001.txt", "det")


def test_nan_and_inf(srn_scene, tmp_path):
    root, _, c2w = srn_scene
    m = c2w[2].copy()
    m[0, 3] = np.nan
    (root / "pose" / "000002.txt").write_text(" ".join(map(str, m.reshape(-1))))
    _raises(root, "000002.txt", "NaN or inf")
    # inf in a transforms.json
    ns = tmp_path / "ns"
    (ns / "im").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(ns / "im" / "a.png")
    bad = (ring_cameras(1)[0] @ GL_TO_CV).tolist()
    bad[1][3] = float("inf")
    (ns / "transforms.json").write_text(json.dumps({"fl_x": 4, "w": 4, "h": 4, "frames": [{"file_path": "im/a.png", "transform_matrix": bad}]}))
    _raises(ns, "transforms.json", "NaN or inf")
    # NaN intrinsics in an EG3D label
    eg = tmp_path / "eg"
    (eg / "s" / "rgb").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(eg / "s" / "rgb" / "0.png")
    lab = ring_cameras(1)[0].reshape(-1).tolist() + [float("nan"), 0, 0.5, 0, 1, 0.5, 0, 0, 1]
    (eg / "dataset.json").write_text(json.dumps({"labels": [["s/rgb/0.png", lab]]}))
    _raises(eg, "dataset.json", "NaN or inf")


def test_mixed_image_sizes(srn_scene):
    root, _, _ = srn_scene
    Image.fromarray(np.zeros((20, 16, 3), np.uint8)).save(root / "rgb" / "000003.png")
    _raises(root, str(root / "rgb" / "000003.png"), "differs")


def test_scene_with_no_views(tmp_path):
    root = tmp_path / "empty"
    (root / "rgb").mkdir(parents=True)
    (root / "pose").mkdir()
    _raises(root, str(root), "no views")
    ns = tmp_path / "ns"
    ns.mkdir()
    write_json(ns / "transforms.json", {"fl_x": 4, "frames": []})
    _raises(ns, "no views")
    eg = tmp_path / "eg"
    eg.mkdir()
    write_json(eg / "dataset.json", {"labels": []})
    _raises(eg, "no views")


def test_missing_pose_in_transforms_and_malformed_json(tmp_path):
    ns = tmp_path / "ns"
    ns.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(ns / "a.png")
    write_json(ns / "transforms.json", {"fl_x": 4, "frames": [{"file_path": "a.png"}]})
    _raises(ns, "transforms.json", "frames[0]", "transform_matrix")
    (ns / "transforms.json").write_text("{not json")
    _raises(ns, "transforms.json", "malformed JSON")


def test_malformed_intrinsics(tmp_path):
    root, _, _ = write_srn(tmp_path / "s", n=2, size=8)
    (root / "intrinsics.txt").write_text("abc\n")
    _raises(root, "intrinsics.txt", "malformed")


def test_manifest_lists_missing_scene(tmp_path):
    root = tmp_path / "ds"
    write_srn(root / "a", n=2, size=8)
    write_json(root / "manifest.json", {"scenes": {"a": {}, "gone": {}}})
    ds = MultiSceneDataset(root)
    with pytest.raises(DatasetError, match="gone"):
        ds.load("gone")


@pytest.mark.parametrize("bad", ["../victim/s0", "a/b", "..", "", "x\\y"])
def test_manifest_scene_ids_that_are_not_plain_names_are_refused(tmp_path, bad):
    import json

    from latentscenes.data import MultiSceneDataset
    from latentscenes.data.types import DatasetError

    (tmp_path / "manifest.json").write_text(json.dumps({"scenes": {bad: {}, "ok": {}}}))
    with pytest.raises(DatasetError, match="not a plain name") as e:
        MultiSceneDataset(tmp_path)
    assert "manifest.json" in str(e.value)


def _one_view_transforms(ns, file_path) -> None:
    (ns / "im").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(ns / "im" / "a.png")
    pose = (ring_cameras(1)[0] @ GL_TO_CV).tolist()
    write_json(ns / "transforms.json", {"fl_x": 4, "w": 4, "h": 4,
                                        "frames": [{"file_path": file_path, "transform_matrix": pose}]})


@pytest.mark.parametrize("escape", ["absolute", "../secret.png", "im/../../secret.png", "C:\\secret.png"])
def test_transforms_file_paths_outside_the_scene_folder_are_refused(tmp_path, escape):
    """Issue 11, defect 4: a frame's file_path that is absolute or climbs out with '..' was read (each case
    names an image that exists, so only the confinement refuses it)."""
    ns = tmp_path / "ds" / "ns"
    ns.mkdir(parents=True)
    secret = Image.fromarray(np.full((4, 4, 3), 200, np.uint8))
    secret.save(tmp_path / "ds" / "secret.png")
    secret.save(ns / "C:\\secret.png", format="PNG")  # on POSIX a Windows absolute path is a plain file name
    if escape == "absolute":
        escape = str(tmp_path / "ds" / "secret.png")
    _one_view_transforms(ns, escape)
    _raises(ns, "transforms.json", "frames[0]", repr(escape))


def test_transforms_file_paths_with_dotdot_inside_the_scene_folder_are_kept(tmp_path):
    ns = tmp_path / "ns"
    _one_view_transforms(ns, "im/../im/a.png")
    assert load_scene(ns).num_views == 1


@pytest.mark.parametrize("escape", ["../other/rgb/0.png", "/tmp/s/rgb/0.png"])
def test_eg3d_label_paths_outside_the_dataset_root_are_refused(tmp_path, escape):
    eg = tmp_path / "eg"
    (eg / "s" / "rgb").mkdir(parents=True)
    (tmp_path / "other" / "rgb").mkdir(parents=True)
    for d in (eg / "s" / "rgb", tmp_path / "other" / "rgb"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(d / "0.png")
    lab = ring_cameras(1)[0].reshape(-1).tolist() + [1.0, 0, 0.5, 0, 1, 0.5, 0, 0, 1]
    (eg / "dataset.json").write_text(json.dumps({"labels": [["s/rgb/0.png", lab], [escape, lab]]}))
    _raises(eg, "dataset.json", "labels[1]", repr(escape))


def test_one_rgba_view_among_rgb_views_is_named(tmp_path):
    """Issue 11, defect 5: the message named the first RGB view ("has no mask") instead of the odd RGBA one."""
    root, _, _ = write_srn(tmp_path / "s", n=4, size=8)
    f = root / "rgb" / "000002.png"
    rgb = np.asarray(Image.open(f).convert("RGB"))
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), "RGBA").save(f)
    msg = _raises(root, str(f), "alpha")
    assert "000000.png:" not in msg


def test_scene_folder_of_unknown_layout_is_not_skipped(tmp_path):
    """Issue 11, defect 5: a scene folder of unknown layout was dropped without a word by every command and
    passed ``data validate``. ``_``-prefixed folders and ``validation/`` (data validate's figures) are left out."""
    from latentscenes.data.validate import validate_dataset

    write_srn(tmp_path / "a", n=2, size=8)
    write_srn(tmp_path / "b", n=2, size=8)
    (tmp_path / "_notes").mkdir()
    (tmp_path / "validation").mkdir()
    assert MultiSceneDataset(tmp_path).scene_ids == ["a", "b"]
    (tmp_path / "b" / "rgb").rename(tmp_path / "b" / "images")  # no longer any known layout
    with pytest.raises(DatasetError, match="unknown scene layout") as e:
        MultiSceneDataset(tmp_path)
    assert str(tmp_path / "b") in str(e.value)
    rep = validate_dataset(tmp_path, tmp_path / "_figs", progress=False)
    assert not rep.ok and any(str(tmp_path / "b") in p for p in rep.problems), rep.problems
