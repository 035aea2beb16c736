"""How much time and memory each measured phase used: the one phase timer (benchmark, demo, the demo's report).

What the benchmark ran on (CPU model, cores, RAM, GPU, OS, library versions, the git commit) is
:func:`latentscenes.utils.machine.machine_info`, shared with the other commands that record it.

* :class:`Phase`: a context manager that times one phase (wall clock ``time.perf_counter`` and this
  process's CPU time), samples the process's resident memory (RSS, from ``/proc/self/statm``) in a
  background thread to record the phase's **peak RSS**, and on CUDA the peak allocated GPU memory. It also
  records the machine's load average so that a run disturbed by other jobs can be recognised.

On Linux the kernel's own peak-RSS counter (``VmHWM``) is reset at each phase's start (``/proc/self/clear_refs``,
value 5) and read at its end, so an allocation shorter than the sampling interval is still counted; where that
file cannot be written (other systems, some sandboxes) the sampler and ``ru_maxrss`` serve alone. The reset is
process-wide: ``ru_maxrss`` read inside a phase (a training stage's ``peak_rss_mb``) then counts from the phase's
start, not from the process's; memory still held from earlier phases stays counted (the reset sets the peak to
the current RSS).
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Iterator

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_bytes() -> int:
    """Resident set size of this process now, bytes (Linux ``/proc/self/statm``; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return max_rss_bytes()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process to its current RSS (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_since_reset_bytes() -> int | None:
    """``VmHWM`` of this process, bytes: its peak RSS since :func:`reset_peak_rss` (or since it started); None
    where ``/proc/self/status`` has no such line."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def max_rss_bytes() -> int:
    """Peak RSS of this process since it started, bytes (``getrusage``; kB on Linux)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r) * (1 if sys.platform == "darwin" else 1024)


@dataclass
class PhaseRecord:
    """What :class:`Phase` measured. Seconds and bytes."""

    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    rss_start_bytes: int = 0
    rss_peak_bytes: int = 0
    gpu_peak_bytes: int | None = None
    load_average_end: list[float] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def rss_peak_delta_bytes(self) -> int:
        """Peak RSS during the phase minus RSS at its start (what the phase itself added)."""
        return max(0, self.rss_peak_bytes - self.rss_start_bytes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rss_peak_delta_bytes"] = self.rss_peak_delta_bytes
        return d


class Phase:
    """Context manager measuring one phase: wall time, CPU time, peak RSS (sampled), peak GPU memory.

    ``with Phase("exploit", device) as ph: ...`` then ``ph.record``. ``ph.pause()`` / ``ph.resume()`` exclude
    a span (e.g. an evaluation done only for the report) from the wall and CPU times; RSS keeps being sampled.
    The RSS sampler reads ``/proc/self/statm`` every ``interval_s`` (default 10 ms); a spike shorter than that
    would be missed, so the kernel's peak counter, reset at the phase's start, is read at its end (Linux), and
    ``ru_maxrss`` is also consulted when it rose during the phase. A phase nested in another resets the
    counter for both: the outer phase then falls back to its samples for the time before the inner one began.
    """

    def __init__(self, name: str, device: torch.device | None = None, interval_s: float = 0.01):
        self.record = PhaseRecord(name)
        self._device = device
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._paused_wall = 0.0
        self._paused_cpu = 0.0
        self._pause_t: tuple[float, float] | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            rss = current_rss_bytes()
            if rss > self.record.rss_peak_bytes:
                self.record.rss_peak_bytes = rss

    def __enter__(self) -> "Phase":
        self._hwm_reset = reset_peak_rss()
        self._maxrss0 = max_rss_bytes()
        self.record.rss_start_bytes = current_rss_bytes()
        self.record.rss_peak_bytes = self.record.rss_start_bytes
        if self._device is not None and self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
            torch.cuda.reset_peak_memory_stats(self._device)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        self._c0 = time.process_time()
        return self

    def pause(self) -> None:
        if self._device is not None and self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
        self._pause_t = (time.perf_counter(), time.process_time())

    def resume(self) -> None:
        if self._pause_t is not None:
            self._paused_wall += time.perf_counter() - self._pause_t[0]
            self._paused_cpu += time.process_time() - self._pause_t[1]
            self._pause_t = None

    def elapsed(self) -> float:
        """Wall seconds so far, paused spans excluded (valid inside the ``with`` block, not while paused)."""
        return time.perf_counter() - self._t0 - self._paused_wall

    def __exit__(self, *exc) -> None:
        if self._device is not None and self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
        self.resume()
        self.record.wall_s = time.perf_counter() - self._t0 - self._paused_wall
        self.record.cpu_s = time.process_time() - self._c0 - self._paused_cpu
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        rss = current_rss_bytes()
        maxrss = max_rss_bytes()
        self.record.rss_peak_bytes = max(self.record.rss_peak_bytes, rss)
        hwm = peak_rss_since_reset_bytes() if self._hwm_reset else None
        if hwm is not None:  # the kernel's exact peak since this phase began
            self.record.rss_peak_bytes = max(self.record.rss_peak_bytes, hwm)
        if maxrss > self._maxrss0:  # the process peak rose during this phase: it is this phase's peak
            self.record.rss_peak_bytes = max(self.record.rss_peak_bytes, maxrss)
        if self._device is not None and self._device.type == "cuda":
            self.record.gpu_peak_bytes = int(torch.cuda.max_memory_allocated(self._device))
        if hasattr(os, "getloadavg"):
            self.record.load_average_end = list(os.getloadavg())


class PhaseLog:
    """Measures phases one after another with :class:`Phase` and keeps each record's dict by name.

    ``with log("load data"): ...``; ``with log("ours", "train") as extra: ...`` measures phase ``ours/train``
    (the ``phase`` of :class:`latentscenes.experiments.step.MethodContext`) and yields its record's ``extra`` dict;
    ``log.phases[name]`` is the record's :meth:`PhaseRecord.to_dict` once the phase has ended.
    """

    def __init__(self, device: torch.device | None = None):
        self.device = device
        self.phases: dict[str, dict] = {}

    @contextmanager
    def __call__(self, *names: str) -> Iterator[dict]:
        name = "/".join(names)
        with Phase(name, self.device) as ph:
            yield ph.record.extra
        self.phases[name] = ph.record.to_dict()
