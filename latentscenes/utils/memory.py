"""Process-wide memory settings, applied explicitly by the program that owns the process (the ``latentscenes``
command calls :func:`release_large_frees_to_os` at start-up); importing a library module never changes them.

Standard library only: the command imports this before anything heavy.
"""

from __future__ import annotations

import ctypes
import sys

#: glibc's ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (malloc.h).
_M_MMAP_THRESHOLD = -3


def release_large_frees_to_os(nbytes: int = 1 << 20) -> bool:
    """Serve allocations of ``nbytes`` (1 MiB) and more with ``mmap``, so that freed image arrays go back to the OS.

    Why: glibc raises its mmap threshold dynamically after large frees; loading many scenes then recycles the
    12 MB image buffers from the heap, where small long-lived objects pin them. Measured: validating the 1,197-scene
    FlightGear set grew to 13.9 GB resident without this, and stays flat (~0.3 GB) with it (docs/data.md).
    Programs that load thousands of scenes through the Python API can call it themselves.

    Returns:
        whether the setting was applied (False off glibc/Linux, where it is a no-op).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(nbytes)))
    except (OSError, AttributeError):  # not glibc (e.g. musl has no libc.so.6 / no mallopt)
        return False
