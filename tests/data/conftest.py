"""Fixtures for the data tests (helpers live in datafixtures.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from datafixtures import make_fake_flightgear, pyassimp_available, write_srn  # noqa: E402


@pytest.fixture
def srn_scene(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    return write_srn(tmp_path / "car0")


@pytest.fixture
def fake_fg(tmp_path: Path) -> Path:
    if not pyassimp_available():
        pytest.skip("pyassimp / libassimp not available")
    return make_fake_flightgear(tmp_path / "Aircraft")


@pytest.fixture
def fake_torcs(tmp_path: Path) -> Path:
    if not pyassimp_available():
        pytest.skip("pyassimp / libassimp not available")
    from datafixtures import make_fake_torcs

    return make_fake_torcs(tmp_path / "deb")
