"""Checkpoint folders: the umask's mode, and recovery of interrupted swaps with their leftovers removed on
resume (issue 11, defect 8)."""

from __future__ import annotations

import json
import os
import stat

import pytest

import latentscenes.training.stages as stages
from latentscenes.training.checkpoint import recover_checkpoint_dir, write_checkpoint_dir
from latentscenes.training.pipeline import train_3daae

from helpers_3daae import small_config, sphere_scenes


def _fake_ckpt(folder, step: int, complete: bool = True) -> None:
    folder.mkdir(parents=True)
    (folder / "shared.safetensors").write_bytes(b"w")
    if complete:
        (folder / "state.json").write_text(json.dumps({"step": step}))


def _step(folder) -> int:
    return json.loads((folder / "state.json").read_text())["step"]


def test_checkpoint_folder_follows_the_umask(tmp_path):
    saved = os.umask(0o022)
    try:
        write_checkpoint_dir(tmp_path / "ckpt", lambda d: (d / "state.json").write_text("{}"))
    finally:
        os.umask(saved)
    assert stat.S_IMODE((tmp_path / "ckpt").stat().st_mode) == 0o755


def test_recovery_keeps_the_committed_checkpoint_and_removes_leftovers(tmp_path):
    _fake_ckpt(tmp_path / "ckpt", 4)
    _fake_ckpt(tmp_path / ".ckpt.old", 2)
    _fake_ckpt(tmp_path / ".ckpt.a1b2c3d4.tmp", 6, complete=False)  # killed while writing
    assert recover_checkpoint_dir(tmp_path / "ckpt") == tmp_path / "ckpt"
    assert _step(tmp_path / "ckpt") == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


@pytest.mark.parametrize("leftovers, expected", [
    ({".ckpt.old": 2, ".ckpt.zz9_0a1b.tmp": 4}, 4),  # killed between the two renames of a swap
    ({".ckpt.a1b2c3d4.tmp": 4, ".ckpt.e5f6g7h8.tmp": 6}, 6),  # ... then again after the aside copy went
    ({".ckpt.old": 2}, 2),
])
def test_recovery_finds_a_complete_checkpoint_wherever_a_swap_left_it(tmp_path, leftovers, expected):
    for name, step in leftovers.items():
        _fake_ckpt(tmp_path / name, step)
    assert recover_checkpoint_dir(tmp_path / "ckpt") == tmp_path / "ckpt"
    assert _step(tmp_path / "ckpt") == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_a_write_after_an_interrupted_swap_never_deletes_the_only_checkpoint(tmp_path, monkeypatch):
    """The aside copy of a swap interrupted between its renames is put back, not deleted, by the next write:
    a second crash inside that write must still leave a checkpoint the loader finds."""
    import latentscenes.training.checkpoint as checkpoint

    _fake_ckpt(tmp_path / ".ckpt.old", 2)
    real = os.replace

    def replace(src, dst):
        if str(src).endswith(".tmp"):  # the crash: just before the new checkpoint is renamed into place
            raise KeyboardInterrupt
        return real(src, dst)

    with monkeypatch.context() as m:
        m.setattr(checkpoint.os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            write_checkpoint_dir(tmp_path / "ckpt", lambda d: (d / "state.json").write_text(json.dumps({"step": 3})))
    found = checkpoint.existing_checkpoint_dir(tmp_path / "ckpt")
    assert found is not None and _step(found) == 2
    write_checkpoint_dir(tmp_path / "ckpt", lambda d: (d / "state.json").write_text(json.dumps({"step": 3})))
    assert _step(tmp_path / "ckpt") == 3 and not (tmp_path / ".ckpt.old").exists()


class Interrupt(RuntimeError):
    pass


def test_resume_removes_orphan_temporaries_and_continues(tmp_path, monkeypatch):
    real = stages.stage_losses
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise Interrupt
        return real(*a, **k)

    cfg = small_config(warmup=2)
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(stages, "stage_losses", flaky)
        with pytest.raises(Interrupt):
            train_3daae(cfg, run, scenes=sphere_scenes(2))
    orphans = [run / ".manifest.json.q1w2e3r4.tmp", run / "cache" / ".latents-train.safetensors.abcd_123.tmp",
               run / "stages" / "warmup" / ".ckpt.0a9b8c7d.tmp" / "shared.safetensors"]
    for p in orphans:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"partial")
    res = train_3daae(cfg, run, scenes=sphere_scenes(2), resume=True)
    assert res["stages"]["warmup"]["resumed_from"] == 2
    left = [p for p in run.rglob("*.tmp")] + list(run.rglob(".ckpt.old"))
    assert not left, left
