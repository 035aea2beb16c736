"""Table assembly from measured parts, and the Markdown/PNG report, on synthetic measurements."""

from __future__ import annotations

import pytest

from latentscenes.bench import accounting as acc
from latentscenes.bench.report import summary_markdown, write_report
from latentscenes.bench.tables import build_fig7, build_table1, build_table2, build_time_to_quality


def _ev(psnrs: dict[str, tuple[str, float]]) -> dict:
    scenes = {s: {"group": g, "mean": {"psnr": p, "ssim": p / 40}} for s, (g, p) in psnrs.items()}
    groups = {}
    for g in ("train", "exploit"):
        ps = [p for (gg, p) in psnrs.values() if gg == g]
        groups[g] = {"n_scenes": len(ps), "n_views": 2 * len(ps), "mean": {"psnr": sum(ps) / len(ps), "ssim": sum(ps) / len(ps) / 40, "ae_psnr": 30.0}}
    return {"groups": groups, "scenes": scenes}


def _results() -> dict:
    ours = {
        "t_warmup_s": 60.0, "t_train_s": 90.0, "t_exploit_s": 40.0, "t_exploit_ft_s": 8.0, "n_exploit": 4,
        "bytes": {"m_e": 1000, "m_d": 2000, "m_b": 400, "m_shared_other": 50, "m_t": 4 * 300, "m_w": 4 * 8},
        "render": {"median_ms": 5.0, "render_median_ms": 2.0, "decode_median_ms": 3.0, "n": 4},
        "peak_rss_bytes": 500_000_000,
    }
    rgb = {"fit_s": 200.0, "n_scenes": 2, "bytes_total": 2 * 1200, "render": {"median_ms": 20.0, "n": 4}, "peak_rss_bytes": 600_000_000}
    t1 = build_table1(ours, rgb, n_ref=1000, render_resolution=128)
    ttq = build_time_to_quality(
        {"t_s": [0.0, 20.0, 48.0], "psnr": [10.0, 20.0, 25.0]}, 4, t1["ours"]["time"]["t_ec"],
        [{"t_s": [10.0, 50.0, 100.0], "psnr": [12.0, 20.0, 22.0]}, {"t_s": [10.0, 50.0, 100.0], "psnr": [14.0, 22.0, 24.0]}],
        n_ref=1000,
    )
    f7 = build_fig7(t1["ours"]["time"]["t_ec"], t1["ours"]["time"]["t_scene"], t1["rgb"]["t_scene_s"], [1, 10, 100])
    evs = {
        "ours": _ev({"a": ("train", 20.0), "b": ("exploit", 22.0), "c": ("exploit", 24.0)}),
        "rgb": _ev({"a": ("train", 21.0), "b": ("exploit", 23.0)}),
    }
    t2 = build_table2(evs, {"train": ["a"], "exploit": ["b"]})
    return {
        "command": "latentscenes bench --preset test",
        "started_utc": "now",
        "wall_s": 1.0,
        "config": {"name": "test"},
        "data": {"root": "x", "resolution": 32},
        "machine": {"cpu_model": "cpu", "usable_cores": 2, "versions": {"torch": "2"}, "load_average_at_start": [0.1, 0.2, 0.3]},
        "phases": {"ours/warmup": {"wall_s": 60.0, "cpu_s": 100.0, "rss_peak_bytes": 1e8, "load_average_end": [1, 1, 1]}},
        "table1": t1, "table2": t2, "time_to_quality": ttq, "fig7": f7,
    }


def test_table1_applies_eq8_to_eq11_to_the_measured_parts():
    r = _results()
    o = r["table1"]["ours"]
    assert o["time"]["t_ec"] == 150.0
    assert o["time"]["t_scene"] == pytest.approx(12.0)
    assert o["time"]["t_scene_eff"] == pytest.approx(150.0 / 4 + 12.0)
    assert o["time_ref"]["t_scene_eff"] == pytest.approx(150.0 / 1000 + 12.0)
    assert o["memory"]["m_ec"] == 3450
    assert o["memory"]["m_scene"] == pytest.approx(308.0)
    assert o["memory_ref"]["m_scene_eff"] == pytest.approx(3450 / 1000 + 308.0)
    rgb = r["table1"]["rgb"]
    assert rgb["t_scene_s"] == 100.0 and rgb["m_scene_bytes"] == 1200.0
    assert r["table1"]["relative"]["render_ms"] == pytest.approx(-0.75)
    assert r["table1"]["break_even_n_exploit"] == pytest.approx(150.0 / (100.0 - 12.0))
    assert r["fig7"]["ours_s"][1] == pytest.approx(150.0 + 120.0) and r["fig7"]["rgb_s"][1] == pytest.approx(1000.0)


