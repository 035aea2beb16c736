"""``train`` and ``exploit`` in several processes on ``torch.distributed`` (gloo; training/distributed.py,
docs/scale.md "Many processes: torchrun"): every scene learned exactly once by the rank that owns it, the
single-process file layout, the single-process updates, and ``--resume`` after a rank died.

Equivalence with one process: a K-process stage draws the single-process batch of each step and splits it by scene
owner, weighting each rank's loss terms by its share of the batch, so the summed gradients are the single-process
ones. What differs is the order of the floating-point sums (the all-reduce adds the ranks' partial gradients) and,
unless ``render.deterministic``, the renderer's sampling noise (drawn per rank for its own rows). The tests therefore
learn on a run trained with ``render.deterministic`` and compare the parameters within float tolerance, not bit for
bit; Adam amplifies the rounding differences of near-zero gradients (its first step moves every parameter by about
lr whatever the gradient's size), so the tolerance after the decoder fine-tuning is wider than after the fit.
Between two K-process runs (interrupted and resumed vs uninterrupted) the parameters are bit-identical.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from latentscenes.training.data import batch_indices
from latentscenes.training.pipeline import (
    RunError,
    build_system,
    exploit_3daae,
    exploit_config,
    load_exploited,
    load_run_autoencoder,
    load_run_config,
    train_3daae,
)

from helpers_3daae import single_thread, small_config, write_sphere_dataset
from helpers_dist import spawn_exploit

# Seed 15: fit step 3 draws no view of rank 1's scenes and fine-tune step 1 none of rank 0's, so both ranks take
# the path of a rank absent from a batch (a stand-in row weighted 0, its per-scene rows not stepped).
SETS = ["exploit.fit.steps=6", "exploit.fit.checkpoint_every=2", "exploit.finetune.steps=2", "seed=15"]
IDS = ["ex00", "ex01", "ex02", "ex03", "ex04"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A dataset of 5 train and 5 exploit scenes without recorded ray bounds (every rank derives them from all
    cameras), and the same ``test``-preset run (deterministic renderer) trained by one and by two processes."""
    root = tmp_path_factory.mktemp("dist")
    data = write_sphere_dataset(root / "data", n_train=5, n_exploit=5)
    manifest = json.loads((data / "manifest.json").read_text())
    del manifest["render"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    cfg = small_config(warmup=2)
    cfg.warmup.steps, cfg.joint.steps = 4, 2
    cfg.render.deterministic = True
    with single_thread():
        train_3daae(cfg, root / "run", data_root=data)
    reports = spawn_exploit(None, root / "run2", cfg, data, root / "reports-run2", kind="train")
    return {"root": root, "data": data, "cfg": cfg, "run": root / "run", "run2": root / "run2", "reports": reports}


@pytest.fixture(scope="module")
def runs(trained):
    """The same exploit batch (5 scenes) of the one-process run learned by one process and by two."""
    root, data = trained["root"], trained["data"]
    ecfg = exploit_config(load_run_config(trained["run"]), SETS)
    with single_thread():
        exploit_3daae(trained["run"], root / "one", ecfg, data_root=data)
    reports = spawn_exploit(trained["run"], root / "two", ecfg, data, root / "reports-two")
    return {"root": root, "data": data, "run": trained["run"], "cfg": ecfg, "one": root / "one",
            "two": root / "two", "reports": reports}


def _same_layout_and_close(one: Path, two: Path, tol: dict[str, float]) -> None:
    """``two`` (two processes) has the files, tensors, shapes and scene order of ``one`` (one process, the latent
    caches aside), and its tensors are within ``tol[stage or "model"]`` of ``one``'s."""
    assert _files(two) == _files(one)
    m1, m2 = (json.loads((f / "manifest.json").read_text()) for f in (one, two))
    assert set(m2) == set(m1) | {"distributed"} and m2["distributed"]["world_size"] == 2
    for key in ("scene_ids", "n_views", "view_copies", "image_size", "image_storage", "bytes", "status"):
        assert m2[key] == m1[key], key
    assert m2["model"]["scenes"] == m1["model"]["scenes"]
    for rel in sorted(_files(one)):
        if not rel.endswith(".safetensors"):
            continue
        (a, meta_a), (b, meta_b) = _tensors(one / rel), _tensors(two / rel)
        assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}, rel
        assert meta_a.get("scene_ids") == meta_b.get("scene_ids"), rel
        t = next((v for k, v in tol.items() if k in rel), tol["model"])
        for k in a:
            torch.testing.assert_close(b[k], a[k], atol=t, rtol=t, msg=f"{rel}: {k}")


