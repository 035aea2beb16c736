"""Image metrics, from torchmetrics, under one protocol used everywhere in the project (a low floor: training,
the autoencoder's pre-training, the baselines and evaluation all import it; it imports only torch).

Protocol (docs/evaluation.md): images are compared in [0, 1] (model outputs in [-1, 1] are mapped with
(x + 1) / 2 and clamped to [0, 1] first), on the full frame including the white background, with
``data_range = 1``. PSNR and SSIM are computed **per image** and then averaged (per view -> per scene ->
overall), unlike the authors' code (``ae/eval.py``), which averaged MSE per batch of the stage.
Latent PSNR compares normalised latents in [-1, 1] with ``data_range = 2`` (peak^2 = 4, as in the paper's code).
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Map model-space images in [-1, 1] to [0, 1] and clamp."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def psnr_per_image(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB for each image of a batch.

    Args:
        pred, target: ``[B, C, H, W]`` in a range of width ``data_range`` (e.g. [0, 1] -> 1.0).
    Returns:
        ``[B]`` float tensor, dB (``inf`` for identical images).
    Raises:
        ValueError: if the shapes differ.
    """
    if pred.shape != target.shape:
        raise ValueError(f"psnr: shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    pred = pred.detach().float()
    target = target.detach().float()
    return peak_signal_noise_ratio(
        pred, target, data_range=data_range, reduction="none", dim=tuple(range(1, pred.dim()))
    )


def ssim_per_image(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """SSIM (Gaussian window 11, sigma 1.5) for each image of a batch: ``[B, C, H, W]`` -> ``[B]`` in [-1, 1].

    Images smaller than 11 px (latents) use the largest odd window below their size, with sigma = (k-1)/7
    (e.g. 7 px for an 8x8 latent, 3 px for 4x4).

    Raises:
        ValueError: if the shapes differ.
    """
    if pred.shape != target.shape:
        raise ValueError(f"ssim: shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    pred = pred.detach().float()
    target = target.detach().float()
    # torchmetrics needs the image to be larger than the window; small latents use a smaller window.
    # With a Gaussian window torchmetrics derives the window size from sigma (int(3.5 sigma + 0.5) * 2 + 1)
    # and ignores kernel_size, so a smaller window needs a smaller sigma: sigma = (k - 1) / 7 gives size k.
    side = min(pred.shape[-2:])
    if side >= 11:
        k, sigma = 11, 1.5
    else:
        k = max(3, ((side - 1) // 2) * 2 + 1)
        sigma = (k - 1) / 7.0
    return structural_similarity_index_measure(
        pred, target, data_range=data_range, reduction="none", kernel_size=k, sigma=sigma
    )


def opponent_chroma(x: torch.Tensor) -> torch.Tensor:
    """The two opponent-colour axes of RGB images: ``[B,3,H,W] -> [B,2,H,W]`` = (R - G, (R + G) / 2 - B).

    Zero for every grey (R = G = B), so a colour-blind reconstruction is measured as such. Both axes are
    differences of channels: an offset of the range cancels and a scale carries through (values in [-1, 1]
    for images in [0, 1]; twice that for images in [-1, 1]). Not from the paper: a project metric/loss term
    (docs/autoencoder.md, "Colour").

    Raises:
        ValueError: ``x`` is not ``[B, 3, H, W]``.
    """
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"opponent_chroma: expected [B, 3, H, W] RGB images, got {tuple(x.shape)}")
    r, g, b = x.unbind(1)
    return torch.stack([r - g, 0.5 * (r + g) - b], dim=1)


def chroma_error_per_image(pred: torch.Tensor, target: torch.Tensor, white: float = 0.9) -> torch.Tensor:
    """Mean absolute opponent-chroma error on the object pixels of each image (``[B,3,H,W]`` in [0,1] -> ``[B]``).

    PSNR over a mostly white frame barely sees colour (docs/autoencoder.md, "Colour": a colour-blind
    autoencoder passed 30 dB); this reports it directly. Object pixels: target mean below ``white``; an image
    without any scores 0. Values in [0, 1] (0 = exact colours). Not from the paper: a project metric.

    Raises:
        ValueError: shapes differ, or not ``[B, 3, H, W]``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"chroma error: shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    m = (target.mean(1) < white).float()  # [B,H,W]
    err = (opponent_chroma(pred.float()) - opponent_chroma(target.float())).abs().mean(1)
    return (err * m).sum((1, 2)) / m.sum((1, 2)).clamp_min(1.0)


def rgb_metrics(pred_model: torch.Tensor, target_unit: torch.Tensor) -> dict[str, torch.Tensor]:
    """PSNR/SSIM of model-space predictions ``[B,3,H,W]`` in [-1,1] against ground truth in [0,1]."""
    p = to_unit_range(pred_model)
    return {"psnr": psnr_per_image(p, target_unit), "ssim": ssim_per_image(p, target_unit)}
