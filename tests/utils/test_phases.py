"""Per-phase measurement (utils/phases.py) (no timing thresholds); the machine description is tested in tests/utils/test_machine.py."""

from __future__ import annotations

import time

import torch

from latentscenes.utils.phases import Phase, current_rss_bytes


def test_phase_sees_the_memory_a_phase_allocates():
    with Phase("alloc", torch.device("cpu"), interval_s=0.001) as ph:
        x = torch.ones(64, 1024, 1024)  # 256 MiB, touched
        x.add_(1.0)
        y = float(x.sum())
        # Hold the tensor until the sampler has had its chance: on a loaded 2-core CI machine the allocation above
        # can come and go between two samples, and ru_maxrss does not rise when an earlier test peaked higher
        # (CI, stop 29: delta 4096 bytes). The wait is bounded; a sampler that never sees the memory still fails.
        deadline = time.monotonic() + 5.0
        while ph.record.rss_peak_bytes - ph.record.rss_start_bytes < 128 * 2**20 and time.monotonic() < deadline:
            time.sleep(0.01)
        del x
    rec = ph.record.to_dict()
    assert y > 0
    assert rec["rss_peak_bytes"] >= rec["rss_start_bytes"]
    assert rec["rss_peak_delta_bytes"] >= 128 * 2**20
    assert rec["wall_s"] >= 0 and rec["cpu_s"] >= 0
    assert current_rss_bytes() > 0
