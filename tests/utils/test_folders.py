"""Folder ownership markers and the refusals of ``check_out_folder`` (issue 11, defect 1)."""

from __future__ import annotations

import json

import pytest

from latentscenes.utils.folders import MARKER, OutFolderError, check_out_folder, folder_owner, mark_folder


def test_missing_and_empty_folders_are_free(tmp_path):
    check_out_folder(tmp_path / "new", "train")
    (tmp_path / "empty").mkdir()
    check_out_folder(tmp_path / "empty", "fit-rgb")
    assert folder_owner(tmp_path / "empty") is None


def test_marker_names_the_owner_and_other_commands_are_refused(tmp_path):
    mark_folder(tmp_path / "r", "ae pretrain")
    assert json.loads((tmp_path / "r" / MARKER).read_text())["command"] == "ae pretrain"
    assert folder_owner(tmp_path / "r") == "ae pretrain"
    for cmd in ("train", "exploit", "export", "fit-rgb", "bench", "demo"):
        with pytest.raises(OutFolderError, match="autoencoder pre-training run.*latentscenes ae pretrain"):
            check_out_folder(tmp_path / "r", cmd, resume=True, resumable=True)


def test_own_folder_needs_resume_or_is_refused_when_not_resumable(tmp_path):
    mark_folder(tmp_path / "r", "train")
    with pytest.raises(OutFolderError, match="--resume"):
        check_out_folder(tmp_path / "r", "train", resumable=True)
    check_out_folder(tmp_path / "r", "train", resume=True, resumable=True)
    mark_folder(tmp_path / "f", "export")
    with pytest.raises(OutFolderError, match="cannot resume"):
        check_out_folder(tmp_path / "f", "export")
    mark_folder(tmp_path / "d", "demo")
    check_out_folder(tmp_path / "d", "demo", replaces_own=True)


@pytest.mark.parametrize("files, owner", [
    ({"manifest.json": {"format": "latentscenes-3daae-run", "kind": "train"}}, "train"),
    ({"manifest.json": {"format": "latentscenes-3daae-run", "kind": "pretrained"}}, "export"),
    ({"manifest.json": {"format": "latentscenes-3daae-exploit"}}, "exploit"),
    ({"results.json": {"variant": "micro", "scenes": []}}, "fit-rgb"),
    ({"config.json": {"variant": "macro", "steps": 800}}, "fit-rgb"),  # stopped before its index was written
    ({"results.json": {"variant": "shiny", "scenes": []}}, None),  # not the RGB format's variants
    ({"config.json": {"crop": 64, "lr": 1e-3}}, "ae pretrain"),
    ({"results.json": {"table1": {}}}, "bench"),
    ({"demo_config.json": {}}, "demo"),
    ({"notes.json": {}}, None),
])
def test_folders_written_before_markers_are_recognised(tmp_path, files, owner):
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    assert folder_owner(tmp_path) == owner


def test_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutFolderError, match="is a file"):
        check_out_folder(tmp_path / "f", "bench")


def test_a_start_killed_before_its_marker_is_not_anyones_output(tmp_path):
    # `train` / `exploit` load their views into cache/ before they mark the folder; killed in between (even
    # inside the marker's own atomic write), the folder holds nothing learned and the same command may use it.
    out = tmp_path / "r"
    (out / "cache").mkdir(parents=True)
    (out / "cache" / "images-train.safetensors").write_bytes(b"codes")
    (out / ".latentscenes.json.abc123.tmp").write_text("{}")
    for cmd in ("train", "exploit"):
        check_out_folder(out, cmd, resume=True, resumable=True)
        check_out_folder(out, cmd, resumable=True)
    for cmd in ("fit-rgb", "ae pretrain", "bench"):  # they never write view codes: not theirs to take
        with pytest.raises(OutFolderError, match="holds no latentscenes output"):
            check_out_folder(out, cmd, resume=True, resumable=True, replaces_own=True)
    (out / "cache" / "latents-train.safetensors").write_bytes(b"learned from")  # more than the view codes
    with pytest.raises(OutFolderError, match="holds no latentscenes output"):
        check_out_folder(out, "train", resume=True, resumable=True)
