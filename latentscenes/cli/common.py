"""Options and error handling shared by every command."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

import typer

from latentscenes.config import ConfigError
from latentscenes.utils.progress import console

PRESET_OPT = typer.Option(None, "--preset", help="Named preset: tiny-cpu, paper or test.")
CONFIG_OPT = typer.Option(None, "--config", help="A saved config.json (replaces the preset).")
SET_OPT = typer.Option(None, "--set", help="Override a config field: --set section.key=value (repeatable).")


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the project's input errors into a one-line message and exit code 2 (no traceback)."""
    from latentscenes.data.types import DatasetError
    from latentscenes.utils.device import DeviceError
    from latentscenes.utils.folders import OutFolderError
    from latentscenes.utils.io import UnreadableFileError

    try:
        yield
    except (ConfigError, DatasetError, FileNotFoundError, DeviceError, UnreadableFileError, OutFolderError) as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(2)
