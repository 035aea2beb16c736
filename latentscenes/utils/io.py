"""Atomic file writes: a crash mid-write never leaves a half-written file under the final name.

Write to a temporary file in the same folder, fsync it, then ``os.replace`` it over the target
(atomic on POSIX file systems).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


class UnreadableFileError(ValueError):
    """A file this program wrote earlier (checkpoint, model, shard) that cannot be read back: truncated or
    damaged. The message names the file."""


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then atomically move ``tmp_path`` to ``path``.

    The temporary file lives next to ``path`` (same file system), so the final rename is atomic.
    On any exception the temporary file is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def atomic_save_safetensors(tensors: dict, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Save a dict of tensors with safetensors, atomically (tensors are made contiguous on the CPU)."""
    from safetensors.torch import save_file

    cpu = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda p: save_file(cpu, str(p), metadata=metadata))
