"""Micro-Macro tri-plane decomposition (paper Sec. 3.4, Eq. 6-7; docs/rendering.md).

    T_s = T_s^mic (+) T_s^mac                  (Eq. 6, (+) = concatenation along features, local first)
    T_s^mac = W_s B = sum_{i=1..M} w_s^i B_i   (Eq. 7)

F_mac = 0 gives plain Tri-Planes ("Micro"); F_mic = 0 gives global-only planes ("Macro").
"""

from __future__ import annotations

import torch


def compose_micro_macro(
    local: torch.Tensor | None, coefs: torch.Tensor | None, global_planes: torch.Tensor | None
) -> torch.Tensor:
    """Build each scene's tri-plane from its local planes and its mixture of shared global planes.

    Args:
        local: ``[B, 3, F_mic, T, T]`` per-scene local planes, or None when F_mic = 0.
        coefs: ``[B, M]`` per-scene mixing weights W_s (no normalisation), or None when F_mac = 0.
        global_planes: ``[M, 3, F_mac, T, T]`` shared planes B_i, or None when F_mac = 0.
    Returns:
        ``[B, 3, F_mic + F_mac, T, T]``: channels ``[:F_mic]`` are ``local``, the rest ``sum_i coefs[:, i] B_i``.
    Raises:
        ValueError: if both parts are missing, only one of ``coefs``/``global_planes`` is given, or shapes
            disagree (batch, M, plane count or resolution).
    """
    if (coefs is None) != (global_planes is None):
        raise ValueError("coefs and global_planes must be given together (or both None)")
    if local is None and coefs is None:
        raise ValueError("need local planes, global planes, or both")
    parts = []
    if local is not None:
        if local.dim() != 5 or local.shape[1] != 3:
            raise ValueError(f"local planes must be [B,3,F_mic,T,T], got {tuple(local.shape)}")
        parts.append(local)
    if coefs is not None:
        if global_planes.dim() != 5 or global_planes.shape[1] != 3:
            raise ValueError(f"global planes must be [M,3,F_mac,T,T], got {tuple(global_planes.shape)}")
        if coefs.dim() != 2 or coefs.shape[1] != global_planes.shape[0]:
            raise ValueError(f"coefs must be [B,M] with M={global_planes.shape[0]}, got {tuple(coefs.shape)}")
        if local is not None and (coefs.shape[0] != local.shape[0] or global_planes.shape[-2:] != local.shape[-2:]):
            raise ValueError(
                f"batch/resolution mismatch: local {tuple(local.shape)}, coefs {tuple(coefs.shape)},"
                f" global {tuple(global_planes.shape)}"
            )
        M = global_planes.shape[0]
        # Eq. 7 as one matrix product: [B, M] @ [M, 3*F_mac*T*T]
        mac = (coefs.to(global_planes.dtype) @ global_planes.reshape(M, -1)).reshape(
            coefs.shape[0], *global_planes.shape[1:]
        )
        parts.append(mac)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
