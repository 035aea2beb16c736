"""What a run ran on: the one place that looks at the CPU, memory, GPU and library versions (issue 13, point 2).

* :func:`machine_info`: the full description (CPU model and flags, cores, torch threads, RAM, OS, GPU, library
  versions, git commit, load average), recorded in the benchmark's ``results.json``;
* :func:`machine_brief`: the short form the autoencoder commands record (``ae pretrain`` / ``finetune`` /
  ``evaluate``: CPU, torch threads, torch and Python versions, GPU name);
* :func:`machine_line`: one line for the demo's console and report.

The per-phase time and memory measurement is :mod:`latentscenes.utils.phases` (the bench, the demo, the demo's report).
"""

from __future__ import annotations

import functools

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

#: Distributions whose versions :func:`machine_info` records.
VERSIONED = ("latentscenes", "torch", "numpy", "diffusers", "torchmetrics", "safetensors", "matplotlib")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere the platform's processor or machine name)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; all logical cores where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _total_ram_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4")))
    except OSError:
        pass
    return []


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether bf16 autocast speeds training up on ``device``, rather than emulating bf16 in software.

    CUDA: ``torch.cuda.is_bf16_supported()``. CPU: the CPU has native bf16 arithmetic (``avx512_bf16`` or
    ``amx_bf16`` in /proc/cpuinfo). Measured: on a Xeon with AMX bf16 autocast made autoencoder training 2.3x
    faster than fp32; on an AMD EPYC with AVX2 only it made a fine-tuning step ~12 s against well under a second
    in fp32 (docs/autoencoder.md).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return device.type == "cpu" and _cpu_has_native_bf16()


@functools.lru_cache(maxsize=1)
def _cpu_has_native_bf16() -> bool:
    # read once: the autoencoder asks before every encode and decode (AEConfig.amp)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit(repo: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        if out.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=False,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(device: torch.device | None = None) -> dict:
    """Describe the machine and software (JSON-able dict); ``device``: the one the run computes on."""
    info: dict = {
        "cpu_model": cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "ram_bytes": _total_ram_bytes(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "device": str(device) if device is not None else None,
        "gpu": None,
        "versions": {name: _version(name) for name in VERSIONED},
        "git_commit": _git_commit(Path(__file__).resolve().parents[2]),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {
            "name": props.name,
            "memory_bytes": int(props.total_memory),
            "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
        }
    return info


def machine_brief() -> dict:
    """``{"cpu", "torch_threads", "torch", "python"}`` and ``"gpu"`` (its name) when CUDA is available: what the
    autoencoder commands record with pre-training runs and evaluations."""
    info = {"cpu": cpu_model(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_line() -> str:
    """One line: CPU model, usable cores, torch version and threads, GPU (the demo's console and report)."""
    b = machine_brief()
    gpu = f", GPU {b['gpu']}" if "gpu" in b else ""
    return f"{b['cpu']}, {usable_cores()} cores available, torch {b['torch']} ({b['torch_threads']} threads){gpu}"
