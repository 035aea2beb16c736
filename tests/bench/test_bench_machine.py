"""Machine description and per-phase measurement (no timing thresholds)."""

from __future__ import annotations

import json

import torch

from latentscenes.bench.machine import Phase, current_rss_bytes, machine_info


def test_machine_info_is_json_and_complete():
    info = machine_info(torch.device("cpu"))
    json.dumps(info)
    assert info["cpu_model"] and info["logical_cores"] >= 1 and info["torch_threads"] >= 1
    assert info["versions"]["torch"]


def test_phase_sees_the_memory_a_phase_allocates():
    with Phase("alloc", torch.device("cpu"), interval_s=0.001) as ph:
        x = torch.ones(64, 1024, 1024)  # 256 MiB, touched
        x.add_(1.0)
        y = float(x.sum())
        del x
    rec = ph.record.to_dict()
    assert y > 0
    assert rec["rss_peak_bytes"] >= rec["rss_start_bytes"]
    assert rec["rss_peak_delta_bytes"] >= 128 * 2**20
    assert rec["wall_s"] >= 0 and rec["cpu_s"] >= 0
    assert current_rss_bytes() > 0
