"""The whole ``latentscenes bench --preset test`` on a tiny generated dataset, and the accounting checked
against the files it saved. No timing thresholds."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from latentscenes.bench import accounting as acc
from latentscenes.cli.main import app


@pytest.fixture(scope="module")
def bench_out(sphere_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_out")
    # One thread: the tiny test sizes gain nothing from more, and a shared CI machine makes OpenMP threads
    # wait for each other (measured: 5 s with 1 thread vs 37 s with 2 under load for one training run).
    threads = torch.get_num_threads()
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    try:
        res = CliRunner().invoke(app, ["bench", "--preset", "test", "--data", str(sphere_dataset), "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
        mp.undo()
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out


def _results(out):
    return json.loads((out / "results.json").read_text())


def test_bench_writes_every_output(bench_out):
    for name in ("results.json", "summary.md", "fig6_time_to_quality.png", "fig7_total_time.png", "table1_costs.png"):
        assert (bench_out / name).stat().st_size > 0, name
    r = _results(bench_out)
    assert r["machine"]["cpu_model"] and r["machine"]["versions"]["torch"]
    keys = {row["key"] for row in r["table2"]["rows"]}
    assert keys == {"ours", "ours-micro", "ours-macro", "ours-no-prior", "plain-ae", "rgb", "rgb-macro"}
    for row in r["table2"]["rows"]:
        for g in ("train", "exploit"):
            assert math.isfinite(row[g]["psnr"]) and row[g]["n_scenes"] >= 1
    assert r["time_to_quality"]["ours_curve"]["psnr"] and r["time_to_quality"]["rgb_curve"]["psnr"]
    assert len(r["fig7"]["ours_s"]) == len(r["fig7"]["n_exploit"])
    # one metric path: the RGB fits' own figures (taken by the evaluation protocol on the live tensors) equal the
    # benchmark's evaluation of the files they saved
    for m in ("rgb", "rgb-macro"):
        for rec in r["rgb_results"][m]["scenes"]:
            ev = r["evaluations"][m]["scenes"][rec["scene_id"]]["mean"]["psnr"]
            assert rec["psnr"] == pytest.approx(ev, abs=1e-3), (m, rec["scene_id"])
    md = (bench_out / "summary.md").read_text()
    assert "Table 1" in md and "Table 2" in md
    # the fidelity diagnosis: AE ceilings through the stages, the consistency probe of both autoencoders
    d = r["diagnosis"]
    assert set(d["ae_ceiling"]) == {"base", "after_joint", "after_exploit_finetune"}
    assert all(math.isfinite(v["mean_psnr"]) for v in d["ae_ceiling"].values())
    assert set(d["probe"]) == {"base (plain AE)", "ours (3Da-AE)"}
    for v in d["probe"].values():
        assert v["n_scenes"] == 2 and v["consistency_gap_db"] == pytest.approx(v["ae_psnr"] - v["probe_psnr"])
    assert "consistency probe" in md and "paired-bootstrap" in md


def test_eq9_eq11_recomputed_from_the_measured_parts(bench_out):
    r = _results(bench_out)
    t1 = r["table1"]["ours"]
    tm, mm = t1["time"], t1["memory"]
    n = tm["n_exploit"]
    st = r["stage_results"]
    tr, ex = st["ours/train"], st["ours/exploit"]
    # the parts are the stages' own clocks (+ the Encode-Scene caching our method pays for)
    assert tm["t_warmup"] == pytest.approx(tr["latent_cache_s"] + tr["stages"]["warmup"]["train_s"])
    assert tm["t_train"] == pytest.approx(tr["stages"]["joint"]["train_s"])
    # fitting the scenes = encoding them, the fit, and the refit of collapsed fits (training/refit.py)
    assert tm["t_exploit"] == pytest.approx(ex["latent_cache_s"] + ex["stages"]["exploit_fit"]["train_s"]
                                            + ex["stages"]["exploit_refit"]["train_s"])
    assert tm["t_exploit_ft"] == pytest.approx(ex["stages"]["exploit_finetune"]["train_s"])
    t_ec = tm["t_warmup"] + tm["t_train"]
    t_scene = (tm["t_exploit"] + tm["t_exploit_ft"]) / n
    assert tm["t_ec"] == pytest.approx(t_ec)
    assert tm["t_scene"] == pytest.approx(t_scene)
    assert tm["t_scene_eff"] == pytest.approx(t_ec / n + t_scene)  # Eq. 9
    assert t1["time_ref"]["t_scene_eff"] == pytest.approx(t_ec / 1000 + t_scene)
    m_ec = mm["m_e"] + mm["m_d"] + mm["m_b"] + mm["m_shared_other"]
    m_scene = (mm["m_t"] + mm["m_w"]) / n
    assert mm["m_ec"] == m_ec
    assert mm["m_scene_eff"] == pytest.approx(m_ec / n + m_scene)  # Eq. 11
    assert t1["memory_ref"]["m_scene_eff"] == pytest.approx(m_ec / 1000 + m_scene)
    rgb = r["table1"]["rgb"]
    assert rgb["t_scene_s"] == pytest.approx(sum(s["time_s"] for s in r["rgb_results"]["rgb"]["scenes"]) / rgb["n_scenes"])
    # the CPU-time columns: the same parts measured with the process's CPU clock
    cpu = r["table1"]["cpu_time"]
    stage_cpu = [ex["stages"][k]["cpu_s"] for k in ("exploit_fit", "exploit_refit", "exploit_finetune")]
    assert all(c is not None and c >= 0 for c in stage_cpu) and sum(stage_cpu) > 0
    assert cpu["ours_t_scene_cpu_s"] == pytest.approx(sum(stage_cpu) / n)
    rgb_cpu = [s["cpu_time_s"] for s in r["rgb_results"]["rgb"]["scenes"]]
    assert all(c > 0 for c in rgb_cpu) and cpu["rgb_t_scene_cpu_s"] == pytest.approx(sum(rgb_cpu) / len(rgb_cpu))
    assert cpu["ours_t_ec_cpu_s"] > 0  # the test preset trains its 3Da-AE here: Eq. 9 on CPU time as on wall time
    assert cpu["ours_t_scene_eff_ref_cpu_s"] == pytest.approx(cpu["ours_t_ec_cpu_s"] / 1000 + cpu["ours_t_scene_cpu_s"])


def test_bytes_counted_equal_the_tensors_saved(bench_out):
    r = _results(bench_out)
    runs = bench_out / "runs" / "ours"
    mm = r["table1"]["ours"]["memory"]
    run_shared = load_file(str(runs / "train" / "model" / "shared.safetensors"))
    ex_shared = load_file(str(runs / "exploit" / "model" / "shared.safetensors"))
    enc = sum(acc.tensor_bytes(t) for k, t in run_shared.items() if k.startswith(("vae.encoder.", "vae.quant_conv.")))
    dec = sum(acc.tensor_bytes(t) for k, t in ex_shared.items() if k.startswith(("vae.decoder.", "vae.post_quant_conv.")))
    assert mm["m_e"] == enc and mm["m_d"] == dec
    assert mm["m_b"] == acc.tensor_bytes(ex_shared["global_planes"])
    other = sum(acc.tensor_bytes(t) for k, t in ex_shared.items() if k.startswith("mlp.") or k == "latent_background")
    assert mm["m_shared_other"] == other
    shards = [load_file(str(p)) for p in sorted((runs / "exploit" / "model" / "scenes").glob("*.safetensors"))]
    assert mm["m_t"] == sum(acc.tensor_bytes(s["local"]) for s in shards)
    assert mm["m_w"] == sum(acc.tensor_bytes(s["coefs"]) for s in shards)
    # every tensor of the exploit batch's files is counted once (nothing saved goes uncounted)
    total = enc + sum(acc.tensor_bytes(t) for t in ex_shared.values()) + sum(acc.tensors_bytes(s) for s in shards)
    assert total == mm["m_e"] + mm["m_d"] + mm["m_b"] + mm["m_shared_other"] + mm["m_t"] + mm["m_w"]
    assert all(r["table1"]["bytes_check"].values()), r["table1"]["bytes_check"]
    # the RGB baseline's bytes are the tensors of its saved files
    files = sorted((bench_out / "runs" / "rgb" / "scenes").glob("*.safetensors"))
    saved = sum(acc.tensors_bytes(load_file(str(p))) for p in files)
    assert r["table1"]["rgb"]["bytes_total"] == saved
    assert r["table1"]["rgb"]["m_scene_bytes"] == pytest.approx(saved / r["table1"]["rgb"]["n_scenes"])


def test_render_latency_is_measured_for_both(bench_out):
    r = _results(bench_out)
    o, b = r["table1"]["ours"]["render"], r["table1"]["rgb"]["render"]
    assert o["n"] >= 1 and b["n"] >= 1
    assert o["latent_resolution"] == [4, 4] and o["resolution"] == [32, 32]
    assert o["median_ms"] > 0 and b["median_ms"] > 0


@pytest.mark.slow
def test_resume_reuses_finished_runs(bench_out, sphere_dataset, tmp_path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(bench_out, out)
    before = _results(out)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = CliRunner().invoke(app, ["bench", "--resume", "--data", str(sphere_dataset), "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert res.exit_code == 0, res.output + repr(res.exception)
    after = _results(out)
    assert after["config"] == before["config"]  # --resume picks up OUT/config.json
    assert after["table1"]["ours"]["time"] == before["table1"]["ours"]["time"]
    assert after["table1"]["ours"]["memory"] == before["table1"]["ours"]["memory"]
    assert after["table1"]["rgb"]["t_scene_s"] == before["table1"]["rgb"]["t_scene_s"]
    assert any("resumed benchmark" in n for n in after["notes"])


def test_bench_in_parts_keeps_each_parts_records(sphere_dataset, tmp_path):
    """``--only`` parts side by side into one --out, then ``--resume`` for the tables: each reused phase keeps the
    time and memory figures of the process that ran it, and Table 1 is built from them."""
    out = tmp_path / "parts"
    base = ["bench", "--preset", "test", "--data", str(sphere_dataset), "--out", str(out), "--resume"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bad = CliRunner().invoke(app, base + ["--only", "nerf"])
        assert bad.exit_code == 2 and "nerf" in bad.output
        for part in (["--only", "rgb", "--only", "ours"], ["--only", "plain-ae", "--only", "ours-micro"]):
            res = CliRunner().invoke(app, base + part)
            assert res.exit_code == 0, res.output + repr(res.exception)
            assert not (out / "results.json").exists()  # a part writes no tables
        saved = {m: json.loads((out / "runs" / m / "phases.json").read_text()) for m in ("rgb", "ours", "plain-ae")}
        assert set(saved["ours"]) == {"ours/train", "ours/exploit", "ours/relearn"}
        # the rest (ours-macro, ours-no-prior, rgb-macro) runs in the process that writes the tables
        res = CliRunner().invoke(app, ["bench", "--resume", "--data", str(sphere_dataset), "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert res.exit_code == 0, res.output + repr(res.exception)
    r = _results(out)
    for m, records in saved.items():
        for name, rec in records.items():
            ph = r["phases"][name]
            assert ph["extra"]["resumed"] and ph["extra"]["record_from"].endswith(f"{m}/phases.json")
            assert ph["rss_peak_bytes"] == rec["rss_peak_bytes"] and ph["wall_s"] == rec["wall_s"]
    assert not r["phases"]["ours-macro/train"]["extra"].get("resumed")  # ran here, not reused
    assert r["table1"]["rgb"]["peak_rss_bytes"] == saved["rgb"]["rgb/fit"]["rss_peak_bytes"]
    assert any("earlier process" in n for n in r["notes"])
