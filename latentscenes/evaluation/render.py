"""Novel views and turntables of learned scenes: decoded RGB, latent channels and depth, as PNGs, GIFs and MP4s.

The camera path circles the origin at the dataset's camera distance and elevation (see
:mod:`latentscenes.evaluation.cameras`), looking at the origin, OpenCV convention, world z-up.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from latentscenes.evaluation.cameras import CameraDefaults, orbit_cameras
from latentscenes.evaluation.images import depth_image, latent_channels_image, rgb_to_uint8, save_gif, save_mp4, save_png
from latentscenes.evaluation.model import SceneModel, autoencoder_for, render_decoded, render_resolution


@dataclass
class TurntableConfig:
    """How to render a turntable.

    Attributes:
        n_frames: frames over one full turn.
        fps: frame rate of the GIF / MP4.
        n_views: how many of the frames are also saved as separate PNGs (evenly spaced; 0 = none).
        radius: camera distance; ``None`` = the dataset's (from :class:`CameraDefaults`).
        elevation_deg: degrees above the xy-plane; ``None`` = the dataset's.
        image_size: output RGB (H, W); ``None`` = the dataset's image size given by the caller.
        azimuth_start_deg: azimuth of the first frame (0 = camera on the +x axis).
        formats: which animations to write, any of ``"gif"`` and ``"mp4"`` (see :func:`turntable_formats`).
    """

    n_frames: int = 24
    fps: float = 8.0
    n_views: int = 4
    radius: float | None = None
    elevation_deg: float | None = None
    image_size: tuple[int, int] | None = None
    azimuth_start_deg: float = 30.0
    formats: tuple[str, ...] = ("gif",)


#: The animation formats a turntable can be written in (file suffixes).
TURNTABLE_FORMATS = ("gif", "mp4")


def turntable_formats(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"gif"``, ``"mp4"``, ``"both"`` or a list of formats -> the formats to write, in the order gif, mp4.

    Raises:
        ValueError: for an empty selection or an unknown format (the message lists the choices).
    """
    items = [spec] if isinstance(spec, str) else list(spec)
    chosen: set[str] = set()
    for item in items:
        f = str(item).lower().lstrip(".")
        if f == "both":
            chosen.update(TURNTABLE_FORMATS)
        elif f in TURNTABLE_FORMATS:
            chosen.add(f)
        else:
            raise ValueError(f"unknown turntable format {item!r}: choose gif, mp4 or both")
    if not chosen:
        raise ValueError("no turntable format given: choose gif, mp4 or both")
    return tuple(f for f in TURNTABLE_FORMATS if f in chosen)


@dataclass
class RenderedFrames:
    """Frames of one camera path (CPU tensors).

    Attributes:
        rgb: ``[N, 3, H, W]`` in [-1, 1] (decoded for latent models).
        latent: ``[N, C, h, w]`` normalised latents (latent models) or ``None``.
        depth: ``[N, 1, h, w]`` world-unit depth or ``None``.
        opacity: ``[N, 1, h, w]`` accumulated opacity or ``None``.
        c2w: ``[N, 4, 4]`` the cameras used.
        ms_per_frame: mean wall time per frame (render + decode), milliseconds.
    """

    rgb: torch.Tensor
    latent: torch.Tensor | None
    depth: torch.Tensor | None
    c2w: torch.Tensor
    ms_per_frame: float
    opacity: torch.Tensor | None = None


def render_path(model: SceneModel, scene_id: str, c2w: torch.Tensor, K: torch.Tensor, image_size: tuple[int, int],
                offset_ensemble: int | None = None) -> RenderedFrames:
    """Render ``scene_id`` from cameras ``c2w [N,4,4]`` with intrinsics ``K [3,3]`` or ``[N,3,3]`` (normalised).

    Args:
        image_size: the RGB output size (H, W); latent models render at (H, W) / downsample then decode.
        offset_ensemble: latent models: this call's offset grid instead of the run's (``None``: the run's).
    Raises:
        KeyError: unknown scene; ValueError: image size not divisible by the autoencoder's downsampling.
    """
    hw = render_resolution(model, image_size, scene_id)
    if K.dim() == 2:
        K = K.unsqueeze(0).expand(c2w.shape[0], 3, 3)
    ae = autoencoder_for(model, scene_id)
    rgbs, lats, depths, ops = [], [], [], []
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(c2w.shape[0]):
            if ae is not None:
                dec = render_decoded(model, scene_id, c2w[i : i + 1].float(), K[i : i + 1].float(), hw,
                                     grid=offset_ensemble)
                out = dec.render
                lats.append(out.image.detach().float().cpu())
                rgbs.append(dec.rgb)
            else:
                out = model.render(scene_id, c2w[i : i + 1].float(), K[i : i + 1].float(), hw)
                rgbs.append(out.image.detach().float().cpu())
            if out.depth is not None:
                depths.append(out.depth.detach().float().cpu())
            if out.opacity is not None:
                ops.append(out.opacity.detach().float().cpu())
    ms = (time.perf_counter() - t0) * 1000.0 / max(1, c2w.shape[0])
    return RenderedFrames(
        rgb=torch.cat(rgbs),
        latent=torch.cat(lats) if lats else None,
        depth=torch.cat(depths) if len(depths) == c2w.shape[0] else None,
        c2w=c2w,
        ms_per_frame=ms,
        opacity=torch.cat(ops) if len(ops) == c2w.shape[0] else None,
    )


