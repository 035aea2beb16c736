"""Crash consistency (issue 11, "Also deliver"): ``train`` and ``exploit`` killed with SIGKILL at named points,
inside checkpoint swaps included, leave only files that load, ``--resume`` finishes, and the final weights are
bit-identical to an uninterrupted run's.

The kill points are set with ``LATENTSCENES_CRASH_AT`` (``latentscenes/utils/crash.py``): the process kills itself
with SIGKILL there, so no ``finally`` block, ``atexit`` handler or buffered write runs, as with ``kill -9``.
The default variant forks this test process and runs the command in the child (a fresh interpreter spends ~20 s
importing torch and diffusers on the project's busy 2-core machine); the slow variant runs
``python -m latentscenes.cli.main`` as a separate process. Resumes run in this process, through the CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from latentscenes.cli.main import app
from latentscenes.training.pipeline import load_exploited, load_trained
from latentscenes.utils.crash import ENV

from helpers_3daae import assert_same_params, params_of, single_thread, write_sphere_dataset

REPO = Path(__file__).resolve().parents[2]
STAGES = ["--set", "warmup.steps=3", "--set", "joint.steps=2", "--set", "warmup.checkpoint_every=1",
          "--set", "joint.checkpoint_every=1"]
EXPLOIT_STAGES = ["--set", "exploit.fit.steps=3", "--set", "exploit.finetune.steps=2",
                  "--set", "exploit.fit.checkpoint_every=1", "--set", "exploit.finetune.checkpoint_every=1"]


def train_args(data: Path, out: Path) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--preset", "test", "--device", "cpu", *STAGES]


def exploit_args(run: Path, out: Path) -> list[str]:
    return ["exploit", "--run", str(run), "--out", str(out), "--device", "cpu", *EXPLOIT_STAGES]


@pytest.fixture(autouse=True)
def _one_omp_thread(monkeypatch):
    # The CLI keeps a user's OMP_NUM_THREADS; the reference and the resumed runs must use the same thread count.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A dataset, an uninterrupted training run of it and an uninterrupted exploit batch of that run."""
    with single_thread():
        tmp = tmp_path_factory.mktemp("crash-ref")
        data = write_sphere_dataset(tmp / "data")
        with pytest.MonkeyPatch.context() as m:
            m.setenv("OMP_NUM_THREADS", "1")
            _cli(train_args(data, tmp / "run"))
        return {"data": data, "run": tmp / "run", "params": params_of(load_trained(tmp / "run", "cpu"))}


@pytest.fixture(scope="module")
def exploit_reference(reference):
    out = reference["run"].parent / "batch"
    with pytest.MonkeyPatch.context() as m:
        m.setenv("OMP_NUM_THREADS", "1")
        _cli(exploit_args(reference["run"], out))
    return params_of(load_exploited(out, "cpu"))


def _cli(args: list[str]) -> None:
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output + repr(r.exception)


def _killed_in_fork(args: list[str], point: str) -> None:
    """The default suite's kills: a separate process too. (A forked child of the pytest process deadlocks once
    torch's OpenMP thread pool has been started by an earlier test: a fork copies the pool's locks, not its
    threads. It passed alone and hung in the full suite.)"""
    _killed_in_process(args, point)


def _killed_in_process(args: list[str], point: str) -> None:
    """Run ``python -m latentscenes.cli.main ARGS`` as a separate process that SIGKILLs itself at ``point``."""
    env = {**os.environ, ENV: point, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "latentscenes.cli.main", *args], env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == -signal.SIGKILL, f"{point}: exit code {r.returncode}, point never reached?\n{r.stderr}"


def check_visible_files_load(folder: Path) -> None:
    """Every file under its final name (no dot-named part: temporaries and aside copies are recovery's) loads."""
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".jsonl":
            for line in p.read_text().splitlines():
                json.loads(line)
        elif p.suffix == ".safetensors":
            load_file(str(p))
        else:
            raise AssertionError(f"{rel}: a file of unexpected kind in a run folder")


def check_no_leftovers(folder: Path) -> None:
    left = [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".old")]
    assert not left, left


def last_resume(out: Path) -> dict[str, object]:
    """What the last ``--resume`` did per stage (from metrics.jsonl): ``"done"`` (finished before, skipped) or
    the step it continued from (0: from the start)."""
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    start = max(i for i, e in enumerate(events) if e.get("event") == "start" and e.get("resume"))
    done = {}
    for e in events[start:]:
        if e["event"] == "stage_skipped":
            done[e["stage"]] = "done"
        elif e["event"] == "stage_done":
            done[e["stage"]] = e["resumed_from"]
    return done


def kill_and_resume(args: list[str], points: list[str], kill) -> Path:
    """Kill the command at ``points[0]``, then each ``--resume`` at the next point; finally resume to the end."""
    out = Path(args[args.index("--out") + 1])
    for i, point in enumerate(points):
        kill(args + (["--resume"] if i else []), point)
        check_visible_files_load(out)
    _cli(args + ["--resume"])
    check_no_leftovers(out)
    return out


