"""Batched multi-scene tri-plane volume rendering (paper Sec. 3.1; docs/rendering.md).

One call renders B views, each with its own tri-plane (so a batch may mix views of many scenes):
rays (:mod:`.rays`) -> coarse depths (:mod:`.sampling`) -> tri-plane features (:mod:`.triplane`) -> MLP
(:mod:`.decoder`) -> importance depths -> MLP -> sort -> compositing (:mod:`.compositing`) -> x2-1 to [-1, 1].
Work is split into chunks of at most ``RenderConfig.chunk_samples`` point samples (CPU caches stay warm
below ~200K samples: measured in docs/rendering.md, "Defaults"). Gradients flow to planes and decoder.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from latentscenes.config import register_presets
from latentscenes.rendering.compositing import volume_render
from latentscenes.rendering.rays import generate_rays, generate_rays_uv, pixel_uv
from latentscenes.rendering.sampling import importance_samples, stratified_samples
from latentscenes.rendering.triplane import sample_triplanes


@dataclass
class RenderConfig:
    """Renderer settings.

    Attributes:
        near, far: ray interval (world units along unit directions); paper 0.5 / 2.1 (cameras at radius 1.3).
        n_coarse: stratified samples per ray (paper 48, >= 2).
        n_importance: importance samples per ray (paper 48; 0 disables the fine pass).
        box_size: edge of the cube [-box/2, box/2]^3 covered by the planes (paper 2).
        plane_axes: ``"xy_xz_yz"`` or the authors' ``"eg3d_legacy"`` projection (XY, XZ, ZX).
        chunk_samples: maximum point samples evaluated at once (memory / cache bound; <= ~200K on CPU).
        deterministic: no sampling noise (evaluation, tests).
        decoder_hidden: hidden width of the shared MLP (paper 64); read by code that builds the decoder.
        supersample: rays per pixel side in :func:`render_views` (1 = one ray through each pixel centre, the
            paper). With s > 1 every pixel is the mean of an s x s grid of sub-pixel rays, i.e. a box filter
            over its footprint: a latent pixel stands for an 8x8 block of the image, which one centre ray
            cannot see (measured in docs/fidelity.md). Costs s^2 the rays.
        pixel_jitter: when not ``deterministic`` (training), each ray of :func:`render_views` passes through a
            uniformly random point of its (sub-)pixel instead of its centre, so that over many steps the field
            is fitted to the whole footprint of every pixel at the cost of one ray (anti-aliasing by jitter).
            Evaluation renders (``deterministic``) always use the centres.
        offset_ensemble: g >= 1, latent scenes only, read where a latent render is decoded
            (:func:`latentscenes.evaluation.model.render_decoded`: evaluation, ``render``, the viewer, the
            benchmark's render timing). With g > 1 a view is rendered at g x g sub-latent-pixel offsets
            (:mod:`latentscenes.rendering.offsets`), each decoded, moved back and averaged: g^2 renders and
            decodes per image. 1 = one render and one decode (the paper). Training never reads it.
    """

    near: float = 0.5
    far: float = 2.1
    n_coarse: int = 48
    n_importance: int = 48
    box_size: float = 2.0
    plane_axes: Literal["xy_xz_yz", "eg3d_legacy"] = "xy_xz_yz"
    chunk_samples: int = 200_000
    deterministic: bool = False
    decoder_hidden: int = 64
    supersample: int = 1
    pixel_jitter: bool = False
    offset_ensemble: int = 1

    @property
    def samples_per_ray(self) -> int:
        return self.n_coarse + self.n_importance


register_presets(
    RenderConfig,
    {
        "test": lambda: RenderConfig(n_coarse=8, n_importance=8, decoder_hidden=16),
        "tiny-cpu": lambda: RenderConfig(n_coarse=24, n_importance=24),
        "paper": lambda: RenderConfig(n_coarse=48, n_importance=48),
    },
)


def _decode(planes: torch.Tensor, decoder: nn.Module, pts: torch.Tensor, cfg: RenderConfig):
    """pts [B,R,S,3] -> (raw [B,R,S,1], colour [B,R,S,C])."""
    B, R, S, _ = pts.shape
    feats = sample_triplanes(planes, pts.reshape(B, R * S, 3), cfg.box_size, cfg.plane_axes)
    raw, col = decoder(feats)
    return raw.reshape(B, R, S, 1), col.reshape(B, R, S, -1)


def _render_chunk(planes, decoder, origins, dirs, cfg: RenderConfig, bg, generator):
    B, R, _ = origins.shape
    t = stratified_samples(cfg.near, cfg.far, (B, R), cfg.n_coarse, cfg.deterministic, origins.device, generator)
    pts = origins[:, :, None, :] + dirs[:, :, None, :] * t[..., None]
    raw, col = _decode(planes, decoder, pts, cfg)
    if cfg.n_importance > 0:
        with torch.no_grad():
            coarse = volume_render(col.detach(), raw.detach(), t, bg)
        t_f = importance_samples(t, coarse["weights"], cfg.n_importance, cfg.deterministic, generator)
        pts_f = origins[:, :, None, :] + dirs[:, :, None, :] * t_f[..., None]
        raw_f, col_f = _decode(planes, decoder, pts_f, cfg)
        t = torch.cat([t, t_f], dim=-1)
        t, order = torch.sort(t, dim=-1)
        raw = torch.gather(torch.cat([raw, raw_f], dim=-2), -2, order[..., None])
        col_all = torch.cat([col, col_f], dim=-2)
        col = torch.gather(col_all, -2, order[..., None].expand(-1, -1, -1, col_all.shape[-1]))
    out = volume_render(col, raw, t, bg)
    return {"colour": out["colour"] * 2.0 - 1.0, "depth": out["depth"], "opacity": out["opacity"]}


def render_rays(
    planes: torch.Tensor,
    decoder: nn.Module,
    origins: torch.Tensor,
    dirs: torch.Tensor,
    cfg: RenderConfig,
    bg: torch.Tensor,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Render arbitrary rays, one tri-plane per batch element (paper Sec. 3.1; docs/rendering.md).

    Args:
        planes: ``[B, 3, F, T, T]`` tri-planes (e.g. ``SceneBank.planes(rows)``; may repeat a scene).
        decoder: module mapping ``[..., F]`` -> ``(raw_density [..., 1], colour [..., C])``
            (:class:`TriplaneDecoder`).
        origins, dirs: ``[B, N, 3]`` ray origins and unit directions (world units).
        cfg: :class:`RenderConfig`.
        bg: ``[C]`` or ``[B, 1, C]`` background colour in [0, 1] (pre-scale space; white RGB = ones(3)).
        generator: optional RNG for the sampling noise.
    Returns:
        dict ``colour [B, N, C]`` in model space [-1, 1] (up to +-0.002 from the widened sigmoid),
        ``depth [B, N, 1]`` (world units, in [near, far]), ``opacity [B, N, 1]`` in [0, 1].
    Raises:
        ValueError: on mismatched shapes.
    """
    if origins.shape != dirs.shape or origins.dim() != 3 or origins.shape[0] != planes.shape[0]:
        raise ValueError(
            f"origins/dirs must be [B,N,3] with B={planes.shape[0]}: {tuple(origins.shape)} / {tuple(dirs.shape)}"
        )
    B, N, _ = origins.shape
    bg = torch.as_tensor(bg, dtype=torch.float32, device=origins.device)
    rays_per_chunk = max(1, cfg.chunk_samples // max(1, B * cfg.samples_per_ray))
    outs = [
        _render_chunk(planes, decoder, origins[:, s : s + rays_per_chunk], dirs[:, s : s + rays_per_chunk], cfg, bg, generator)
        for s in range(0, N, rays_per_chunk)
    ]
    if len(outs) == 1:
        return outs[0]
    return {k: torch.cat([o[k] for o in outs], dim=1) for k in outs[0]}


def render_views(
    planes: torch.Tensor,
    decoder: nn.Module,
    c2w: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    cfg: RenderConfig,
    bg: torch.Tensor,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Render full images, one view per tri-plane (gradients allowed).

    Args:
        planes: ``[B, 3, F, T, T]``.
        decoder: shared MLP (see :func:`render_rays`).
        c2w: ``[B, 4, 4]`` OpenCV camera-to-world; K: ``[B, 3, 3]`` normalised intrinsics.
        height, width: output size in pixels (e.g. 128 for RGB, 16 for its latent; same camera).
        cfg: :class:`RenderConfig` (``supersample`` s: each pixel is the mean of s x s sub-pixel rays);
            bg: ``[C]`` background in [0, 1].
    Returns:
        dict ``image [B, C, H, W]`` in [-1, 1], ``depth [B, 1, H, W]``, ``opacity [B, 1, H, W]``.
    Raises:
        ValueError: on mismatched shapes or ``supersample < 1``.
    """
    s = int(cfg.supersample)
    if s < 1:
        raise ValueError(f"supersample must be >= 1, got {cfg.supersample}")
    # The sub-pixel centres of an s x s grid in every pixel are the pixel centres of the s-times larger image.
    c2w, K = c2w.to(planes.device), K.to(planes.device)
    if cfg.pixel_jitter and not cfg.deterministic:
        uv = pixel_uv(height * s, width * s, device=planes.device).expand(planes.shape[0], -1, -1)
        noise = torch.rand(uv.shape, generator=generator, device=planes.device) - 0.5
        uv = uv + noise / torch.tensor([width * s, height * s], dtype=uv.dtype, device=uv.device)
        origins, dirs = generate_rays_uv(c2w, K, uv)
    else:
        origins, dirs = generate_rays(c2w, K, height * s, width * s)
    out = render_rays(planes, decoder, origins, dirs, cfg, bg, generator)
    B = planes.shape[0]

    def img(x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(B, height * s, width * s, -1).permute(0, 3, 1, 2)
        return torch.nn.functional.avg_pool2d(x, s) if s > 1 else x

    return {"image": img(out["colour"]), "depth": img(out["depth"]), "opacity": img(out["opacity"])}


def render_views_no_grad(
    planes: torch.Tensor,
    decoder: nn.Module,
    c2w: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    cfg: RenderConfig,
    bg: torch.Tensor,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`render_views` under ``torch.inference_mode`` (no autograd graph: evaluation and speed figures).

    Same arguments and outputs as :func:`render_views`; the outputs carry no gradient.
    """
    with torch.inference_mode():
        return render_views(planes, decoder, c2w, K, height, width, cfg, bg, generator)


def measure_render_ms(
    planes: torch.Tensor,
    decoder: nn.Module,
    c2w: torch.Tensor,
    K: torch.Tensor,
    cfg: RenderConfig,
    height: int = 128,
    width: int = 128,
    repeats: int = 3,
    warmup: int = 1,
) -> float:
    """Median wall time (ms) to render ONE view without autograd (paper Tab. 1 "Rendering Time").

    Args:
        planes: ``[1, 3, F, T, T]``; c2w ``[1, 4, 4]``; K ``[1, 3, 3]``.
        cfg: render settings (``deterministic`` is forced on so repeats do identical work).
        repeats: timed renders (>= 1); warmup: untimed renders first.
    Returns:
        milliseconds per ``height x width`` view.
    """
    cfg = dataclasses.replace(cfg, deterministic=True)
    C = getattr(decoder, "out_channels", 3)
    bg = torch.ones(C, device=planes.device)
    times = []
    for i in range(warmup + max(1, repeats)):
        if planes.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        render_views_no_grad(planes, decoder, c2w, K, height, width, cfg, bg)
        if planes.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return times[len(times) // 2]
