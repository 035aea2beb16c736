"""A test hook for crash-consistency tests: SIGKILL this process at a named point of a write.

``LATENTSCENES_CRASH_AT=POINT[:SUBSTRING][@N]`` kills the process (``SIGKILL``: no ``finally``, no ``atexit``,
no buffered write flushed, as a power cut or the OOM killer would) the N-th time (default 1) the code reaches
``crash_point(POINT, detail)`` with SUBSTRING in ``detail`` (the file or folder being written). Points:

* ``atomic.written``: ``utils.io.atomic_write``, the temporary file complete, before its rename;
* ``checkpoint.written``: ``training.checkpoint.write_checkpoint_dir``, the temporary folder complete;
* ``checkpoint.aside``: between the swap's two renames (the old checkpoint aside, the new one not in place);
* ``checkpoint.swapped``: the new checkpoint in place, the aside copy not yet deleted;
* ``stage.step``: ``training.stages.run_stage``, after an optimiser step (detail: ``<stage>:<step>``).

Unset (always, outside tests/test_crash_consistency.py) a point costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "LATENTSCENES_CRASH_AT"

_hits: dict[str, int] = {}


def crash_point(name: str, detail: str = "") -> None:
    """SIGKILL this process if ``LATENTSCENES_CRASH_AT`` names this point (see the module docstring).

    Raises:
        ValueError: a malformed ``LATENTSCENES_CRASH_AT`` (a count that is not a positive integer).
    """
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, count = spec.partition("@")
    point, _, substring = point.partition(":")
    if point != name or substring not in detail:
        return
    n = int(count) if count else 1
    if n < 1:
        raise ValueError(f"{ENV}={spec!r}: the count after '@' must be a positive integer")
    _hits[spec] = _hits.get(spec, 0) + 1
    if _hits[spec] == n:
        os.kill(os.getpid(), signal.SIGKILL)
