"""Depths along rays: stratified coarse samples and inverse-CDF importance samples (docs/rendering.md).

Coarse: ``n`` depths on [near, far], evenly spaced (``linspace``, endpoints included) and, for training, each
jittered uniformly within +-half a spacing and clipped to [near, far] (so samples never leave the interval).
Importance: the coarse compositing weights of each interval [t_k, t_{k+1}] are smoothed (2-tap max, then
2-tap mean, as in the authors' renderer), floored by +0.01 so that empty regions keep some samples, and
``n`` depths are drawn by inverting the piecewise-linear CDF of that piecewise-constant density.
``deterministic=True`` gives reproducible samples for evaluation (no jitter, evenly spaced CDF levels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def stratified_samples(
    near: float | torch.Tensor,
    far: float | torch.Tensor,
    batch_shape: tuple[int, ...],
    n_samples: int,
    deterministic: bool = False,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Coarse depths between ``near`` and ``far``.

    Args:
        near, far: distances along the unit ray direction (world units), floats or tensors broadcastable to
            ``batch_shape + (1,)``; ``far > near``.
        batch_shape: leading shape, e.g. ``(B, R)`` for B views of R rays.
        n_samples: samples per ray (>= 2).
        deterministic: no jitter (evaluation).
    Returns:
        ``batch_shape + (n_samples,)`` float32 depths, sorted ascending, within [near, far];
        the deterministic samples are exactly ``linspace(near, far, n_samples)``.
    Raises:
        ValueError: if ``n_samples < 2`` or ``far <= near`` (for float arguments).
    """
    if n_samples < 2:
        raise ValueError(f"need at least 2 coarse samples per ray, got {n_samples}")
    if not torch.is_tensor(near) and not torch.is_tensor(far) and far <= near:
        raise ValueError(f"far ({far}) must exceed near ({near})")
    s = torch.linspace(0.0, 1.0, n_samples, device=device).expand(*batch_shape, n_samples)
    if not deterministic:
        jitter = torch.rand(s.shape, device=device, generator=generator) - 0.5
        s = (s + jitter / (n_samples - 1)).clamp(0.0, 1.0)
        s, _ = torch.sort(s, dim=-1)
    return near + (far - near) * s


def smooth_weights(weights: torch.Tensor, floor: float = 0.01) -> torch.Tensor:
    """2-tap max-pool then 2-tap mean of per-interval weights, plus ``floor`` (same length as the input).

    Args:
        weights: ``[..., K]`` non-negative compositing weights of K intervals.
    Returns:
        ``[..., K]`` smoothed weights (> 0).
    """
    shape = weights.shape
    w = weights.reshape(-1, 1, shape[-1])
    w = F.max_pool1d(w, kernel_size=2, stride=1, padding=1)  # K + 1
    w = F.avg_pool1d(w, kernel_size=2, stride=1)  # K
    return w.reshape(shape) + floor


def sample_pdf(
    edges: torch.Tensor,
    weights: torch.Tensor,
    n_samples: int,
    deterministic: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Inverse-transform sampling of a piecewise-constant density over bins.

    Args:
        edges: ``[..., K+1]`` sorted bin edges (depths).
        weights: ``[..., K]`` non-negative bin masses (need not sum to 1; an all-zero row is treated as uniform).
        n_samples: samples per row.
        deterministic: use the CDF levels (k + 0.5) / n instead of uniform random levels.
    Returns:
        ``[..., n_samples]`` depths within [edges[0], edges[-1]] (not sorted when random).
    Raises:
        ValueError: if the shapes disagree.
    """
    if edges.shape[:-1] != weights.shape[:-1] or edges.shape[-1] != weights.shape[-1] + 1:
        raise ValueError(f"edges {tuple(edges.shape)} must have one more entry than weights {tuple(weights.shape)}")
    K = weights.shape[-1]
    w = weights + 1e-5  # no zero-mass bin, so the CDF is strictly increasing and the inverse well defined
    pdf = w / w.sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[..., :1]), torch.cumsum(pdf, dim=-1)], dim=-1)  # [..., K+1]
    cdf = cdf.clamp(max=1.0)
    lead = weights.shape[:-1]
    if deterministic:
        u = ((torch.arange(n_samples, device=edges.device, dtype=edges.dtype) + 0.5) / n_samples).expand(*lead, n_samples)
    else:
        u = torch.rand(*lead, n_samples, device=edges.device, dtype=edges.dtype, generator=generator)
    u = u.contiguous()
    idx = torch.searchsorted(cdf.contiguous(), u, right=True)  # first edge with cdf > u
    hi = idx.clamp(1, K)
    lo = hi - 1
    c_lo, c_hi = cdf.gather(-1, lo), cdf.gather(-1, hi)
    e_lo, e_hi = edges.gather(-1, lo), edges.gather(-1, hi)
    frac = ((u - c_lo) / (c_hi - c_lo).clamp(min=1e-12)).clamp(0.0, 1.0)
    return e_lo + frac * (e_hi - e_lo)


def importance_samples(
    t_coarse: torch.Tensor,
    weights: torch.Tensor,
    n_samples: int,
    deterministic: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Fine depths drawn where the coarse pass found matter (EG3D's importance sampler; docs/rendering.md).

    Args:
        t_coarse: ``[..., S]`` sorted coarse depths.
        weights: ``[..., S-1]`` coarse compositing weights of the intervals [t_k, t_{k+1}] (gradients are cut).
        n_samples: fine samples per ray.
    Returns:
        ``[..., n_samples]`` depths within [t_coarse[0], t_coarse[-1]], no gradient.
    """
    with torch.no_grad():
        return sample_pdf(t_coarse.detach(), smooth_weights(weights.detach()), n_samples, deterministic, generator)
