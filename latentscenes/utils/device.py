"""Device choice and reproducibility helpers."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


class DeviceError(ValueError):
    """A ``--device`` / ``device`` value that names no usable device (the message says which and why)."""


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; otherwise the device named (``cpu``, ``cuda``,
    ``cuda:N``, ``mps``).

    Raises:
        DeviceError: an unknown device name, or a device this machine does not have.
    """
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(requested)
    except (RuntimeError, TypeError):  # torch's message lists every backend it knows; ours lists the usable ones
        raise DeviceError(f"device {requested!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {requested!r} requested but no CUDA GPU is available; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {requested!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"device {requested!r} requested but MPS is not available; use --device cpu")
    elif dev.type != "cpu":
        raise DeviceError(f"device {requested!r} is not supported; use auto, cpu, cuda or cuda:N")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def set_cpu_threads() -> None:
    """Use every core the process may run on (2 on the project's CI machine) unless OMP_NUM_THREADS is set."""
    if "OMP_NUM_THREADS" not in os.environ:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            n = os.cpu_count() or 1
        torch.set_num_threads(max(1, n))