def test_train_in_two_processes_is_the_single_process_run(trained):
    reports = trained["reports"]
    ids = [f"tr{i:02d}" for i in range(5)]
    assert reports[1]["bank_scenes"] == ["tr01", "tr03"] and reports[0]["bank_scenes"] == ids
    assert reports[0]["shared"] == reports[1]["shared"], "the replicated parameters differ between the ranks"
    assert all(r["steps"] == {"warmup": 4, "joint": 2} for r in reports)
    c1, c2 = (json.loads((trained[k] / "config.json").read_text())["render"] for k in ("run", "run2"))
    assert c2 == c1, "the ray bounds derived from the cameras differ"
    _same_layout_and_close(trained["run"], trained["run2"], {"warmup": 1e-5, "model": 1e-4})


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.parts[-2] != "cache"}


def _tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def test_absent_rank_batches_are_covered(runs):
    cfg = runs["cfg"]
    owners = []
    for stage, n in (("exploit_fit", 6), ("exploit_finetune", 2)):
        for k in range(n):
            scenes = (batch_indices(20, 4, cfg.seed, stage, k) % 20) // 4  # 4 train views per scene
            owners.append({int(s) % 2 for s in scenes})
    assert {0} in owners and {1} in owners, "both ranks must be absent from some batch"


def test_two_processes_learn_every_scene_once_in_the_single_process_layout(runs):
    one, two, reports = runs["one"], runs["two"], runs["reports"]
    # Ownership: scene k on rank k % 2, disjoint; rank 0 ends with every scene (gathered to write them).
    assert reports[1]["bank_scenes"] == ["ex01", "ex03"]
    assert reports[0]["bank_scenes"] == IDS
    assert reports[0]["shared"] == reports[1]["shared"], "the replicated parameters differ between the ranks"
    # The refit of collapsed fits (training/refit.py) picks the same scenes from the whole batch's median and
    # refits each on its owner alone: the same scenes and update counts as one process.
    refit = {d: json.loads((d / "manifest.json").read_text())["stages"]["exploit_refit"] for d in (one, two)}
    assert [r["scene"] for r in refit[two]["scenes"]] == [r["scene"] for r in refit[one]["scenes"]]
    assert refit[two]["checked"] == refit[one]["checked"] == len(IDS)
    assert all(r["steps"] == {"exploit_fit": 6, "exploit_refit": refit[one]["steps"], "exploit_finetune": 2}
               for r in reports)

    # The same files (the caches aside: latents and image codes, one per rank), tensors, shapes and scene order as
    # one process, and the single-process updates up to float rounding (module docstring): tight after the fit,
    # wider once the decoder fine-tuning has amplified it.
    assert sorted(p.name for p in (two / "cache").iterdir()) == [
        "images-exploit-rank0of2.safetensors", "images-exploit-rank1of2.safetensors",
        "latents-exploit-rank0of2.safetensors", "latents-exploit-rank1of2.safetensors"]
    _same_layout_and_close(one, two, {"exploit_fit": 1e-5, "model": 2e-3})

    # Every scene learned: its parameters moved from the initialisation (the same in both runs).
    ae = load_run_autoencoder(runs["run"], "cpu")
    init = build_system(runs["cfg"], ae, IDS, seed_tag="exploit-init").bank.per_scene_state()
    final = load_exploited(two, "cpu").bank
    assert final.scene_ids == IDS
    learned = final.per_scene_state()
    for i, s in enumerate(IDS):
        for k in init:
            assert not torch.allclose(learned[k][i], init[k][i]), f"{s}: {k} never updated"


def test_a_rank_that_dies_mid_stage_resumes_with_the_same_world_size(runs):
    root, cut = runs["root"], runs["root"] / "cut"
    # Rank 1 raises at its 6th loss (fit step 5): the fit's checkpoint of step 4 is on disk, the batch unfinished.
    with pytest.raises(Exception):
        spawn_exploit(runs["run"], cut, runs["cfg"], runs["data"], root / "reports-cut", fail_rank=1, fail_after=5)
    state = json.loads((cut / "stages" / "exploit_fit" / "ckpt" / "state.json").read_text())
    assert (state["step"], state["done"]) == (4, False)
    assert json.loads((cut / "manifest.json").read_text())["status"] == "running"

    # Another world size is refused in one line, before anything is computed.
    with single_thread(), pytest.raises(RunError, match=r"with 1 process\(es\) where it started with 2"):
        exploit_3daae(runs["run"], cut, runs["cfg"], data_root=runs["data"], resume=True)

    reports = spawn_exploit(runs["run"], cut, runs["cfg"], runs["data"], root / "reports-resumed", resume=True)
    assert reports[0]["shared"] == reports[1]["shared"]
    m = json.loads((cut / "manifest.json").read_text())
    assert m["status"] == "done" and m["stages"]["exploit_fit"]["resumed_from"] == 4
    for rel in sorted(_files(runs["two"])):
        if rel.startswith("model/") and rel.endswith(".safetensors"):
            a, b = _tensors(runs["two"] / rel)[0], _tensors(cut / rel)[0]
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), rel


