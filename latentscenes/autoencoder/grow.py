"""Grow a trained autoencoder into a wider and/or deeper one that computes exactly the same function.

Why: a larger base autoencoder (issue 15: more capacity for categories beyond airliners) would otherwise start
from scratch, i.e. from ~13 dB, and need hours of pre-training just to get back to the shipped model's
reconstruction. Grown function-preservingly (the idea of Net2Net, Chen et al., ICLR 2016; the code is ours),
it starts from the shipped figures exactly and only has to learn what the extra capacity adds.

* **Width** x2 (``width_factor=2``): every internal channel ``c`` of a block of width ``C`` becomes two
  channels carrying the same activation. The copies are placed inside the same GroupNorm group (new group ``g``
  holds the old group ``g``'s channels twice), so every group's mean and variance, and hence every
  normalisation, are unchanged. A layer that reads a duplicated channel splits its weight over the two copies
  as ``(1/2 + d, 1/2 - d)`` with a random ``d`` per weight: the sum is the old weight (same output), and the
  two copies receive different gradients, so they do not stay identical during training. The single-head
  mid-block attention sees ``q . k`` summed over twice the channels and scaled by ``1/sqrt(2C)`` instead of
  ``1/sqrt(C)``: the query projection is scaled by ``1/sqrt(2)`` to keep the logits.
* **Depth** (``extra_layers=n``): ``n`` ResNet blocks appended to every encoder and decoder block (before its
  re-sampler) with their last convolution zeroed, i.e. identity residual blocks.
* **Latent channels** (``latent_channels=C'`` > C): the bottleneck widened from C to C' channels (Stable Diffusion
  3 and FLUX moved from 4 to 16 latent channels for reconstruction quality). The encoder's new mean rows keep
  their default initialisation (they carry some signal from the start; about 10x smaller than the trained
  channels), the new log-variance channels are constant at the mean of the source's log-variance biases (set in
  ``quant_conv``'s bias, whose output is the log-variance), ``quant_conv`` and ``post_quant_conv`` pass the new channels through
  (identity) without touching the old ones, and the decoder's first convolution reads the new channels with zero
  weights: the decoded image is unchanged, and the first training step's gradient reaches the new weights.

The latent space (and so the tanh scale and the latent background) is that of the source autoencoder, extended by
the new channels when ``latent_channels`` grows.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from latentscenes.autoencoder.model import AutoencoderError, LatentAutoencoder

_RESNET_KEY = re.compile(r"^(encoder\.down_blocks|decoder\.up_blocks)\.(\d+)\.resnets\.(\d+)\.")
_QUERY_KEY = re.compile(r"\.attentions\.\d+\.to_q\.(weight|bias)$")


def grown_config(vae_config: dict[str, Any], width_factor: int = 1, extra_layers: int = 0,
                 latent_channels: int | None = None) -> dict[str, Any]:
    """The diffusers ``AutoencoderKL`` config of the grown autoencoder.

    Args:
        latent_channels: the new number of latent channels (None: unchanged); must not be below the source's.
    Raises:
        AutoencoderError: ``width_factor`` not 1 or 2, ``extra_layers`` negative, fewer latent channels than the
            source, or nothing to grow.
    """
    if width_factor not in (1, 2):
        raise AutoencoderError(f"width_factor must be 1 or 2 (an exact widening duplicates channels), not {width_factor}")
    if extra_layers < 0:
        raise AutoencoderError(f"extra_layers must be >= 0, not {extra_layers}")
    old_c = int(vae_config.get("latent_channels", 4))  # diffusers' default when the key is absent
    new_c = old_c if latent_channels is None else int(latent_channels)
    if new_c < old_c:
        raise AutoencoderError(f"latent_channels can only grow: the source has {old_c}, asked for {new_c}")
    if width_factor == 1 and extra_layers == 0 and new_c == old_c:
        raise AutoencoderError("nothing to grow: set width_factor=2, extra_layers >= 1 and/or more latent_channels")
    cfg = dict(vae_config)
    cfg["block_out_channels"] = [int(c) * width_factor for c in vae_config["block_out_channels"]]
    cfg["layers_per_block"] = int(vae_config.get("layers_per_block", 1)) + int(extra_layers)
    cfg["latent_channels"] = new_c
    if new_c != old_c:  # per-channel latent statistics of the source (diffusers' optional keys) no longer fit
        for key in ("latents_mean", "latents_std"):
            cfg.pop(key, None)
    return cfg


def _pad_latent(name: str, old_t: torch.Tensor, new_t: torch.Tensor, old_c: int, new_c: int,
                logvar_at: str) -> torch.Tensor | None:
    """The bottleneck's parameters with ``new_c - old_c`` extra latent channels (module docstring), or None for
    a parameter outside the bottleneck.

    Shapes (C = ``old_c``, C' = ``new_c``, W = the block width): ``encoder.conv_out`` [2C, W, 3, 3] -> [2C', W, 3, 3]
    (rows [mean | logvar]), ``quant_conv`` [2C, 2C, 1, 1] -> [2C', 2C', 1, 1], ``post_quant_conv`` [C, C, 1, 1] ->
    [C', C', 1, 1], ``decoder.conv_in`` [W, C, 3, 3] -> [W, C', 3, 3]; biases alike. ``new_t`` is the grown
    model's default initialisation of ``name``. ``logvar_at``: the bias that gives the new channels the source's
    mean log-variance (``quant_conv.bias`` when the model has that convolution, its output being the
    log-variance; else ``encoder.conv_out.bias``)."""
    idx = torch.cat([torch.arange(old_c), new_c + torch.arange(old_c)])  # old [mean | logvar] rows in the new [2 C']

    if name in ("encoder.conv_out.weight", "encoder.conv_out.bias"):
        t = new_t.clone()
        t[new_c:] = 0  # new log-variance rows
        if name == logvar_at:
            t[new_c + old_c:] = old_t[old_c:].mean()
        t[idx] = old_t
        return t
    if name in ("quant_conv.weight", "quant_conv.bias"):
        t = torch.zeros_like(new_t)
        new_idx = torch.cat([torch.arange(old_c, new_c), new_c + torch.arange(old_c, new_c)])  # the new channels' rows
        if name.endswith("weight"):
            t[idx[:, None], idx[None, :]] = old_t
            t[new_idx, new_idx] = 1.0  # new channels pass through
        else:
            t[idx] = old_t
            if name == logvar_at:
                t[new_c + old_c:] = old_t[old_c:].mean()
        return t
    if name in ("post_quant_conv.weight", "post_quant_conv.bias"):
        t = torch.zeros_like(new_t)
        if name.endswith("weight"):
            t[:old_c, :old_c] = old_t
            t[torch.arange(old_c, new_c), torch.arange(old_c, new_c)] = 1.0
        else:
            t[:old_c] = old_t
        return t
    if name == "decoder.conv_in.weight":
        t = torch.zeros_like(new_t)
        t[:, :old_c] = old_t  # the decoder reads the new channels with zero weights: same image
        return t
    return None


def _channel_map(old: int, groups: int) -> torch.Tensor:
    """``[2 old]`` index of the old channel each new channel copies, both copies in the old channel's group."""
    per_old = old // groups
    j = torch.arange(2 * old)
    g, r = j // (2 * per_old), j % (2 * per_old)
    return g * per_old + r % per_old


def _first_copy(old: int, groups: int) -> torch.Tensor:
    """``[2 old]`` bool: True for the first of the two copies of each old channel (by :func:`_channel_map`)."""
    per_old = old // groups
    return (torch.arange(2 * old) % (2 * per_old)) < per_old


def _widen(name: str, old_t: torch.Tensor, new_shape: torch.Size, groups: int, gen: torch.Generator) -> torch.Tensor:
    t = old_t
    # output dimension (dim 0 of weights, the only dimension of biases and norm parameters)
    if new_shape[0] == 2 * t.shape[0]:
        t = t.index_select(0, _channel_map(t.shape[0], groups))
    elif new_shape[0] != t.shape[0]:
        raise AutoencoderError(f"cannot grow {name}: dim 0 {tuple(old_t.shape)} -> {tuple(new_shape)}")
    if t.dim() >= 2:
        if new_shape[1] == 2 * t.shape[1]:
            n_in = t.shape[1]
            t = t.index_select(1, _channel_map(n_in, groups))
            # split each old weight over its two copies: (1/2 + d, 1/2 - d), the same d for both copies
            d = (torch.rand((t.shape[0], n_in) + tuple(t.shape[2:]), generator=gen) - 0.5) * 0.5
            first = _first_copy(n_in, groups)
            d_full = d.index_select(1, _channel_map(n_in, groups))
            sign = torch.where(first, 1.0, -1.0).view(1, -1, *([1] * (t.dim() - 2)))
            t = t * (0.5 + sign * d_full.to(t.dtype))
        elif new_shape[1] != t.shape[1]:
            raise AutoencoderError(f"cannot grow {name}: dim 1 {tuple(old_t.shape)} -> {tuple(new_shape)}")
    if tuple(t.shape) != tuple(new_shape):
        raise AutoencoderError(f"cannot grow {name}: {tuple(old_t.shape)} -> {tuple(new_shape)}")
    return t


@torch.no_grad()
def grow_autoencoder(ae: LatentAutoencoder, width_factor: int = 2, extra_layers: int = 0, seed: int = 0,
                     source: str | None = None, latent_channels: int | None = None) -> LatentAutoencoder:
    """A wider and/or deeper copy of ``ae`` with the same encode / decode function (module docstring).

    Args:
        ae: the source autoencoder (unchanged).
        width_factor: 1 or 2: multiplies every block's channels.
        extra_layers: ResNet blocks added to every encoder and decoder block (identity at start).
        seed: seed of the weight splits that break the copies' symmetry and of the new blocks' initialisation
            (the same seed gives the same file).
        source: how the source was named (e.g. the ``--ae`` value), recorded with its own ``info``.
        latent_channels: widen the bottleneck to this many latent channels (None: keep the source's). The
            grown model decodes the source's latents padded with any values in the new channels to the source's
            images; its encoder's new channels start from the default initialisation.
    Returns:
        a new :class:`LatentAutoencoder` on ``ae``'s device, in eval mode, with ``ae``'s tanh scale; its
        ``info`` is ``{"source": "grown", "grown_from": {...}}`` (the source's architecture, name and ``info``;
        ``ae pretrain`` keeps it). Outputs agree with ``ae``'s to float rounding (tests/autoencoder/test_grow.py):
        the decoded images, and the latents on the source's C channels (the first C; the posterior's mean and
        log-variance).
    Raises:
        AutoencoderError: ``width_factor`` not 1 or 2, ``extra_layers`` negative, fewer latent channels than the
            source, nothing to grow, or a parameter whose shape cannot be grown.
    """
    cfg = grown_config(ae.vae_config, width_factor, extra_layers, latent_channels)
    old_c, new_c = int(ae.vae_config.get("latent_channels", 4)), int(cfg["latent_channels"])
    groups = int(ae.vae_config.get("norm_num_groups", 32))
    info = {"source": "grown", "grown_from": {
        "source": source or ae.info.get("path", ae.info.get("source")),
        "block_out_channels": list(ae.vae_config["block_out_channels"]),
        "layers_per_block": int(ae.vae_config.get("layers_per_block", 1)),
        "width_factor": int(width_factor), "extra_layers": int(extra_layers), "seed": int(seed),
        "latent_channels": [old_c, new_c], "info": dict(ae.info)}}
    with torch.random.fork_rng(devices=[]):  # the new blocks' default initialisation: seeded, global RNG untouched
        torch.manual_seed(int(seed))
        new = LatentAutoencoder(cfg, tanh_scale=ae.tanh_scale, use_mean=ae.use_mean, info=info)
    gen = torch.Generator().manual_seed(int(seed))
    old_state = {k: v.detach().float().cpu() for k, v in ae.vae.state_dict().items()}
    new_state = new.vae.state_dict()
    old_layers = int(ae.vae_config.get("layers_per_block", 1))
    logvar_at = "quant_conv.bias" if "quant_conv.bias" in old_state else "encoder.conv_out.bias"
    out: dict[str, torch.Tensor] = {}
    for name, target in new_state.items():
        if name in old_state and new_c != old_c:
            old_t = old_state[name]
            if width_factor == 2 and name in ("encoder.conv_out.weight", "decoder.conv_in.weight"):
                # widen the block side first, then pad the latent side
                shape = list(old_t.shape)
                shape[1 if name.startswith("encoder") else 0] = target.shape[1 if name.startswith("encoder") else 0]
                old_t = _widen(name, old_t, torch.Size(shape), groups, gen)
            padded = _pad_latent(name, old_t, target.detach().float().cpu(), old_c, new_c, logvar_at)
            if padded is not None:
                out[name] = padded.to(target.dtype)
                continue
        if name in old_state:
            t = _widen(name, old_state[name], target.shape, groups, gen) if width_factor == 2 else old_state[name]
            if width_factor == 2 and _QUERY_KEY.search(name):
                t = t / math.sqrt(2.0)  # q.k sums over twice the channels, the softmax scale is 1/sqrt(2C)
            out[name] = t.to(target.dtype)
            continue
        m = _RESNET_KEY.match(name)
        n_old = old_layers + (1 if m and m.group(1).startswith("decoder") else 0)
        if m is None or int(m.group(3)) < n_old:
            raise AutoencoderError(f"cannot grow: {name} has no counterpart in the source autoencoder")
        # a new residual block: default initialisation, last convolution zeroed -> identity
        out[name] = torch.zeros_like(target) if ".conv2." in name else target.clone()
    new.vae.load_state_dict(out, strict=True)
    return new.to(ae.device).eval()
