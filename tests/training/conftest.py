"""Fixtures for the 3Da-AE training tests (helpers live in helpers_3daae.py)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread(request):
    """The 3Da-AE tests use tiny tensors: one thread is faster than two and immune to a busy machine's
    oversubscription."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
