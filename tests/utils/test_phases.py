"""Per-phase measurement (utils/phases.py) (no timing thresholds); the machine description is tested in tests/utils/test_machine.py."""

from __future__ import annotations

import torch

from latentscenes.utils.phases import Phase, current_rss_bytes


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
