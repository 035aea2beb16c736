"""Options and error handling shared by every command."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NoReturn

import typer

from latentscenes.config import ConfigError
from latentscenes.utils.folders import OutFolderError
from latentscenes.utils.io import DiskFullError, UnreadableFileError
from latentscenes.utils.progress import console

PRESET_OPT = typer.Option(None, "--preset", help="Named preset: tiny-cpu, paper or test.")
CONFIG_OPT = typer.Option(None, "--config", help="A saved config.json (replaces the preset).")
SET_OPT = typer.Option(None, "--set", help="Override a config field: --set section.key=value (repeatable).")

#: Set (to anything but "" or "0") to get the traceback of a user error instead of its one-line message.
DEBUG_ENV = "LATENTSCENES_DEBUG"


def debugging() -> bool:
    """Whether ``LATENTSCENES_DEBUG`` asks for tracebacks of user errors."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def fail(message: object) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with code 2.

    Called inside an ``except`` block; with ``LATENTSCENES_DEBUG`` set the exception being handled is re-raised
    instead (its traceback shown). The message is printed as text, not rich markup (a path or a key list in
    brackets stays as it is), on one line whatever the terminal width (long paths are not wrapped).

    Raises:
        SystemExit: code 2; or the exception being handled, when debugging.
    """
    if debugging() and sys.exc_info()[1] is not None:
        raise
    text = " ".join(str(message).split())
    console.print("[red]error:[/red] ", end="")
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    sys.exit(2)


def check_out_file(out: object) -> None:
    """Refuse an ``--out`` file that is a folder before any work (the final rename would fail after it all).

    Raises:
        OutFolderError: naming ``out``.
    """
    if out is not None and Path(str(out)).is_dir():
        raise OutFolderError(f"{out}: is a folder, not a file; give --out a file name")


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the project's input errors into a one-line message and exit code 2 (no traceback, unless
    ``LATENTSCENES_DEBUG`` is set)."""
    # imported on use: keeps `latentscenes --help` fast (both import torch)
    from latentscenes.data.types import DatasetError
    from latentscenes.utils.device import DeviceError

    try:
        yield
    except (ConfigError, DatasetError, FileNotFoundError, DeviceError, UnreadableFileError, OutFolderError,
            DiskFullError) as e:
        fail(e)
