"""--resume gives exactly the parameters of an uninterrupted run (same steps, same seed), at any stage."""

from __future__ import annotations

import pytest

import latentscenes.training.stages as stages
from latentscenes.training.pipeline import exploit_3daae, load_exploited, load_run_config, load_trained, train_3daae

from helpers_3daae import assert_same_params, params_of, small_config, sphere_scenes


class Interrupt(RuntimeError):
    """Stands for a crash / Ctrl-C in the middle of a stage."""


def _interrupt_after(monkeypatch, n_calls: int) -> None:
    real = stages.stage_losses
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] > n_calls:
            raise Interrupt(f"interrupted at loss call {calls['n']}")
        return real(*a, **k)

    monkeypatch.setattr(stages, "stage_losses", flaky)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Parameters after an uninterrupted training run (shared by the interrupted variants)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("full") / "run"
        train_3daae(small_config(warmup=2, joint=2), out, scenes=sphere_scenes(3))
        return params_of(load_trained(out, "cpu"))
    finally:
        torch.set_num_threads(n)


# warm-up has 6 steps and joint 4 in the test preset; checkpoints every 2 steps. A stage computes its loss once per
# step plus once after its last step (the final-state probe), and checkpoint k is written in step k, once the
# parameters it holds gave a finite loss: stopping at loss call 3 keeps warm-up checkpoint 2, at call 10 (6 + 1
# warm-up calls, joint steps 0-2) joint checkpoint 2.
@pytest.mark.parametrize("stop_after", [3, 10], ids=["in-warmup", "in-joint"])
def test_train_resume_equals_uninterrupted(tmp_path, monkeypatch, stop_after, uninterrupted):
    cfg = small_config(warmup=2, joint=2)
    full = uninterrupted

    with monkeypatch.context() as m:
        _interrupt_after(m, stop_after)
        with pytest.raises(Interrupt):
            train_3daae(cfg, tmp_path / "cut", scenes=sphere_scenes(3))
    res = train_3daae(cfg, tmp_path / "cut", scenes=sphere_scenes(3), resume=True)
    stage = "warmup" if stop_after < 6 else "joint"
    assert res["stages"][stage]["resumed_from"] == 2, res["stages"][stage]
    assert_same_params(full, params_of(load_trained(tmp_path / "cut", "cpu")))


def test_exploit_resume_equals_uninterrupted(tmp_path, monkeypatch):
    cfg = small_config()
    train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(3))
    ecfg = small_config(fit=2, finetune=2)
    new = sphere_scenes(2, "new", seed=1)
    exploit_3daae(tmp_path / "run", tmp_path / "full", ecfg, scenes=new)
    full = params_of(load_exploited(tmp_path / "full", "cpu"))
    with monkeypatch.context() as m:
        _interrupt_after(m, 6 + 1 + 3)  # fit: 6 steps + its probe; stop at fine-tuning step 3, after checkpoint 2
        with pytest.raises(Interrupt):
            exploit_3daae(tmp_path / "run", tmp_path / "cut", ecfg, scenes=new)
    res = exploit_3daae(tmp_path / "run", tmp_path / "cut", ecfg, scenes=new, resume=True)
    assert res["stages"]["exploit_finetune"]["resumed_from"] == 2
    assert_same_params(full, params_of(load_exploited(tmp_path / "cut", "cpu")))


def test_a_resumed_exploit_keeps_the_clocks_of_its_earlier_session(tmp_path, monkeypatch):
    """Wall and CPU clocks of a stage sum over sessions; the latent encoding of a resumed batch is the session's that
    wrote the cache (the benchmark's t_scene), not the 0 s of reusing the file."""
    import json

    run = tmp_path / "run"
    train_3daae(small_config(), run, scenes=sphere_scenes(2))
    cfg = small_config(fit=2, finetune=2)
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)  # exploit fit checkpoint 2 on disk
        with pytest.raises(Interrupt):
            exploit_3daae(run, tmp_path / "ex", cfg, scenes=sphere_scenes(3, "new", seed=5))
    state = json.loads((tmp_path / "ex" / "stages" / "exploit_fit" / "ckpt" / "state.json").read_text())
    before = state["result"]
    assert before["cpu_s"] > 0 and before["train_s"] > 0
    logged = [json.loads(line) for line in (tmp_path / "ex" / "metrics.jsonl").read_text().splitlines()]
    encoded = [e["seconds"] for e in logged if e.get("event") == "latent_cache"]
    assert len(encoded) == 1 and encoded[0] > 0
    res = exploit_3daae(run, tmp_path / "ex", cfg, scenes=sphere_scenes(3, "new", seed=5), resume=True)
    fit = res["stages"]["exploit_fit"]
    assert fit["resumed_from"] == 2
    assert fit["cpu_s"] > before["cpu_s"] and fit["train_s"] > before["train_s"]
    assert res["latent_cache_s"] == pytest.approx(encoded[0], abs=1e-4), "the cache was reused, not re-encoded"
    assert res["stages"]["exploit_refit"]["cpu_s"] >= 0 and res["stages"]["exploit_finetune"]["cpu_s"] > 0


