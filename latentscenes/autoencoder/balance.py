"""Give every latent channel the same spread, without changing what the autoencoder computes.

Why: the renderer fits normalised latents ``tanh(s * z)`` with one scale ``s`` for all channels (the authors'
normaliser), and the tri-planes' latent loss is a mean over channels. A channel whose raw std is 4x smaller than
another's then reaches the fit 4x smaller, so an L1 loss weighs its errors 4x less and the TV prior smooths it
relatively more. Channels grown by ``ae grow --latent-channels`` stay much smaller than the trained ones (thirteenth
session: std 0.25-0.61 against 0.69-2.87 on car views), since nothing in pre-training fixes a channel's scale.

The fix is a reparametrisation: channel ``c`` of the posterior mean is multiplied by ``k_c`` in ``quant_conv``
(its weight row and bias) and divided by ``k_c`` where the decoder reads it (``post_quant_conv``'s input column,
or the decoder's first convolution when there is no ``post_quant_conv``). ``D(E(x))`` with posterior means is
unchanged up to float rounding; the log-variance gains ``2 log k_c`` so that the posterior's spread scales with its
mean (sampling and the KL term stay consistent). ``k_c = target / std_c``, with ``target`` the root mean square of
the channels' stds, so the overall latent spread, and with it the tanh scale's meaning, barely moves; the caller
re-derives the tanh scale from the balanced latents (:func:`latentscenes.autoencoder.model.tanh_scale_for_std`).

Two targets (``mode``):

* ``"std"``: every channel gets the same std. Simple, but a channel the decoder barely reads (a grown channel early
  in training) is blown up to the others' size and the fit spends its effort on it.
* ``"sensitivity"``: every channel gets the same *decoder sensitivity* ``g_c``, the RMS change of the decoded image
  per unit change of channel ``c`` (a finite-difference Jacobian-vector product with a random spatial direction,
  averaged over ``images``). A latent error of a given size then costs about the same image error in every
  channel, so the tri-planes' latent L1 loss weighs channels by what they do to the picture. ``k_c = g_c``, scaled
  so that the root mean square of the channels' stds is unchanged.
"""

from __future__ import annotations

import math

import torch

from latentscenes.autoencoder.model import AutoencoderError, LatentAutoencoder