@pytest.mark.slow
def test_the_documented_torchrun_command_runs_with_two_cpu_processes(runs, tmp_path):
    """docs/scale.md "Many processes: torchrun": ``torchrun --standalone --nproc_per_node 2 -m
    latentscenes.cli.main -- exploit ...`` gives the batch the spawned processes gave (bit for bit)."""
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    out = tmp_path / "cli"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "latentscenes.cli.main", "--",
           "exploit", "--run", str(runs["run"]), "--data", str(runs["data"]), "--out", str(out), "--device", "cpu"]
    for s in SETS:
        cmd += ["--set", s]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "2 processes, backend gloo" in " ".join((r.stdout + r.stderr).split())
    for rel in ("model/shared.safetensors", "model/scenes/scenes-00000.safetensors"):
        a, b = _tensors(runs["two"] / rel)[0], _tensors(out / rel)[0]
        assert all(torch.equal(a[k], b[k]) for k in a), rel
    shutil.rmtree(out)


@pytest.mark.slow
def test_train_with_a_rank_killed_in_the_warmup_resumes_to_the_same_run(trained):
    root, cut = trained["root"], trained["root"] / "run-cut"
    # Rank 1 raises at its 4th loss (warm-up step 3): the warm-up's checkpoint of step 2 is on disk.
    with pytest.raises(Exception):
        spawn_exploit(None, cut, trained["cfg"], trained["data"], root / "reports-run-cut", kind="train",
                      fail_rank=1, fail_after=3)
    state = json.loads((cut / "stages" / "warmup" / "ckpt" / "state.json").read_text())
    assert (state["step"], state["done"]) == (2, False)
    spawn_exploit(None, cut, trained["cfg"], trained["data"], root / "reports-run-resumed", kind="train",
                  resume=True)
    m = json.loads((cut / "manifest.json").read_text())
    assert m["status"] == "done" and m["stages"]["warmup"]["resumed_from"] == 2
    for rel in ("model/shared.safetensors", "model/scenes/scenes-00000.safetensors"):
        a, b = _tensors(trained["run2"] / rel)[0], _tensors(cut / rel)[0]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), rel


@pytest.mark.parametrize("world_size", [2, 3])
def test_the_ranks_rows_of_a_batch_are_the_single_process_rows(world_size):
    """``Shard.local_rows`` with view copies (``data.shift_grid = 2``) and scenes of different view counts: the
    rows every rank takes of a batch, looked up in its own table, are the single-process batch's (scene, view,
    copy), each exactly once."""
    from latentscenes.training.data import build_view_table, shift_views
    from latentscenes.training.distributed import Shard, owned

    from helpers_3daae import sphere_scenes

    scenes = sphere_scenes(5, n_views=6, resolution=16)
    scenes[1].split[0] = "test"  # scene s01 has 3 train views, the others 4
    one = shift_views(build_view_table(scenes), 2)
    views = torch.bincount(one.scene_rows[: one.n_source_views]).tolist()
    assert views == [4, 3, 4, 4, 4] and one.copies == 4
    ids = [s.scene_id for s in scenes]
    tables = [shift_views(build_view_table([scenes[k] for k in owned(5, r, world_size)]), 2) for r in range(world_size)]
    shards = [Shard.build(r, world_size, ids, views, one.copies) for r in range(world_size)]

    def key(t, r):  # (scene, camera) of a row: the camera identifies the source view and the copy
        return t.scene_ids[int(t.scene_rows[r])], tuple(t.K[r].flatten().tolist()), tuple(t.c2w[r].flatten().tolist())

    for step in range(12):
        rows = batch_indices(len(one), 5, 0, "fit", step)
        want = sorted(key(one, r) for r in rows.tolist())
        got = sorted(key(t, r) for t, sh in zip(tables, shards) for r in sh.local_rows(rows).tolist())
        assert got == want
        assert sum(len(sh.local_rows(rows)) for sh in shards) == len(rows)
