"""Uncertainty of PSNR differences: a paired bootstrap over scenes.

Scenes differ far more from each other than two methods differ on one scene, so a difference of two methods'
mean PSNR is only meaningful next to its spread over scenes. :func:`paired_bootstrap` resamples *scenes*
(with replacement, the same draw for both methods) and reports the percentile interval of the mean
per-scene difference (Efron & Tibshirani 1993, ch. 13). Views of one scene are not independent, which is why
scenes, not views, are the resampled unit.
"""

from __future__ import annotations

from typing import Mapping

import torch


def scene_values(result: Mapping, metric: str = "psnr") -> dict[str, float]:
    """Per-scene means of ``metric`` from an evaluation result (``evaluate_model``'s layout).

    Raises:
        KeyError: the result has no ``scenes`` entry.
    """
    out = {}
    for sid, rec in result["scenes"].items():
        v = rec.get("mean", {}).get(metric)
        if v is not None:
            out[sid] = float(v)
    return out


def paired_bootstrap(
    a: Mapping[str, float], b: Mapping[str, float], n_boot: int = 10000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Mean of ``a[s] - b[s]`` over the scenes both hold, with a percentile bootstrap interval.

    Args:
        a, b: per-scene values (e.g. PSNR in dB) of two methods, keyed by scene id.
        n_boot: bootstrap resamples. level: coverage of the interval (0 < level < 1). seed: RNG seed.
    Returns:
        ``{"diff": mean difference, "lo", "hi": interval bounds, "n_scenes", "level"}`` (units of the inputs).
    Raises:
        ValueError: fewer than 2 common scenes, or ``level`` outside (0, 1).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    common = sorted(set(a) & set(b))
    if len(common) < 2:
        raise ValueError(f"a paired bootstrap needs >= 2 scenes common to both methods, got {len(common)}")
    d = torch.tensor([a[s] - b[s] for s in common], dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(common), (n_boot, len(common)), generator=g)
    means = d[idx].mean(dim=1)
    q = torch.tensor([(1 - level) / 2, 1 - (1 - level) / 2], dtype=torch.float64)
    lo, hi = torch.quantile(means, q).tolist()
    return {"diff": float(d.mean()), "lo": float(lo), "hi": float(hi), "n_scenes": len(common), "level": level}


def format_interval(r: Mapping[str, float], unit: str = "dB") -> str:
    """``+1.23 dB [+0.40, +2.05]`` for a :func:`paired_bootstrap` result."""
    return f"{r['diff']:+.2f} {unit} [{r['lo']:+.2f}, {r['hi']:+.2f}]"
