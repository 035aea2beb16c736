"""How much time and memory each measured phase used: the one phase timer (benchmark, demo, the demo's report).

What the benchmark ran on (CPU model, cores, RAM, GPU, OS, library versions, the git commit) is
:func:`latentscenes.utils.machine.machine_info`, shared with the other commands that record it.

* :class:`Phase`: a context manager that times one phase (wall clock ``time.perf_counter`` and this
  process's CPU time), samples the process's resident memory (RSS, from ``/proc/self/statm``) in a
  background thread to record the phase's **peak RSS**, and on CUDA the peak allocated GPU memory. It also
  records the machine's load average so that a run disturbed by other jobs can be recognised.

* :class:`PeakMemory`: the exact peak RSS (and peak CUDA allocation) over one span of code, correct when spans
  nest: a phase, and each training stage inside it (``StageResult.peak_rss_mb``), measure their own peaks.

On Linux the kernel's own peak-RSS counter (``VmHWM``) is reset at each span's start (``/proc/self/clear_refs``,
value 5) and read at its end, so an allocation shorter than the sampling interval is still counted; where that
file cannot be written (other systems, some sandboxes) the sampler and ``ru_maxrss`` serve instead. The counter
is one per process, so a span that resets it first folds the peak so far into every span still open (and reads
it again when it ends): a stage inside a phase does not hide the phase's earlier peak. Memory still held from
before a span stays counted (the reset sets the peak to the current RSS).
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


# Spans whose peak is being measured, innermost last; guarded because the CUDA and kernel counters are global.
_OPEN: list["PeakMemory"] = []
_LOCK = threading.Lock()


def _fold_into_open() -> None:
    """Raise every open span's peaks to the counters' values now (before a reset would lose them)."""
    hwm = peak_rss_since_reset_bytes()
    for span in _OPEN:
        if hwm is not None and span.exact:
            span.rss_peak_bytes = max(span.rss_peak_bytes, hwm)
        if span.device is not None and span.device.type == "cuda":
            span.gpu_peak_bytes = max(span.gpu_peak_bytes or 0, int(torch.cuda.max_memory_allocated(span.device)))


class PeakMemory:
    """Context manager: the peak resident memory (bytes) of this process over a span, and on CUDA the peak
    allocated GPU memory; exact where the kernel's counter can be reset (Linux), correct when spans nest. The
    benchmark's peak-memory figures (paper Table 1's memory column; docs/benchmark.md) and each training stage's
    ``peak_rss_mb`` come from it. Raises nothing: where a counter cannot be read, the fallbacks below serve.

    ``with PeakMemory(device) as pm: ...`` then ``pm.rss_peak_bytes`` (>= the RSS at the span's start) and
    ``pm.gpu_peak_bytes`` (None off CUDA). ``pm.exact`` tells whether the kernel counter was used; without it the
    peak is ``ru_maxrss`` if that rose during the span, else the RSS at start and end (an outer :class:`Phase`
    adds its samples). Threads: spans are process-wide and meant to nest like function calls (a stack).
    """

    def __init__(self, device: torch.device | None = None):
        self.device = device
        self.exact = False
        self.rss_start_bytes = 0
        self.rss_peak_bytes = 0
        self.gpu_peak_bytes: int | None = None

    def __enter__(self) -> "PeakMemory":
        with _LOCK:
            _fold_into_open()
            cuda = self.device is not None and self.device.type == "cuda"
            if cuda:
                torch.cuda.synchronize(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
                self.gpu_peak_bytes = int(torch.cuda.memory_allocated(self.device))
            self.exact = reset_peak_rss() and peak_rss_since_reset_bytes() is not None
            self._maxrss0 = max_rss_bytes()
            self.rss_start_bytes = self.rss_peak_bytes = current_rss_bytes()
            _OPEN.append(self)
        return self

    def __exit__(self, *exc) -> None:
        with _LOCK:
            if self.device is not None and self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            _fold_into_open()
            _OPEN.remove(self)
        self.rss_peak_bytes = max(self.rss_peak_bytes, current_rss_bytes())
        maxrss = max_rss_bytes()
        if maxrss > self._maxrss0:  # the process peak rose during this span: it is this span's peak
            self.rss_peak_bytes = max(self.rss_peak_bytes, maxrss)


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
    ``ru_maxrss`` is also consulted when it rose during the phase (:class:`PeakMemory`, which keeps nested
    phases and stages exact).
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
        self._peak = PeakMemory(self._device).__enter__()
        self.record.rss_start_bytes = self._peak.rss_start_bytes
        self.record.rss_peak_bytes = self.record.rss_start_bytes
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
        self._peak.__exit__(*exc)
        self.record.rss_peak_bytes = max(self.record.rss_peak_bytes, self._peak.rss_peak_bytes)
        self.record.gpu_peak_bytes = self._peak.gpu_peak_bytes
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