def test_existing_run_needs_resume(tmp_path):
    from latentscenes.training.pipeline import RunError

    cfg = small_config()
    train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))
    with pytest.raises(RunError, match="--resume"):
        train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2))
    # resuming a finished run re-runs nothing and returns the stored results
    res = train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(2), resume=True)
    assert res["stages"]["joint"]["steps"] == cfg.joint.steps


def _file_bytes(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_of_a_finished_run_changes_no_file_and_refuses_changed_stages(tmp_path, monkeypatch):
    """Issue 11, defect 2: ``train --resume`` on a finished run rewrote model/shared.safetensors (its sha256 moved,
    breaking every exploit batch of the run) and wrote ``--set`` values into config.json though nothing re-ran."""
    from typer.testing import CliRunner

    from latentscenes.cli.main import app
    from helpers_3daae import write_sphere_dataset

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data, run = write_sphere_dataset(tmp_path / "data"), tmp_path / "run"
    runner = CliRunner()
    args = ["train", "--data", str(data), "--out", str(run), "--preset", "test", "--device", "cpu"]
    assert runner.invoke(app, args).exit_code == 0
    before = _file_bytes(run)
    r = runner.invoke(app, args + ["--resume"])
    assert r.exit_code == 0, r.output
    assert _file_bytes(run) == before
    r = runner.invoke(app, args + ["--resume", "--set", "warmup.steps=9"])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "warmup.steps: 6 -> 9" in text and "Traceback" not in text, text
    assert _file_bytes(run) == before


def test_resume_may_change_only_the_stage_that_has_not_finished(tmp_path, monkeypatch):
    import dataclasses

    from latentscenes.training.pipeline import RunError

    cfg = small_config(warmup=2, joint=2)
    with monkeypatch.context() as m:
        _interrupt_after(m, 10)  # warm-up finished, joint stopped after its checkpoint 2
        with pytest.raises(Interrupt):
            train_3daae(cfg, tmp_path / "cut", scenes=sphere_scenes(3))
    config_before = (tmp_path / "cut" / "config.json").read_bytes()
    warm = dataclasses.replace(cfg, warmup=dataclasses.replace(cfg.warmup, lr_mlp=1e-3))
    with pytest.raises(RunError, match=r"warmup\.lr_mlp"):
        train_3daae(warm, tmp_path / "cut", scenes=sphere_scenes(3), resume=True)
    seed = dataclasses.replace(cfg, seed=1)
    with pytest.raises(RunError, match="seed"):
        train_3daae(seed, tmp_path / "cut", scenes=sphere_scenes(3), resume=True)
    assert (tmp_path / "cut" / "config.json").read_bytes() == config_before
    joint = dataclasses.replace(cfg, joint=dataclasses.replace(cfg.joint, lr_mlp=1e-4))
    res = train_3daae(joint, tmp_path / "cut", scenes=sphere_scenes(3), resume=True)
    assert res["stages"]["joint"]["resumed_from"] == 2
    assert load_run_config(tmp_path / "cut").joint.lr_mlp == 1e-4


def test_resume_of_a_finished_exploit_batch_changes_no_file(tmp_path, monkeypatch):
    """Issue 11, defect 2 for ``exploit``: ``--resume`` of a finished batch re-wrote its model, manifest, config and
    metrics; a ``--set`` of a finished stage must be an error, not a silent change of config.json."""
    from typer.testing import CliRunner

    from latentscenes.cli.main import app
    from helpers_3daae import write_sphere_dataset

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data, run, batch = write_sphere_dataset(tmp_path / "data"), tmp_path / "run", tmp_path / "batch"
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--data", str(data), "--out", str(run), "--preset", "test", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    args = ["exploit", "--run", str(run), "--out", str(batch), "--device", "cpu"]
    assert runner.invoke(app, args).exit_code == 0
    before = _file_bytes(batch)
    r = runner.invoke(app, args + ["--resume"])
    assert r.exit_code == 0, r.output
    assert _file_bytes(batch) == before
    r = runner.invoke(app, args + ["--resume", "--set", "exploit.finetune.steps=2"])  # fewer: refused (more: continues)
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "exploit.finetune.steps: 4 -> 2" in text and "Traceback" not in text, text
    assert _file_bytes(batch) == before


def test_a_run_saved_before_a_config_key_existed_resumes(tmp_path, monkeypatch):
    """A key a newer version added (absent from the saved config.json) ran with its default: resuming the
    older run must not read it as a change of a finished stage."""
    import json

    cfg = small_config(warmup=2, joint=2)
    with monkeypatch.context() as m:
        _interrupt_after(m, 10)  # warm-up finished, joint interrupted
        with pytest.raises(Interrupt):
            train_3daae(cfg, tmp_path / "cut", scenes=sphere_scenes(3))
    p = tmp_path / "cut" / "config.json"
    saved = json.loads(p.read_text())
    del saved["render"]["supersample"], saved["data"]["shift_grid"]  # as written before these keys existed
    p.write_text(json.dumps(saved))
    res = train_3daae(cfg, tmp_path / "cut", scenes=sphere_scenes(3), resume=True)
    assert res["stages"]["joint"]["resumed_from"] == 2


def test_a_finished_run_continued_for_more_steps_equals_the_longer_run(tmp_path, uninterrupted):
    """``train --resume --set joint.steps=N`` with N above a finished run's: the last stage continues from its
    final checkpoint and gives exactly the parameters of a run started with N (per-epoch schedule, per-step
    batches); an earlier stage's count stays fixed."""
    import dataclasses

    from latentscenes.training.pipeline import RunError

    cfg = small_config(warmup=2, joint=2)
    short = dataclasses.replace(cfg, joint=dataclasses.replace(cfg.joint, steps=2))
    train_3daae(short, tmp_path / "run", scenes=sphere_scenes(3))
    more_warmup = dataclasses.replace(cfg, warmup=dataclasses.replace(cfg.warmup, steps=cfg.warmup.steps + 2))
    with pytest.raises(RunError, match=r"warmup\.steps"):
        train_3daae(more_warmup, tmp_path / "run", scenes=sphere_scenes(3), resume=True)
    res = train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(3), resume=True)
    assert res["stages"]["joint"]["resumed_from"] == 2 and res["stages"]["joint"]["steps"] == cfg.joint.steps == 4
    assert load_run_config(tmp_path / "run").joint.steps == 4
    assert_same_params(params_of(load_trained(tmp_path / "run", "cpu")), uninterrupted)


