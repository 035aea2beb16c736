"""The benchmark's accounting (paper Eq. 8-11) and byte counting, checked on hand computations and on
tensors actually written to disk. No timing thresholds anywhere."""

from __future__ import annotations

import math

import pytest
import torch

from latentscenes.bench import accounting as acc
from latentscenes.utils.io import atomic_save_safetensors


def test_tensor_bytes_counts_values_not_storage():
    big = torch.zeros(100, 7)
    view = big[:10]  # shares the 2800-byte storage but holds 10*7 floats
    assert acc.tensor_bytes(view) == 10 * 7 * 4
    assert acc.tensor_bytes(torch.zeros(3, dtype=torch.float16)) == 6
    assert acc.tensors_bytes({"a": torch.zeros(2, 2), "b": torch.zeros(5, dtype=torch.int64)}) == 16 + 40


def test_safetensors_entries_equal_the_tensors_saved(tmp_path):
    tensors = {
        "local_planes": torch.randn(5, 3, 4, 8, 8),
        "coefs": torch.randn(5, 6),
        "global_planes": torch.randn(6, 3, 4, 8, 8).half(),
        "step": torch.tensor([3], dtype=torch.int64),
    }
    path = tmp_path / "bank.safetensors"
    atomic_save_safetensors(tensors, path, metadata={"note": "test"})
    entries = {e.name: e for e in acc.safetensors_entries(path)}
    assert set(entries) == set(tensors)
    for name, t in tensors.items():
        assert entries[name].nbytes == acc.tensor_bytes(t)
        assert entries[name].shape == tuple(t.shape)
    payload = acc.safetensors_payload_bytes(path)
    assert payload == acc.tensors_bytes(tensors)
    # file = 8-byte length + JSON header + payload: nothing else is on disk
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    assert path.stat().st_size == 8 + header_len + payload
    assert acc.safetensors_payload_bytes(path, lambda n: n.endswith("planes")) == (
        acc.tensor_bytes(tensors["local_planes"]) + acc.tensor_bytes(tensors["global_planes"])
    )


def test_safetensors_entries_rejects_garbage(tmp_path):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(b"\x05\x00")
    with pytest.raises(ValueError, match="bad.safetensors"):
        acc.safetensors_entries(p)


def test_bytes_by_category_is_exhaustive():
    named = {"enc.w": 10, "dec.w": 20, "B": 5, "x": 1}
    cats = {"E": lambda n: n.startswith("enc"), "D": lambda n: n.startswith("dec"), "B": lambda n: n == "B"}
    with pytest.raises(ValueError, match="'x'"):
        acc.bytes_by_category(named, cats)
    assert acc.bytes_by_category(named, cats, strict=False) == {"E": 10, "D": 20, "B": 5, "other": 1}


def test_eq8_eq9_from_measured_parts():
    # warm-up 100 s + joint 500 s; exploit 300 s + fine-tune 60 s for 12 scenes
    tc = acc.time_costs(100.0, 500.0, 300.0, 60.0, 12)
    assert tc.t_ec == 600.0
    assert tc.t_scene == pytest.approx(30.0)
    assert tc.t_scene_eff == pytest.approx(600.0 / 12 + 30.0)  # Eq. 9
    assert tc.t_tot == pytest.approx(600.0 + 12 * 30.0)  # Eq. 8
    assert tc.t_tot == pytest.approx(tc.t_scene_eff * 12)
    at1000 = acc.extrapolate_time_costs(tc, 1000)
    assert at1000.t_scene == tc.t_scene and at1000.t_ec == tc.t_ec
    assert at1000.t_scene_eff == pytest.approx(0.6 + 30.0)
    assert at1000.t_exploit + at1000.t_exploit_ft == pytest.approx(1000 * 30.0)
    assert at1000.t_tot == pytest.approx(600.0 + 1000 * 30.0)


def test_paper_table1_is_reproduced_by_eq9_and_eq11():
    # Paper Table 1: t_EC = 40 h, t_scene = 2 min, N_exploit = 1000 -> t_scene_eff = 4.4 min (reported 4.5)
    t_eff = acc.effective_time_per_scene(40 * 3600, 2 * 60, 1000) / 60
    assert t_eff == pytest.approx(4.4)
    # m_E = 0.13 MB, m_D = 0.19 MB, m_scene = 0.48 MB -> m_scene_eff ~ 0.84 MB with m_B = 0.04 MB per scene
    mc = acc.memory_costs(m_e=130_000_000, m_d=190_000_000, m_b=40_000_000, m_t=400_000_000, m_w=80_000_000, n_exploit=1000)
    assert mc.m_scene == pytest.approx(480_000)
    assert mc.m_scene_eff == pytest.approx(840_000)


def test_eq10_eq11_and_extrapolation():
    mc = acc.memory_costs(m_e=1000, m_d=3000, m_b=500, m_t=4 * 800, m_w=4 * 40, n_exploit=4, m_shared_other=100)
    assert mc.m_ec == 4600
    assert mc.m_scene == 840
    assert mc.m_scene_eff == pytest.approx(4600 / 4 + 840)  # Eq. 11
    assert mc.m_tot == pytest.approx(4600 + 4 * 840)  # Eq. 10
    big = acc.extrapolate_memory_costs(mc, 1000)
    assert big.m_scene == mc.m_scene and big.m_ec == mc.m_ec
    assert big.m_scene_eff == pytest.approx(4.6 + 840)


def test_break_even_and_fig7_curves():
    assert acc.break_even_scenes(600.0, 30.0, 90.0) == pytest.approx(10.0)
    assert acc.break_even_scenes(600.0, 90.0, 30.0) is None
    ours = acc.total_time_curve(600.0, 30.0, [1, 10, 100])
    rgb = acc.total_time_curve(0.0, 90.0, [1, 10, 100])
    assert ours == [630.0, 900.0, 3600.0] and rgb == [90.0, 900.0, 9000.0]


def test_time_to_reach_interpolates():
    t = [0.0, 10.0, 20.0, 30.0]
    p = [10.0, 20.0, 24.0, 26.0]
    assert acc.time_to_reach(t, p, 22.0) == pytest.approx(15.0)
    assert acc.time_to_reach(t, p, 10.0) == 0.0
    assert acc.time_to_reach(t, p, 30.0) is None


def test_mean_curve_on_grid():
    c1 = ([1.0, 3.0], [10.0, 30.0])
    c2 = ([2.0, 4.0], [20.0, 40.0])
    grid = [1.0, 2.0, 3.0, 5.0]
    assert acc.resample_curve(*c1, grid) == [10.0, 20.0, 30.0, 30.0]
    m = acc.mean_curve([c1, c2], grid)
    assert m[0] is None and m[1] == pytest.approx(20.0) and m[2] == pytest.approx(30.0) and m[3] == pytest.approx(35.0)


def test_relative_change_and_latency_summary():
    assert acc.relative_change(4.5, 32.0) == pytest.approx(4.5 / 32 - 1)
    assert acc.relative_change(1.0, 0.0) is None
    s = acc.latency_summary([0.003, 0.001, 0.002, 0.010])
    assert s["median_ms"] == pytest.approx(2.5) and s["min_ms"] == pytest.approx(1.0) and s["n"] == 4
    assert math.isclose(s["p90_ms"], 10.0)