@torch.no_grad()
def channel_std(ae: LatentAutoencoder, images: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """Per-channel std of the raw latents (posterior means) of ``images``.

    Args:
        images: ``[N, 3, H, W]`` images in model space [-1, 1] (H, W multiples of 8).
    Returns:
        ``[C]`` float32 tensor (on the CPU), std over images and latent pixels.
    """
    was = ae.training
    ae.eval()
    zs = [ae.encode_distribution(images[i : i + batch].to(ae.device)).mean.float().cpu()
          for i in range(0, images.shape[0], batch)]
    ae.train(was)
    z = torch.cat(zs)
    return z.transpose(0, 1).reshape(z.shape[1], -1).std(dim=1)


@torch.no_grad()
@torch.no_grad()
def decoder_sensitivity(ae: LatentAutoencoder, images: torch.Tensor, batch: int = 16, rel_eps: float = 0.05,
                        seed: int = 0, std: torch.Tensor | None = None) -> torch.Tensor:
    """Per-channel decoder sensitivity ``g_c``: RMS of ``(D(z + eps d_c) - D(z)) / eps`` over images and pixels.

    ``d_c`` is unit Gaussian noise on channel ``c`` only (spatially random), ``eps = rel_eps * std_c``; ``z`` the
    posterior means of ``images``. Units: model-space image change per unit of raw latent.

    Args:
        images: ``[N, 3, H, W]`` images in model space [-1, 1].
        std: :func:`channel_std` of the same images when the caller has it (saves an encoding pass).
    Returns:
        ``[C]`` float32 tensor (on the CPU).
    """
    was = ae.training
    ae.eval()
    if std is None:
        std = channel_std(ae, images, batch)
    gen = torch.Generator().manual_seed(seed)
    sq = torch.zeros(ae.latent_channels, dtype=torch.float64)
    n = 0
    for i in range(0, images.shape[0], batch):
        z = ae.encode_distribution(images[i : i + batch].to(ae.device)).mean
        y = ae.decode(z)
        for c in range(ae.latent_channels):
            eps = rel_eps * float(std[c]) if float(std[c]) > 0 else rel_eps
            d = torch.zeros_like(z)
            d[:, c] = torch.randn(z[:, c].shape, generator=gen).to(z.device, z.dtype)
            sq[c] += float(((ae.decode(z + eps * d) - y) / eps).double().pow(2).sum())
        n += y.numel()
    ae.train(was)
    return (sq / max(n, 1)).sqrt().float()


@torch.no_grad()
def balance_latent_channels(ae: LatentAutoencoder, images: torch.Tensor, batch: int = 16,
                            max_ratio: float = 100.0, mode: str = "std") -> dict[str, list[float]]:
    """Rescale the latent channels of ``ae`` in place (function-preserving) to equal std or equal decoder sensitivity.

    Args:
        ae: the autoencoder, modified in place (its ``tanh_scale`` is left to the caller).
        images: ``[N, 3, H, W]`` images in model space [-1, 1] whose latents define the stds (the training set's
            or a representative sample of it).
        max_ratio: largest factor applied to one channel (a dead channel would otherwise be blown up).
        mode: ``"std"`` or ``"sensitivity"`` (module docstring).
    Returns:
        ``{"mode", "std_before": [C], "factors": [C], "std_after": [C], "target_std", "sensitivity_before": [C]
        (sensitivity mode)}``.
    Raises:
        AutoencoderError: if ``ae`` has no ``quant_conv`` (the posterior mean is then the encoder's raw output and
            cannot be rescaled by a 1x1 convolution) or its ``quant_conv`` has no bias, a channel's std is not finite, or an unknown ``mode``.
    """
    if mode not in ("std", "sensitivity"):
        raise AutoencoderError(f"mode must be 'std' or 'sensitivity', not {mode!r}")
    vae = ae.vae
    qc = vae.quant_conv
    if qc is None:
        raise AutoencoderError("balance_latent_channels needs an autoencoder with quant_conv (use_quant_conv)")
    if qc.bias is None:  # checked before anything is changed
        raise AutoencoderError("quant_conv has no bias: the log-variance cannot follow the rescaled mean")
    std = channel_std(ae, images, batch)
    if not bool(torch.isfinite(std).all()):
        raise AutoencoderError(f"latent std not finite: {std.tolist()}")
    target = float(std.pow(2).mean().sqrt())
    sens = None
    if mode == "std":
        k = target / std.clamp_min(1e-12)
    else:
        sens = decoder_sensitivity(ae, images, batch, std=std)
        k = sens / sens.max().clamp_min(1e-12)
        k = k * target / float((std * k).pow(2).mean().sqrt().clamp_min(1e-12))
    k = k.clamp(1.0 / max_ratio, max_ratio)
    c = ae.latent_channels
    dev = qc.weight.device
    kd = k.to(dev, qc.weight.dtype)
    # quant_conv: [2C, ., 1, 1] -> rows [mean | logvar]
    qc.weight[:c] *= kd.view(c, 1, 1, 1)
    qc.bias[:c] *= kd
    qc.bias[c:] += 2.0 * torch.log(kd)
    reader = vae.post_quant_conv if vae.post_quant_conv is not None else vae.decoder.conv_in
    reader.weight[:, :c] /= kd.view(1, c, 1, 1)
    after = channel_std(ae, images, batch)
    ae._bg_cache = None
    out = {"mode": mode, "std_before": std.tolist(), "factors": [float(x) for x in k], "std_after": after.tolist(),
           "target_std": target, "log_factor_range": [math.log(float(k.min())), math.log(float(k.max()))]}
    if sens is not None:
        out["sensitivity_before"] = sens.tolist()
    return out
