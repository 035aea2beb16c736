"""Per-phase measurement (utils/phases.py) (no timing thresholds); the machine description is tested in tests/utils/test_machine.py."""

from __future__ import annotations

import mmap
import time

import pytest
import torch

from latentscenes.utils.phases import PeakMemory, Phase, current_rss_bytes, reset_peak_rss


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


def test_phase_counts_a_spike_no_sample_saw_below_an_earlier_peak():
    # The case the sampler alone misses: an allocation between two samples, in a process whose earlier peak is
    # higher (so ru_maxrss does not rise). The kernel's peak counter, reset at the phase's start, still has it.
    if not reset_peak_rss():
        pytest.skip("no /proc/self/clear_refs here (not Linux, or not writable)")
    big = torch.ones(128, 1024, 1024)  # 512 MiB, touched: the process peak now lies above the phase's spike
    big.add_(1.0)
    del big
    with Phase("spike", torch.device("cpu"), interval_s=3600.0) as ph:  # the sampler never samples
        x = torch.ones(64, 1024, 1024)  # 256 MiB
        x.add_(1.0)
        del x
    assert ph.record.rss_peak_delta_bytes >= 128 * 2**20


def _touch_anonymous_pages(n_bytes: int) -> None:
    """Map ``n_bytes`` of fresh anonymous memory, touch every page, unmap it: RSS rises by ``n_bytes`` and falls
    back, whatever memory the allocator keeps from earlier tests (a freed tensor's pages can be reused unseen)."""
    m = mmap.mmap(-1, n_bytes)
    for i in range(0, n_bytes, mmap.PAGESIZE):
        m[i] = 1
    m.close()


def test_nested_spans_each_keep_their_own_peak():
    # A training stage (PeakMemory) inside a benchmark phase resets the process's one peak counter: the phase must
    # still report the larger allocation it made before the stage began, and the stage only its own.
    if not reset_peak_rss():
        pytest.skip("no /proc/self/clear_refs here (not Linux, or not writable)")
    with Phase("outer", torch.device("cpu"), interval_s=3600.0) as ph:  # the sampler never samples
        _touch_anonymous_pages(512 * 2**20)  # before the inner span, and gone when it starts
        with PeakMemory(torch.device("cpu")) as inner:
            _touch_anonymous_pages(128 * 2**20)
    assert inner.exact
    assert 96 * 2**20 <= inner.rss_peak_bytes - inner.rss_start_bytes < 384 * 2**20
    assert ph.record.rss_peak_delta_bytes >= 384 * 2**20
