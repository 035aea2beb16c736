"""Emission-absorption compositing with midpoint quadrature (paper Sec. 3.1, ref. [13]; docs/rendering.md).

For sorted depths t_0..t_{S-1} along a unit-direction ray, interval k = [t_k, t_{k+1}] has length
delta_k = t_{k+1} - t_k, colour c_k = (c(t_k) + c(t_{k+1})) / 2 and density sigma_k = softplus(r_k - 1) with
r_k = (r(t_k) + r(t_{k+1})) / 2 the mean raw MLP output (the -1 bias starts scenes nearly transparent).
With tau_k = sigma_k * delta_k:

    alpha_k = 1 - exp(-tau_k),  T_k = exp(-sum_{j<k} tau_j),  w_k = T_k * alpha_k,
    C = sum_k w_k c_k + (1 - sum_k w_k) * bg,  opacity = sum_k w_k = 1 - exp(-sum_k tau_k).

T_k is the exact product prod_{j<k}(1 - alpha_j) computed as an exponential of a cumulative sum; the authors'
code adds 1e-10 inside the product, which only changes results by ~1e-10 per interval. Depth is the expected
depth sum w_k t_mid_k / sum w_k (NaN-free: the far depth where the ray is empty), clamped to [t_0, t_{S-1}].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def volume_render(
    colours: torch.Tensor, raw_density: torch.Tensor, depths: torch.Tensor, bg: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Composite samples along rays.

    Args:
        colours: ``[..., S, C]`` per-sample colour in the [0, 1] pre-scale space.
        raw_density: ``[..., S, 1]`` raw MLP density output (activation softplus(raw - 1) applied here).
        depths: ``[..., S]`` sorted sample depths (world units along unit directions), S >= 2.
        bg: ``[C]`` or ``[..., C]`` (broadcastable to the leading shape) background colour in [0, 1] space.
    Returns:
        dict with ``colour [..., C]`` in [0, 1] pre-scale space (not yet mapped to [-1, 1]),
        ``depth [..., 1]``, ``opacity [..., 1]`` in [0, 1], ``weights [..., S-1]`` (per interval),
        ``t_mid [..., S-1]``.
    Raises:
        ValueError: on shape mismatch.
    """
    if colours.shape[:-1] != raw_density.shape[:-1] or colours.shape[:-1] != depths.shape or depths.shape[-1] < 2:
        raise ValueError(
            f"volume_render shapes: colours {tuple(colours.shape)}, raw_density {tuple(raw_density.shape)},"
            f" depths {tuple(depths.shape)}"
        )
    delta = depths[..., 1:] - depths[..., :-1]  # [..., S-1]
    t_mid = 0.5 * (depths[..., 1:] + depths[..., :-1])
    c_mid = 0.5 * (colours[..., 1:, :] + colours[..., :-1, :])
    r_mid = 0.5 * (raw_density[..., 1:, 0] + raw_density[..., :-1, 0])
    sigma = F.softplus(r_mid - 1.0)
    tau = sigma * delta
    # exclusive cumulative optical depth -> transmittance before each interval
    acc = torch.cumsum(tau, dim=-1)
    trans = torch.exp(-(acc - tau))
    weights = trans * (1.0 - torch.exp(-tau))
    opacity = weights.sum(dim=-1, keepdim=True)
    bg = bg.to(colours)
    colour = (weights.unsqueeze(-1) * c_mid).sum(dim=-2) + (1.0 - opacity) * bg
    t_lo, t_hi = depths[..., :1], depths[..., -1:]
    wt = (weights * t_mid).sum(dim=-1, keepdim=True)
    has_mass = opacity > 1e-10
    depth = torch.where(has_mass, wt / torch.where(has_mass, opacity, torch.ones_like(opacity)), t_hi)
    depth = torch.minimum(torch.maximum(depth, t_lo), t_hi)
    return {"colour": colour, "depth": depth, "opacity": opacity, "weights": weights, "t_mid": t_mid}