# Warm-up writes checkpoints after steps 1, 2 and 3 (the last one final), joint after steps 1 and 2, each one
# step late (once the next batch's loss vouched for it): the first swap with an old checkpoint to put aside is
# each stage's second write. Each case: the kill points (one per run: the first run, then each --resume) and what
# the last --resume must find per stage: "done", or the step it continues from (0: the stage's start). Weights
# alone cannot tell a lost checkpoint (the replay from an older one is bit-identical): the steps can. The double
# fault is issue 11's: killed between the two renames, then the resumed run killed inside its next swap.
SHORT = {
    "inside-swap": (["checkpoint.aside:warmup@1"], {"warmup": 2, "joint": 0}),
    "double-fault": (["checkpoint.aside:warmup@1", "checkpoint.swapped:warmup@1"], {"warmup": "done", "joint": 0}),
}


@pytest.mark.parametrize("points, resumed", list(SHORT.values()), ids=list(SHORT))
def test_train_killed_then_resumed_equals_uninterrupted(tmp_path, reference, points, resumed):
    out = kill_and_resume(train_args(reference["data"], tmp_path / "run"), points, _killed_in_fork)
    assert last_resume(out) == resumed
    assert_same_params(reference["params"], params_of(load_trained(out, "cpu")))


BOTH_DONE = {"warmup": "done", "joint": "done"}
TRAIN_POINTS = {
    "marker-written": (["atomic.written:latentscenes.json"], {"warmup": 0, "joint": 0}),
    "config-written": (["atomic.written:config.json"], {"warmup": 0, "joint": 0}),
    "latent-cache-written": (["atomic.written:latents-train"], {"warmup": 0, "joint": 0}),
    "first-checkpoint-written": (["checkpoint.written:warmup@1"], {"warmup": 1, "joint": 0}),
    "warmup-between-renames": (["checkpoint.aside:warmup@1"], {"warmup": 2, "joint": 0}),
    "warmup-swapped": (["checkpoint.swapped:warmup@2"], {"warmup": 2, "joint": 0}),
    "warmup-final-between-renames": (["checkpoint.aside:warmup@2"], {"warmup": "done", "joint": 0}),
    "mid-warmup-step": (["stage.step:warmup:2"], {"warmup": 1, "joint": 0}),
    "mid-joint-step": (["stage.step:joint:1"], {"warmup": "done", "joint": 0}),
    "manifest-after-warmup": (["atomic.written:run/manifest.json@2"], {"warmup": "done", "joint": 0}),
    "joint-between-renames": (["checkpoint.aside:joint@1"], BOTH_DONE),
    "model-shared-written": (["atomic.written:model/shared.safetensors"], BOTH_DONE),
    "model-scenes-written": (["atomic.written:model/scenes/"], BOTH_DONE),
    "final-manifest": (["atomic.written:run/manifest.json@3"], BOTH_DONE),
    "double-fault-warmup": (["checkpoint.aside:warmup@1", "checkpoint.swapped:warmup@1"], {"warmup": "done", "joint": 0}),
    "three-kills": (["checkpoint.aside:warmup@1", "checkpoint.aside:warmup@1", "checkpoint.aside:joint@1"], BOTH_DONE),
}


@pytest.mark.slow
@pytest.mark.parametrize("points, resumed", list(TRAIN_POINTS.values()), ids=list(TRAIN_POINTS))
def test_train_process_killed_then_resumed_equals_uninterrupted(tmp_path, reference, points, resumed):
    out = kill_and_resume(train_args(reference["data"], tmp_path / "run"), points, _killed_in_process)
    assert last_resume(out) == resumed
    assert_same_params(reference["params"], params_of(load_trained(out, "cpu")))


EXPLOIT_POINTS = {
    "fit-between-renames": (["checkpoint.aside:exploit_fit@1"], {"exploit_fit": 2, "exploit_finetune": 0}),
    "mid-finetune-step": (["stage.step:exploit_finetune:1"], {"exploit_fit": "done", "exploit_finetune": 0}),
    "finetune-swapped": (["checkpoint.swapped:exploit_finetune@1"], {"exploit_fit": "done", "exploit_finetune": 1}),
    "model-shared-written": (["atomic.written:model/shared.safetensors"],
                             {"exploit_fit": "done", "exploit_finetune": "done"}),
    "double-fault-fit": (["checkpoint.aside:exploit_fit@1", "checkpoint.swapped:exploit_fit@1"],
                         {"exploit_fit": "done", "exploit_finetune": 0}),
}


@pytest.mark.slow
@pytest.mark.parametrize("points, resumed", list(EXPLOIT_POINTS.values()), ids=list(EXPLOIT_POINTS))
def test_exploit_process_killed_then_resumed_equals_uninterrupted(tmp_path, reference, exploit_reference, points,
                                                                  resumed):
    run_before = {p: p.read_bytes() for p in reference["run"].rglob("*") if p.is_file()}
    out = kill_and_resume(exploit_args(reference["run"], tmp_path / "batch"), points, _killed_in_process)
    assert last_resume(out) == resumed
    assert_same_params(exploit_reference, params_of(load_exploited(out, "cpu")))
    assert {p: p.read_bytes() for p in reference["run"].rglob("*") if p.is_file()} == run_before
