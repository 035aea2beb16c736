"""Cost accounting of the paper (arXiv 2403.11678, Sec. 4.1, Eq. 8-11) as pure functions.

Nothing here measures anything: every function takes measured parts (seconds, bytes, PSNR curves) and
combines them. The benchmark runner (:mod:`latentscenes.experiments.bench`) does the measuring; the tests check
these formulas and the byte counting against tensors actually written to disk.

Units: times in **seconds**, sizes in **bytes** (the reports convert to minutes and MB = 1e6 bytes, as the
paper's Table 1 does), PSNR in dB.

Equations (paper notation):
  * Eq. 8:  t_tot = t_EC + N_exploit * t_scene,   t_EC = t_train^warmup + t_train,
            t_scene = (t_exploit + t_exploit^ft) / N_exploit
  * Eq. 9:  t_scene^eff = t_EC / N_exploit + t_scene
  * Eq. 10: m_tot = m_EC + N_exploit * m_scene,   m_EC = m_E + m_D + m_B,
            m_scene = (m_T + m_W) / N_exploit   (m_T, m_W: all exploit scenes' local planes / coefficients)
  * Eq. 11: m_scene^eff = m_EC / N_exploit + m_scene

The Tri-Planes (RGB) baseline has no entry cost: t_scene^eff = t_scene = (total fitting time) / N and
m_scene^eff = m_scene = (bytes of everything one scene needs, tiny MLP included) / N.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import torch

# safetensors dtype names -> bytes per element (the format's own table).
_SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}


# ----------------------------------------------------------------------------------------------- bytes
def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes of a tensor's values as saved (numel * element size; no storage over-allocation, no header)."""
    return int(t.numel()) * int(t.element_size())


def tensors_bytes(tensors: Mapping[str, torch.Tensor] | Iterable[torch.Tensor]) -> int:
    """Sum of :func:`tensor_bytes` over a dict's values (or any iterable of tensors / parameters)."""
    values = tensors.values() if isinstance(tensors, Mapping) else tensors
    return sum(tensor_bytes(t) for t in values)


@dataclass(frozen=True)
class SavedTensor:
    """One tensor entry of a safetensors file, read from the file's header (no data loaded)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


def safetensors_entries(path: str | Path) -> list[SavedTensor]:
    """List the tensors stored in a ``.safetensors`` file from its header, with their payload sizes.

    The file layout is: 8-byte little-endian header length n, n bytes of JSON header, then the tensor
    payload; each header entry gives ``dtype``, ``shape`` and ``data_offsets = [begin, end)`` in the payload.
    ``nbytes = end - begin`` is checked against ``prod(shape) * itemsize(dtype)``.

    Raises:
        ValueError: if the file is not a valid safetensors file (the message names the file).
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError(f"{path}: too short to be a safetensors file")
        (n,) = struct.unpack("<Q", head)
        raw = f.read(n)
    if len(raw) != n:
        raise ValueError(f"{path}: truncated safetensors header")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: safetensors header is not JSON ({e})") from None
    out: list[SavedTensor] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        shape = tuple(int(s) for s in info["shape"])
        nbytes = int(end) - int(begin)
        expect = math.prod(shape) * _SAFETENSORS_ITEMSIZE[info["dtype"]]
        if nbytes != expect:
            raise ValueError(f"{path}: tensor {name!r} has {nbytes} bytes for shape {shape} {info['dtype']}")
        out.append(SavedTensor(name, info["dtype"], shape, nbytes))
    return out


def safetensors_payload_bytes(path: str | Path, select: Callable[[str], bool] | None = None) -> int:
    """Bytes of the tensors saved in a safetensors file (header excluded), optionally only names ``select``-ed."""
    return sum(e.nbytes for e in safetensors_entries(path) if select is None or select(e.name))


def bytes_by_category(
    named_bytes: Mapping[str, int], categories: Mapping[str, Callable[[str], bool]], *, strict: bool = True
) -> dict[str, int]:
    """Split ``{tensor name: bytes}`` into categories by the first predicate that accepts each name.

    Args:
        named_bytes: e.g. ``{e.name: e.nbytes for e in safetensors_entries(path)}``.
        categories: ordered ``{category: predicate(name)}``.
        strict: if True, a name no predicate accepts raises (nothing saved goes uncounted); otherwise it
            goes to category ``"other"``.
    Returns:
        ``{category: bytes}`` with every category present (0 when empty).
    """
    out = {c: 0 for c in categories}
    for name, nb in named_bytes.items():
        for cat, pred in categories.items():
            if pred(name):
                out[cat] += int(nb)
                break
        else:
            if strict:
                raise ValueError(f"tensor {name!r} matches no byte category ({list(categories)})")
            out["other"] = out.get("other", 0) + int(nb)
    return out