def _panel(frames: RenderedFrames, i: int, near: float, far: float) -> np.ndarray:
    """RGB | depth | latent channels for frame ``i``, side by side at the RGB height."""
    rgb = rgb_to_uint8(frames.rgb[i])
    H, W = rgb.shape[:2]
    parts = [rgb]
    white = np.full((H, 4, 3), 255, np.uint8)
    if frames.depth is not None:
        op = frames.opacity[i] if frames.opacity is not None else None
        parts += [white, depth_image(frames.depth[i], near, far, size=(H, W), opacity=op)]
    if frames.latent is not None:
        parts += [white, latent_channels_image(frames.latent[i], size=(H, W))]
    return np.concatenate(parts, axis=1)


def render_turntable(
    model: SceneModel,
    scene_id: str,
    camera: CameraDefaults,
    out_dir: str | Path,
    image_size: tuple[int, int],
    cfg: TurntableConfig | None = None,
) -> dict:
    """Render a turntable of ``scene_id`` and write it under ``out_dir``.

    Files written (``.gif`` and/or ``.mp4`` after ``cfg.formats``):
      * ``turntable.gif`` / ``turntable.mp4``: decoded RGB frames;
      * ``turntable_panel.gif`` / ``turntable_panel.mp4``: RGB | depth (plasma, near..far, blended over white by
        opacity) | latent channels ((v+1)/2 greyscale);
      * ``view_{k}.png`` (RGB), ``view_{k}_panel.png``, ``view_{k}_depth.png`` and (latent models)
        ``view_{k}_latent.png`` for ``cfg.n_views`` frames evenly spaced along the path.

    Args:
        camera: radius, elevation and intrinsics defaults (the config may override radius/elevation).
        image_size: RGB (H, W) used when ``cfg.image_size`` is ``None``.
    Returns:
        ``{"turntable": path, "panel": path, "animations": {fmt: {"turntable": path, "panel": path}},
        "views": [paths], "panels": [paths], "ms_per_frame": float, "radius": float, "elevation_deg": float}``;
        ``turntable``/``panel`` are the GIFs when GIF is among the formats, else the MP4s (paths as given).
    Raises:
        ValueError: an unknown format in ``cfg.formats``; an image size the model cannot render.
    """
    cfg = cfg or TurntableConfig()
    formats = turntable_formats(cfg.formats)
    out_dir = Path(out_dir)
    radius = cfg.radius if cfg.radius is not None else camera.radius
    elev = math.radians(cfg.elevation_deg) if cfg.elevation_deg is not None else camera.elevation
    size = tuple(cfg.image_size) if cfg.image_size is not None else tuple(image_size)
    c2w = orbit_cameras(cfg.n_frames, radius, elev, azimuth_start=math.radians(cfg.azimuth_start_deg))
    frames = render_path(model, scene_id, c2w, camera.K.float(), size)  # type: ignore[arg-type]
    rgb_frames = [rgb_to_uint8(frames.rgb[i]) for i in range(cfg.n_frames)]
    panels = [_panel(frames, i, model.near, model.far) for i in range(cfg.n_frames)]
    writers = {"gif": save_gif, "mp4": save_mp4}
    animations = {
        f: {"turntable": str(writers[f](rgb_frames, out_dir / f"turntable.{f}", cfg.fps)),
            "panel": str(writers[f](panels, out_dir / f"turntable_panel.{f}", cfg.fps))}
        for f in formats
    }
    result = {
        **animations[formats[0]],
        "animations": animations,
        "views": [],
        "panels": [],
        "ms_per_frame": frames.ms_per_frame,
        "radius": float(radius),
        "elevation_deg": math.degrees(elev),
    }
    if cfg.n_views > 0:
        picks = sorted({int(round(k * cfg.n_frames / cfg.n_views)) % cfg.n_frames for k in range(cfg.n_views)})
        H, W = rgb_frames[0].shape[:2]
        for k, i in enumerate(picks):
            result["views"].append(str(save_png(rgb_frames[i], out_dir / f"view_{k}.png")))
            result["panels"].append(str(save_png(panels[i], out_dir / f"view_{k}_panel.png")))
            if frames.depth is not None:
                op = frames.opacity[i] if frames.opacity is not None else None
                save_png(depth_image(frames.depth[i], model.near, model.far, size=(H, W), opacity=op),
                         out_dir / f"view_{k}_depth.png")
            if frames.latent is not None:
                save_png(latent_channels_image(frames.latent[i], size=(H, W)), out_dir / f"view_{k}_latent.png")
    return result