def test_time_to_quality_and_table2():
    r = _results()
    q = r["time_to_quality"]
    assert q["ours_curve"]["t_s"] == [0.0, 5.0, 12.0]
    assert q["rgb_final_psnr"] == pytest.approx(23.0)
    assert q["ours_time_to_rgb_final_s"] == pytest.approx(acc.time_to_reach([0.0, 5.0, 12.0], [10.0, 20.0, 25.0], 23.0))
    rows = {row["key"]: row for row in r["table2"]["rows"]}
    assert rows["ours"]["exploit"]["psnr"] == pytest.approx(23.0)
    assert rows["ours"]["exploit_on_rgb_scenes"]["psnr"] == pytest.approx(22.0)
    assert rows["rgb"]["train"]["psnr"] == pytest.approx(21.0)
    # scene counts are the latent methods' (2 exploit scenes), and the RGB subset's are counted apart,
    # also when the RGB evaluation comes first in the dict (as in the runner)
    evs = {"rgb": _ev({"a": ("train", 21.0), "b": ("exploit", 23.0)}),
           "ours": _ev({"a": ("train", 20.0), "b": ("exploit", 22.0), "c": ("exploit", 24.0)})}
    n = build_table2(evs, {"train": ["a"], "exploit": ["b"]})["n_scenes"]
    assert n == {"train": 1, "exploit": 2, "rgb_train": 1, "rgb_exploit": 1}


def test_report_writes_markdown_and_pngs(tmp_path):
    r = _results()
    files = write_report(r, tmp_path)
    for name in ("summary", "fig6_time_to_quality", "fig7_total_time", "table1_costs"):
        assert files[name].exists() and files[name].stat().st_size > 0
    md = summary_markdown(r)
    assert "Table 1" in md and "Tri-Planes (RGB)" in md and "t_scene_eff at N_exploit=1000" in md
    assert files["fig6_time_to_quality"].read_bytes()[:4] == b"\x89PNG"
    assert "| ours/warmup | 60.0 | 100.0 | 100 |" in md and "resumed benchmark" not in md


def test_report_marks_the_phases_a_resumed_benchmark_reused():
    # A reused phase has no clock or memory of this process: its row must not show 0 s and this process's RSS.
    r = _results()
    r["phases"]["ours/exploit"] = {"wall_s": 0.0, "cpu_s": 0.0, "rss_peak_bytes": 6e8, "load_average_end": [1, 1, 1],
                                   "extra": {"resumed": True}}
    md = summary_markdown(r)
    assert "| ours/exploit | reused | reused | - | - |" in md
    assert "| ours/warmup | 60.0 | 100.0 | 100 |" in md
    assert "in this session (a resumed benchmark" in md


def test_table2_differences_pair_scenes_and_bound_the_difference():
    from latentscenes.bench.report import table2_markdown
    from latentscenes.bench.tables import build_table2

    def ev(vals, group="exploit"):
        return {"groups": {group: {"mean": {"psnr": sum(vals.values()) / len(vals), "ssim": 0.9},
                                   "n_scenes": len(vals), "n_views": 4 * len(vals)}},
                "scenes": {s: {"group": group, "mean": {"psnr": v, "ssim": 0.9}} for s, v in vals.items()}}

    ours = {f"e{i}": 22.0 + 0.3 * i for i in range(6)}
    plain = {k: v - 2.0 + (0.2 if i % 2 else -0.2) for i, (k, v) in enumerate(ours.items())}
    rgb = {k: v + 1.0 for k, v in list(ours.items())[:3]}
    t2 = build_table2({"ours": ev(ours), "plain-ae": ev(plain), "rgb": ev(rgb)}, {"exploit": list(rgb), "train": []})
    d = {x["vs"]: x for x in t2["differences"]}
    assert d["plain-ae"]["n_scenes"] == 6 and d["plain-ae"]["diff"] == pytest.approx(2.0)
    assert d["plain-ae"]["lo"] > 1.0  # every scene is better by 1.8-2.2 dB: the interval excludes 0
    assert d["rgb"]["n_scenes"] == 3 and d["rgb"]["diff"] == pytest.approx(-1.0)
    md = table2_markdown({"table2": t2})
    assert "paired-bootstrap" in md and "+2.00" in md


def test_time_to_quality_text_when_a_curve_never_gets_there() -> None:
    from latentscenes.bench.report import time_to_quality_markdown

    q = {"n_ref": 1000, "rgb_final_psnr": 27.22, "rgb_final_time_s": 232.3, "ours_final_psnr": 27.29,
         "ours_final_time_s": 235.2, "ours_time_to_rgb_final_s": 226.9, "ours_eff_time_to_rgb_final_s": 258.9,
         "rgb_time_to_ours_final_s": None}
    text = time_to_quality_markdown({"time_to_quality": q})
    assert "does not reach ours' final PSNR within its curve (3.872 min per scene)" in text
    assert "Ours reaches it after 3.782 min" in text and "n/a" not in text
    q = {**q, "ours_time_to_rgb_final_s": None, "ours_eff_time_to_rgb_final_s": None, "rgb_time_to_ours_final_s": 60.0}
    text = time_to_quality_markdown({"time_to_quality": q})
    assert "Ours does not reach it within its curve" in text and "reaches ours' final PSNR after 1.000 min" in text