# ------------------------------------------------------------------------------------------ time costs
@dataclass(frozen=True)
class TimeCosts:
    """Eq. 8-9 for one N_exploit. Seconds."""

    n_exploit: int
    t_warmup: float
    t_train: float
    t_ec: float
    t_exploit: float
    t_exploit_ft: float
    t_scene: float
    t_scene_eff: float
    t_tot: float

    def to_dict(self) -> dict:
        return asdict(self)


def entry_cost_time(t_warmup: float, t_train: float) -> float:
    """t_EC = t_train^warmup + t_train (seconds)."""
    return float(t_warmup) + float(t_train)


def time_per_scene(t_exploit: float, t_exploit_ft: float, n_exploit: int) -> float:
    """t_scene = (t_exploit + t_exploit^ft) / N_exploit (Eq. 8), seconds per scene."""
    if n_exploit <= 0:
        raise ValueError("n_exploit must be positive")
    return (float(t_exploit) + float(t_exploit_ft)) / n_exploit


def effective_time_per_scene(t_ec: float, t_scene: float, n_exploit: int) -> float:
    """t_scene^eff = t_EC / N_exploit + t_scene (Eq. 9), seconds per scene."""
    if n_exploit <= 0:
        raise ValueError("n_exploit must be positive")
    return float(t_ec) / n_exploit + float(t_scene)


def total_time(t_ec: float, t_scene: float, n_exploit: int) -> float:
    """t_tot = t_EC + N_exploit * t_scene (Eq. 8), seconds."""
    return float(t_ec) + n_exploit * float(t_scene)


def time_costs(
    t_warmup: float, t_train: float, t_exploit: float, t_exploit_ft: float, n_exploit: int
) -> TimeCosts:
    """All of Eq. 8-9 from the four measured stage times and the number of exploit scenes."""
    t_ec = entry_cost_time(t_warmup, t_train)
    t_scene = time_per_scene(t_exploit, t_exploit_ft, n_exploit)
    return TimeCosts(
        n_exploit=int(n_exploit),
        t_warmup=float(t_warmup),
        t_train=float(t_train),
        t_ec=t_ec,
        t_exploit=float(t_exploit),
        t_exploit_ft=float(t_exploit_ft),
        t_scene=t_scene,
        t_scene_eff=effective_time_per_scene(t_ec, t_scene, n_exploit),
        t_tot=total_time(t_ec, t_scene, n_exploit),
    )


def extrapolate_time_costs(measured: TimeCosts, n_exploit: int) -> TimeCosts:
    """Eq. 8-9 at another N_exploit, assuming the measured per-scene time t_scene stays constant.

    Valid when the exploit schedule is per scene (a fixed number of updates per scene), which is how the
    pipeline is configured; the stage times are rescaled to ``t_scene * n_exploit`` in the same proportion.
    """
    scale = n_exploit / measured.n_exploit
    return TimeCosts(
        n_exploit=int(n_exploit),
        t_warmup=measured.t_warmup,
        t_train=measured.t_train,
        t_ec=measured.t_ec,
        t_exploit=measured.t_exploit * scale,
        t_exploit_ft=measured.t_exploit_ft * scale,
        t_scene=measured.t_scene,
        t_scene_eff=effective_time_per_scene(measured.t_ec, measured.t_scene, n_exploit),
        t_tot=total_time(measured.t_ec, measured.t_scene, n_exploit),
    )


def break_even_scenes(t_ec: float, t_scene_ours: float, t_scene_baseline: float) -> float | None:
    """Smallest N_exploit (real-valued) from which t_tot(ours) <= N * t_scene(baseline), or None if never.

    Solves t_EC + N t_ours = N t_base  ->  N = t_EC / (t_base - t_ours).
    """
    gain = float(t_scene_baseline) - float(t_scene_ours)
    if gain <= 0:
        return None
    return float(t_ec) / gain


def total_time_curve(t_ec: float, t_scene: float, n_values: Sequence[int]) -> list[float]:
    """Fig. 7: t_tot(N) = t_EC + N t_scene for each N in ``n_values`` (seconds). Baseline: t_ec = 0."""
    return [total_time(t_ec, t_scene, int(n)) for n in n_values]


# ---------------------------------------------------------------------------------------- memory costs
@dataclass(frozen=True)
class MemoryCosts:
    """Eq. 10-11 for one N_exploit. Bytes."""

    n_exploit: int
    m_e: int
    m_d: int
    m_b: int
    m_shared_other: int
    m_ec: int
    m_t: int
    m_w: int
    m_scene: float
    m_scene_eff: float
    m_tot: float

    def to_dict(self) -> dict:
        return asdict(self)


