"""glibc's allocator is set by the command at start-up, never by importing a library module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_importing_the_loaders_leaves_the_allocator_alone():
    code = (
        "import ctypes\n"
        "calls = []\n"
        "real = ctypes.CDLL\n"
        "ctypes.CDLL = lambda *a, **k: calls.append(a) or real(*a, **k)\n"
        "import latentscenes.data.loaders, latentscenes.data, latentscenes.training.pipeline\n"
        "assert not [c for c in calls if 'libc' in str(c)], calls\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root)


def test_the_command_sets_it_at_start_up(monkeypatch):
    import latentscenes.cli.main as cli_main

    called = []
    monkeypatch.setattr(cli_main, "release_large_frees_to_os", lambda: called.append(True))
    monkeypatch.setattr(sys, "argv", ["latentscenes", "version"])
    with pytest.raises(SystemExit) as ei:
        cli_main.main()
    assert ei.value.code == 0 and called == [True]


def test_release_large_frees_to_os_applies_on_glibc():
    from latentscenes.utils.memory import release_large_frees_to_os

    applied = release_large_frees_to_os()
    assert applied == (sys.platform.startswith("linux") and _glibc())


def _glibc() -> bool:
    import platform

    return platform.libc_ver()[0] == "glibc"
