"""Atomic file writes: a crash mid-write never leaves a half-written file under the final name.

Write to a temporary file in the same folder, fsync it, then ``os.replace`` it over the target
(atomic on POSIX file systems) and fsync the folder, so that the rename itself survives a power loss.
The file gets the mode a plain ``open()`` would give it (``0o666`` less the umask), not ``mkstemp``'s 0600.

Temporaries are named ``.<final name>.<random>.tmp`` (:data:`TEMP_NAME`); a process killed mid-write leaves
one behind, which :func:`remove_temporaries` deletes when the folder is resumed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Callable

from latentscenes.utils.crash import crash_point

#: Names of the temporaries of :func:`atomic_write` (files) and of checkpoint swaps (folders): the ``mkstemp`` /
#: ``mkdtemp`` names ``.<final name>.<random>.tmp``.
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


class UnreadableFileError(ValueError):
    """A file this program wrote earlier (checkpoint, model, shard) that cannot be read back: truncated or
    damaged. The message names the file."""


class DiskFullError(OSError):
    """A write failed for lack of space: the disk or a quota is full, or the file size limit (``ulimit -f``) was
    reached. The message names the file and the fix; what was written before stays loadable (writes are atomic),
    so the command can continue with ``--resume`` once there is room."""


#: errno values that mean "no room to write": the disk, a quota, the file size limit.
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_OS_ERROR = re.compile(r"os error (\d+)")


def disk_full(e: BaseException, path: str | Path) -> DiskFullError | None:
    """The :class:`DiskFullError` to raise instead of ``e`` when ``e`` means there is no room to write ``path``
    (an ``OSError``, or a safetensors error quoting the OS error), else None."""
    code = e.errno if isinstance(e, OSError) else None
    if code is None and type(e).__name__ == "SafetensorError":  # the Rust writer reports "(os error 28)"
        m = _OS_ERROR.search(str(e))
        code = int(m.group(1)) if m else None
    if code not in _NO_ROOM:
        return None
    return DiskFullError(f"{path}: cannot write it: {os.strerror(code)}; free space on its disk (or raise the file "
                         "size limit) and run the command again (with --resume where it has one)")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then atomically move ``tmp_path`` to ``path``.

    The temporary file lives next to ``path`` (same file system), so the final rename is atomic.
    On any exception the temporary file is removed and ``path`` keeps its previous content.

    Raises:
        DiskFullError: no room to write (disk, quota or file size limit full), naming ``path``; any other
            exception of ``write`` as it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~current_umask())
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        crash_point("atomic.written", str(path))
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    except BaseException as e:
        tmp_path.unlink(missing_ok=True)
        full = disk_full(e, path)
        if full is not None:
            raise full from None
        raise


def current_umask() -> int:
    """The process umask (read from /proc on Linux; elsewhere by setting it and restoring it at once)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(folder: str | Path) -> None:
    """fsync a folder so that renames and deletions in it are durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened; its renames are journaled by the file system
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(fd)


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary *files* that interrupted atomic writes left anywhere under ``folder``.

    Folders with temporary names (interrupted checkpoint swaps) are left alone: they may hold the only
    complete checkpoint, and ``training.checkpoint.recover_checkpoint_dir`` decides about them.

    Returns:
        the files removed.
    """
    removed = []
    for p in sorted(Path(folder).rglob(".*.tmp")):
        if p.is_file() and not p.is_symlink() and TEMP_NAME.match(p.name):
            p.unlink()
            removed.append(p)
    return removed


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def atomic_save_safetensors(tensors: dict, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Save a dict of tensors with safetensors, atomically (tensors are made contiguous on the CPU)."""
    from safetensors.torch import save_file  # imported on use: it imports torch; the CLI's start-up imports this module

    cpu = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda p: save_file(cpu, str(p), metadata=metadata))


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks (weights files are tens of MB).

    Raises:
        OSError: the file cannot be read (the message names it).
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_json_object(path: str | Path, missing: str) -> dict:
    """The JSON object in ``path`` (a run folder's manifest, an RGB fit's results).

    Args:
        path: the file. missing: what the ``FileNotFoundError`` says after the path (e.g. which command writes it).
    Raises:
        FileNotFoundError: ``path`` is not a file (``"PATH: MISSING"``).
        UnreadableFileError: (a ``ValueError``) not valid JSON (truncated or damaged), or not a JSON object; the
            message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {missing}")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UnreadableFileError(f"{path}: not valid JSON, truncated or damaged ({e})") from None
    if not isinstance(obj, dict):
        raise UnreadableFileError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    return obj