def memory_costs(
    m_e: int, m_d: int, m_b: int, m_t: int, m_w: int, n_exploit: int, m_shared_other: int = 0
) -> MemoryCosts:
    """Eq. 10-11 from saved sizes.

    Args:
        m_e, m_d, m_b: bytes of the encoder, decoder and global planes B.
        m_t, m_w: bytes of the local planes and of the coefficients W of **all** N_exploit scenes.
        n_exploit: number of exploit scenes the m_t / m_w were counted over.
        m_shared_other: other shared tensors that must be saved to render a scene (e.g. the tiny MLP, the
            latent normalisation's background code). The paper's m_EC = m_E + m_D + m_B leaves them out; we
            add them to m_EC so that m_tot is what is really on disk, and report them separately.
    """
    if n_exploit <= 0:
        raise ValueError("n_exploit must be positive")
    m_ec = int(m_e) + int(m_d) + int(m_b) + int(m_shared_other)
    m_scene = (int(m_t) + int(m_w)) / n_exploit
    return MemoryCosts(
        n_exploit=int(n_exploit),
        m_e=int(m_e),
        m_d=int(m_d),
        m_b=int(m_b),
        m_shared_other=int(m_shared_other),
        m_ec=m_ec,
        m_t=int(m_t),
        m_w=int(m_w),
        m_scene=m_scene,
        m_scene_eff=m_ec / n_exploit + m_scene,
        m_tot=m_ec + n_exploit * m_scene,
    )


def extrapolate_memory_costs(measured: MemoryCosts, n_exploit: int) -> MemoryCosts:
    """Eq. 10-11 at another N_exploit (m_scene is exactly constant: every scene has the same tensors)."""
    scale = n_exploit / measured.n_exploit
    return memory_costs(
        measured.m_e,
        measured.m_d,
        measured.m_b,
        round(measured.m_t * scale),
        round(measured.m_w * scale),
        n_exploit,
        measured.m_shared_other,
    )


def relative_change(ours: float, baseline: float) -> float | None:
    """ours / baseline - 1 (e.g. -0.86 = 86 % less), or None when the baseline is 0 or missing."""
    if baseline is None or ours is None or baseline == 0:
        return None
    return float(ours) / float(baseline) - 1.0


# -------------------------------------------------------------------------------------- time to quality
def time_to_reach(times: Sequence[float], psnrs: Sequence[float], target: float) -> float | None:
    """First time at which a PSNR curve reaches ``target`` dB, linearly interpolated between points.

    Args:
        times: increasing times (s) of the evaluations; psnrs: PSNR (dB) at those times.
    Returns:
        the time (s), or None if the curve never reaches the target.
    """
    if len(times) != len(psnrs):
        raise ValueError("times and psnrs differ in length")
    prev_t: float | None = None
    prev_p: float | None = None
    for t, p in zip(times, psnrs):
        if p >= target:
            if prev_t is None or prev_p is None or p == prev_p:
                return float(t)
            frac = (target - prev_p) / (p - prev_p)
            return float(prev_t + frac * (t - prev_t))
        prev_t, prev_p = float(t), float(p)
    return None


def resample_curve(times: Sequence[float], values: Sequence[float], grid: Sequence[float]) -> list[float | None]:
    """Linear interpolation of a curve on ``grid``; None before the first point, last value held after the end."""
    out: list[float | None] = []
    for g in grid:
        if not times or g < times[0]:
            out.append(None)
            continue
        if g >= times[-1]:
            out.append(float(values[-1]))
            continue
        for i in range(1, len(times)):
            if g <= times[i]:
                t0, t1, v0, v1 = times[i - 1], times[i], values[i - 1], values[i]
                out.append(float(v0 if t1 == t0 else v0 + (v1 - v0) * (g - t0) / (t1 - t0)))
                break
    return out


def mean_curve(curves: Sequence[tuple[Sequence[float], Sequence[float]]], grid: Sequence[float]) -> list[float | None]:
    """Average of several ``(times, values)`` curves on a common time grid (points where any curve is
    undefined, i.e. before its first evaluation, are None)."""
    cols = [resample_curve(t, v, grid) for t, v in curves]
    out: list[float | None] = []
    for i in range(len(grid)):
        vals = [c[i] for c in cols]
        out.append(None if not vals or any(v is None for v in vals) else sum(vals) / len(vals))  # type: ignore[arg-type]
    return out


# ------------------------------------------------------------------------------------------- latency
def latency_summary(samples_s: Sequence[float]) -> dict[str, float]:
    """Median / mean / min / p90 of timed repetitions, converted to milliseconds."""
    if not samples_s:
        raise ValueError("no latency samples")
    ms = sorted(1000.0 * s for s in samples_s)
    n = len(ms)
    mid = n // 2
    median = ms[mid] if n % 2 else 0.5 * (ms[mid - 1] + ms[mid])
    return {
        "median_ms": median,
        "mean_ms": sum(ms) / n,
        "min_ms": ms[0],
        "p90_ms": ms[min(n - 1, math.ceil(0.9 * n) - 1)],
        "n": n,
    }