@pytest.mark.parametrize("stop_after, allowed", [(3, False), (7, True), (10, False)],
                         ids=["in-warmup", "between-stages", "in-joint"])
def test_view_copies_may_change_between_stages_not_inside_one(tmp_path, monkeypatch, stop_after, allowed):
    """scripts/ship_3daae.sh runs the warm-up with one view per latent grid and the joint stage with 2 x 2 offsets
    (config.json edited before ``--resume``); a stage with a checkpoint that has not finished keeps its views."""
    import dataclasses
    import json

    from latentscenes.training.pipeline import RunError

    cfg = small_config(warmup=2, joint=2)
    with monkeypatch.context() as m:
        _interrupt_after(m, stop_after)  # 7: the warm-up finished (6 + 1 calls), the joint stage has no checkpoint
        with pytest.raises(Interrupt):
            train_3daae(cfg, tmp_path / "run", scenes=sphere_scenes(3))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    saved["data"]["shift_grid"] = 2
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    shifted = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, shift_grid=2))
    if not allowed:
        with pytest.raises(RunError, match="4 view copies where it started with 1"):
            train_3daae(shifted, tmp_path / "run", scenes=sphere_scenes(3), resume=True)
        return
    res = train_3daae(shifted, tmp_path / "run", scenes=sphere_scenes(3), resume=True)
    assert res["stages"]["joint"]["view_copies"] == 4 and res["stages"]["joint"]["resumed_from"] == 0
