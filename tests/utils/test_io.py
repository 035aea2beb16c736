"""Atomic writes: the final file follows the umask, and the folder is fsynced after the rename (issue 11,
defect 8)."""

from __future__ import annotations

import os
import stat

import pytest

from latentscenes.utils import io


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_(mask: int) -> None:
        os.umask(mask)

    yield set_
    os.umask(saved)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_write_follows_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    io.atomic_write_text(tmp_path / "a.json", "{}")
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode
    assert io.current_umask() == mask


def test_atomic_write_fsyncs_the_folder_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        return real(fd)

    monkeypatch.setattr(io.os, "fsync", fsync)
    io.atomic_write_text(tmp_path / "x.txt", "123")
    assert synced == ["file", "dir"]


def test_remove_temporaries_deletes_only_the_atomic_writers_leftovers(tmp_path):
    (tmp_path / "sub").mkdir()
    orphans = [tmp_path / ".manifest.json.k3j_x9a1.tmp", tmp_path / "sub" / ".shared.safetensors.abcdefgh.tmp"]
    keep = [tmp_path / "notes.tmp", tmp_path / ".hidden", tmp_path / "sub" / "scenes-00000.safetensors"]
    for p in orphans + keep:
        p.write_text("x")
    (tmp_path / ".ckpt.abcdefgh.tmp").mkdir()  # a checkpoint swap's folder: recover_checkpoint_dir's decision
    assert sorted(io.remove_temporaries(tmp_path)) == sorted(orphans)
    assert all(p.exists() for p in keep) and (tmp_path / ".ckpt.abcdefgh.tmp").is_dir()
