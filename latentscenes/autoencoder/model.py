"""The image autoencoder of 3Da-AE: diffusers ``AutoencoderKL`` + tanh latent normalisation + latent background.

Paper (arXiv 2403.11678) Sec. 3: scenes are Tri-Planes rendered into the latent space of an image
autoencoder (E, D) with 8x spatial down-sampling; Sec. 4 uses Stable Diffusion 1.5's VAE. Here the
autoencoder is a diffusers :class:`~diffusers.AutoencoderKL` built from a config dict (never from a hub id):

* ``source="shipped"``: the base autoencoder trained once by ``latentscenes ae pretrain`` on FlightGear airliners
  and shipped in ``latentscenes/autoencoder/weights/`` (the default of the ``tiny-cpu`` preset); its architecture
  is read from the file, the architecture fields of :class:`AEConfig` are ignored.
* ``source="shipped-general"``: the shipped general-purpose base autoencoder (16 latent channels), pre-trained on
  the pre-training mix (airliners, furniture, URDF objects, procedural primitives; ``weights/general/``), for
  objects other than airliners (docs/autoencoder.md, "The general base autoencoder").
* ``source="scratch"``: random initialisation of the architecture in :class:`AEConfig`.
* ``source="path"``: a local diffusers folder (``config.json`` + ``diffusion_pytorch_model.safetensors``,
  or such a folder under ``vae/``), a diffusers-format ``.safetensors`` state dict (architecture from
  :class:`AEConfig`, e.g. the ``paper`` preset = SD 1.5), or a file written by :meth:`LatentAutoencoder.save`.

Conventions (docs/ARCHITECTURE.md): images in model space [-1, 1]; raw latents ``z`` are what the
autoencoder's decoder takes (no 0.18215 scaling); the renderer works on normalised latents
``z_bar = tanh(s * z)`` in (-1, 1) (the authors' stateless normaliser); the latent background is the normalised
code of
a pure-white image, averaged over latent pixels and mapped to the [0, 1] pre-scale space by (m + 1) / 2
(docs/autoencoder.md, "Latent conventions").
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from latentscenes.config import register_presets
from latentscenes.utils.io import atomic_save_safetensors
from latentscenes.utils.machine import bf16_is_fast

#: Folder of the shipped base autoencoder (inside the installed package).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The shipped base autoencoder's file.
SHIPPED_WEIGHTS = WEIGHTS_DIR / "base_ae.safetensors"
#: The shipped base autoencoders by ``--ae`` name: ``shipped`` (airliners only, 4 latent channels) and
#: ``shipped-general`` (the pre-training mix, 16 latent channels; issue 15), each with its MODEL_CARD.md.
SHIPPED_AUTOENCODERS: dict[str, Path] = {
    "shipped": SHIPPED_WEIGHTS,
    "shipped-general": WEIGHTS_DIR / "general" / "base_ae.safetensors",
}
#: safetensors metadata key under which :meth:`LatentAutoencoder.save` stores its JSON header.
META_KEY = "latentscenes.autoencoder"
FORMAT_VERSION = 1
DOWNSAMPLE = 8  # AutoencoderKL with 4 blocks: 3 down-samplings

#: tanh scale used for foreign checkpoints (Stable Diffusion-scale latents, std ~5.5; the authors' value).
SD_TANH_SCALE = 0.02
#: target of s * std(z) when a tanh scale is derived from a trained autoencoder's latent statistics:
#: 3 standard deviations map to tanh(1.05) ~ 0.78, so normalised latents use most of (-1, 1) without saturating.
TANH_TARGET_STD = 0.35


class AutoencoderError(ValueError):
    """A checkpoint that does not fit the requested autoencoder (the message names the file and the problem)."""


@dataclass
class AEConfig:
    """Which autoencoder to use and, for ``scratch`` / raw state dicts, its architecture.

    Attributes:
        source: ``"shipped"`` / ``"shipped-general"`` (package weights, :data:`SHIPPED_AUTOENCODERS`),
            ``"scratch"`` (random init of the architecture below) or ``"path"`` (``path`` must point to a local
            checkpoint; see the module docstring).
        path: local checkpoint for ``source="path"`` (folder or ``.safetensors``).
        block_out_channels: channels of the 4 encoder/decoder blocks (always 4 blocks: 8x down-sampling).
        layers_per_block: ResNet layers per block (the decoder has one more, as in diffusers).
        norm_num_groups: GroupNorm groups (must divide every entry of ``block_out_channels``).
        latent_channels: latent channels C (4 in the paper).
        mid_block_attention: self-attention in the mid blocks (SD has it).
        tanh_scale: s of the latent normalisation ``tanh(s * z)``. ``None`` = the value stored with the
            checkpoint (chosen from its latent std at pre-training), or 0.02 for foreign (SD-scale) weights.
        use_mean: encode to the posterior mean (deterministic, recommended) rather than a sample.
        upscale: u in {1, 2, 4, 8}: images are upsampled u x (bicubic) before encoding and decoded images are
            area-averaged u x back down, so a latent pixel covers 8 / u image pixels (u = 2: 32 x 32 latents for a
            128 px image). The weights are unchanged; the scenes, their rays and the decodes follow
            ``downsample_factor``. Beyond the paper (docs/fidelity.md, twenty-ninth session).
        amp: bf16 autocast of the autoencoder's encode and decode, forward and backward (weights, latents and
            decoded images stay fp32), where the device computes bf16 natively
            (:func:`~latentscenes.utils.machine.bf16_is_fast`: CUDA with bf16, CPUs with AVX512-bf16 or AMX);
            ignored elsewhere, where bf16 is emulated and many times slower. Like ``upscale`` a run-time choice,
            not the weights' (docs/fidelity.md, thirty-third session).
    """

    source: Literal["shipped", "shipped-general", "scratch", "path"] = "shipped"
    path: str | None = None
    block_out_channels: tuple[int, ...] = (32, 64, 128, 128)
    layers_per_block: int = 1
    norm_num_groups: int = 16
    latent_channels: int = 4
    mid_block_attention: bool = True
    tanh_scale: float | None = None
    use_mean: bool = True
    upscale: int = 1
    amp: bool = False

    @classmethod
    def from_option(cls, spec: str | None, base: "AEConfig | None" = None) -> "AEConfig":
        """Resolve a CLI ``--ae`` value: ``shipped``, ``shipped-general``, ``scratch``, or a local path (folder /
        .safetensors).

        ``base`` (e.g. the preset's config) provides the architecture and the other fields; ``None`` or an
        empty spec returns ``base`` (or the defaults) unchanged.
        """
        cfg = base if base is not None else cls()
        if not spec:
            return cfg
        if spec in SHIPPED_AUTOENCODERS or spec == "scratch":
            return dataclasses.replace(cfg, source=spec, path=None)
        return dataclasses.replace(cfg, source="path", path=str(spec))

    def with_architecture_of(self, vae_config: dict[str, Any]) -> "AEConfig":
        """This config with its architecture fields taken from a diffusers ``AutoencoderKL`` config dict (the
        header of a weights file), so that a saved config describes the weights it names: with
        ``source="path"`` the file's header decides the architecture and these fields are otherwise ignored.

        Args:
            vae_config: ``vae_config`` of :func:`read_header` (keys ``block_out_channels``, ``layers_per_block``,
                ``norm_num_groups``, ``latent_channels``, ``mid_block_add_attention``); keys it lacks keep this
                config's values.
        Returns:
            a new :class:`AEConfig` (``source``, ``path``, ``tanh_scale``, ``use_mean`` unchanged).
        Raises:
            ValueError / TypeError: a present key's value is not a number (or a list of numbers).
        """
        v = vae_config
        return dataclasses.replace(
            self,
            block_out_channels=tuple(int(c) for c in v.get("block_out_channels", self.block_out_channels)),
            layers_per_block=int(v.get("layers_per_block", self.layers_per_block)),
            norm_num_groups=int(v.get("norm_num_groups", self.norm_num_groups)),
            latent_channels=int(v.get("latent_channels", self.latent_channels)),
            mid_block_attention=bool(v.get("mid_block_add_attention", self.mid_block_attention)),
        )

    def architecture(self) -> dict[str, Any]:
        """The diffusers ``AutoencoderKL`` config dict of this architecture (8x down-sampling, RGB in/out)."""
        return make_vae_config(
            self.block_out_channels, self.layers_per_block, self.norm_num_groups, self.latent_channels,
            self.mid_block_attention,
        )


def make_vae_config(
    block_out_channels: tuple[int, ...] | list[int],
    layers_per_block: int = 1,
    norm_num_groups: int = 32,
    latent_channels: int = 4,
    mid_block_attention: bool = True,
) -> dict[str, Any]:
    """A diffusers ``AutoencoderKL`` config dict with 4 blocks (8x down-sampling).

    Raises:
        ValueError: if there are not exactly 4 blocks, or ``norm_num_groups`` does not divide the channels.
    """
    boc = [int(c) for c in block_out_channels]
    if len(boc) != 4:
        raise ValueError(f"block_out_channels must have 4 entries (8x down-sampling), got {boc}")
    bad = [c for c in boc if c % norm_num_groups]
    if bad:
        raise ValueError(f"norm_num_groups={norm_num_groups} must divide every block width, not {bad}")
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": boc,
        "layers_per_block": int(layers_per_block),
        "act_fn": "silu",
        "latent_channels": int(latent_channels),
        "norm_num_groups": int(norm_num_groups),
        "sample_size": 128,
        "mid_block_add_attention": bool(mid_block_attention),
    }


#: Stable Diffusion 1.5's VAE architecture (paper Sec. 4; 83.7 M parameters).
SD15_ARCH = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32, latent_channels=4)

register_presets(
    AEConfig,
    {
        "test": lambda: AEConfig(
            source="scratch", block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4,
            mid_block_attention=False,
        ),
        "tiny-cpu": lambda: AEConfig(source="shipped"),
        "paper": lambda: AEConfig(source="path", path=None, tanh_scale=SD_TANH_SCALE, **SD15_ARCH),
    },
)


def _build_vae(config: dict[str, Any]):
    from diffusers import AutoencoderKL  # imported on use: diffusers takes seconds to import

    config = {k: v for k, v in config.items() if not k.startswith("_")}
    return AutoencoderKL.from_config(config)


class LatentAutoencoder(nn.Module):
    """diffusers ``AutoencoderKL`` with the 3Da-AE latent conventions (paper Sec. 3; docs/autoencoder.md).

    Attributes:
        vae: the wrapped ``diffusers.AutoencoderKL``.
        vae_config: its config dict (JSON-able).
        tanh_scale: s of ``tanh(s * z)``.
        use_mean: whether :meth:`encode` returns the posterior mean (else a sample).
        info: free-form provenance (where it was loaded from, training figures), saved with it.
    """

    def __init__(
        self, vae_config: dict[str, Any], tanh_scale: float = SD_TANH_SCALE, use_mean: bool = True,
        info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.vae_config = {k: v for k, v in dict(vae_config).items() if not k.startswith("_")}
        self.vae = _build_vae(self.vae_config)
        if len(self.vae_config.get("block_out_channels", [])) != 4:
            raise AutoencoderError(
                f"expected an AutoencoderKL with 4 blocks (8x down-sampling), got {self.vae_config.get('block_out_channels')}"
            )
        self.tanh_scale = float(tanh_scale)
        self.use_mean = bool(use_mean)
        self.upscale = 1
        self.amp = False  # AEConfig.amp
        self.info: dict[str, Any] = dict(info or {})
        self._bg_cache: tuple[tuple, torch.Tensor] | None = None

    @property
    def upscale(self) -> int:
        """u of :attr:`AEConfig.upscale`: images go through the autoencoder at u x their size (1 = as they are)."""
        return self._upscale

    @upscale.setter
    def upscale(self, u: int) -> None:
        self._upscale = check_upscale(u)

    def apply_runtime(self, cfg: "AEConfig") -> "LatentAutoencoder":
        """Take the settings of ``cfg`` that a run chooses and the weights do not store (:attr:`AEConfig.upscale`,
        :attr:`AEConfig.amp`). Returns ``self``. Raises ValueError: an invalid ``upscale``."""
        self.upscale = cfg.upscale
        self.amp = bool(cfg.amp)
        return self

    def _autocast(self):
        """bf16 autocast where :attr:`amp` is set and the device computes bf16 natively; otherwise nothing, not
        ``autocast(enabled=False)``, which would switch off a caller's own autocast (``ae pretrain``'s)."""
        dev = self.device
        if self.amp and bf16_is_fast(dev):
            return torch.autocast(dev.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def downsample_factor(self) -> int:
        """Image pixels per latent pixel along each side: 8 / :attr:`upscale` (8 for the paper's autoencoder)."""
        return DOWNSAMPLE // self._upscale

    # ------------------------------------------------------------------ shapes
    @property
    def latent_channels(self) -> int:
        """Number of latent channels C."""
        return int(self.vae_config["latent_channels"])

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ encode / decode
    def encode_distribution(self, x: torch.Tensor):
        """Posterior of ``x``: a diffusers ``DiagonalGaussianDistribution`` (``.mean``, ``.logvar``, ``.kl()``).

        Args:
            x: ``[B, 3, H, W]`` images in [-1, 1], H and W multiples of :attr:`downsample_factor`; with
                :attr:`upscale` u > 1 they are upsampled u x (bicubic, clamped to [-1, 1]) first.
        """
        if self._upscale > 1:
            x = F.interpolate(x, scale_factor=self._upscale, mode="bicubic", align_corners=False).clamp(-1.0, 1.0)
        with self._autocast():
            dist = self.vae.encode(x).latent_dist
        if dist.parameters.dtype != torch.float32:  # computed in bf16 (amp): the latents stay fp32
            dist = type(dist)(dist.parameters.float(), deterministic=dist.deterministic)
        return dist

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Encode images to raw latents (paper Sec. 3, E).

        Args:
            x: ``[B, 3, H, W]`` float images in model space [-1, 1]; H, W multiples of ds =
                :attr:`downsample_factor` (8, or 8 / u with :attr:`upscale` u).
            generator: optional RNG for the posterior sample (only used when ``use_mean`` is False).
        Returns:
            ``[B, C, H/ds, W/ds]`` raw (un-normalised) latents: posterior mean, or a sample if ``use_mean`` is False.
        Raises:
            ValueError: if ``x`` is not ``[B, 3, H, W]`` with H, W multiples of ds.
        """
        _check_images(x, self.downsample_factor)
        dist = self.encode_distribution(x)
        return dist.mean if self.use_mean else dist.sample(generator=generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode raw latents (paper Sec. 3, D).

        Args:
            z: ``[B, C, h, w]`` raw latents.
        Returns:
            ``[B, 3, ds h, ds w]`` images in model space (ds = :attr:`downsample_factor`), approximately [-1, 1]
            (not clamped); with :attr:`upscale` u > 1 the decoder's ``8h x 8w`` output area-averaged u x down.
        Raises:
            ValueError: if ``z`` does not have C channels.
        """
        if z.dim() != 4 or z.shape[1] != self.latent_channels:
            raise ValueError(f"decode expects [B, {self.latent_channels}, h, w] latents, got {tuple(z.shape)}")
        with self._autocast():
            x = self.vae.decode(z).sample
        x = x.float()  # computed in bf16 with amp: the images stay fp32
        return F.avg_pool2d(x, self._upscale) if self._upscale > 1 else x

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(encode(x))``: ``[B, 3, H, W]`` in [-1, 1] -> ``[B, 3, H, W]`` (the autoencoder's upper bound)."""
        return self.decode(self.encode(x))

    # ------------------------------------------------------------------ normalisation
    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents -> normalised latents ``tanh(s * z)`` in (-1, 1) (docs/autoencoder.md). Any shape."""
        return torch.tanh(self.tanh_scale * z)

    def denormalize(self, z_bar: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
        """Normalised latents -> raw latents: ``atanh(clip(z_bar, -1+eps, 1-eps)) / s``. Any shape."""
        return torch.atanh(z_bar.clamp(-1.0 + eps, 1.0 - eps)) / self.tanh_scale

    def _fingerprint(self) -> tuple:
        # Tensor versions change on every in-place update (optimizer steps, load_state_dict), so the cached
        # background is recomputed automatically after the autoencoder trains.
        versions = tuple(p._version for p in self.encoder_parameters())
        ids = tuple(p.data_ptr() for p in self.encoder_parameters())
        return (self.tanh_scale, self.use_mean, self._upscale, self.amp, str(self.device)) + versions + ids

    @torch.no_grad()
    def latent_background(self, resolution: int = 64) -> torch.Tensor:
        """Latent background colour in the renderer's [0, 1] pre-scale space (docs/autoencoder.md).

        The normalised code ``tanh(s * E(white))`` of a pure-white ``resolution``-square image (all ones in
        model space), averaged over latent pixels ``m``, mapped to ``(m + 1) / 2``. Cached; recomputed when
        the encoder's weights change (e.g. after training).

        Returns:
            ``[C]`` float32 tensor in [0, 1], on the autoencoder's device.
        """
        key = (self._fingerprint(), resolution)
        if self._bg_cache is not None and self._bg_cache[0] == key:
            return self._bg_cache[1].clone()
        was_training = self.training
        self.eval()
        white = torch.ones(1, 3, resolution, resolution, device=self.device)
        z = self.encode_distribution(white).mean.float()
        self.train(was_training)
        m = self.normalize(z).mean(dim=(0, 2, 3))
        bg = ((m + 1.0) * 0.5).clamp(0.0, 1.0)
        self._bg_cache = (key, bg)
        return bg.clone()

    # ------------------------------------------------------------------ parameters / cost
    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of E: ``vae.encoder`` and ``vae.quant_conv``."""
        yield from self.vae.encoder.parameters()
        if self.vae.quant_conv is not None:
            yield from self.vae.quant_conv.parameters()

    def decoder_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of D: ``vae.post_quant_conv`` and ``vae.decoder`` (the authors' code put the quant convs
        on the wrong sides: their quant convs were never trained)."""
        if self.vae.post_quant_conv is not None:
            yield from self.vae.post_quant_conv.parameters()
        yield from self.vae.decoder.parameters()

    def num_parameters(self, part: Literal["encoder", "decoder", "all"] = "all") -> int:
        """Number of parameters of the encoder, the decoder, or both."""
        return sum(p.numel() for p in self._part(part))

    def num_bytes(self, part: Literal["encoder", "decoder", "all"] = "all") -> int:
        """Bytes of the parameters of ``part`` at their current dtype (cost accounting, paper Eq. 8-11)."""
        return sum(p.numel() * p.element_size() for p in self._part(part))

    def _part(self, part: str) -> Iterator[nn.Parameter]:
        if part == "encoder":
            return self.encoder_parameters()
        if part == "decoder":
            return self.decoder_parameters()
        if part == "all":
            return iter(list(self.encoder_parameters()) + list(self.decoder_parameters()))
        raise ValueError(f"part must be 'encoder', 'decoder' or 'all', not {part!r}")

    # ------------------------------------------------------------------ save / load
    def header(self) -> dict[str, Any]:
        """JSON header saved with the weights: format, diffusers config, tanh scale, use_mean, provenance."""
        return {
            "format": "latentscenes-autoencoder",
            "format_version": FORMAT_VERSION,
            "vae_config": self.vae_config,
            "tanh_scale": self.tanh_scale,
            "use_mean": self.use_mean,
            "info": self.info,
        }

    def save(self, path: str | Path, dtype: torch.dtype = torch.float32) -> None:
        """Write the weights (``vae.*`` keys, diffusers naming), the latent background and the JSON header to
        one ``.safetensors`` file, atomically. Never pickles."""
        tensors = {f"vae.{k}": v.to(dtype) for k, v in self.vae.state_dict().items()}
        # the file holds the weights' own background, in fp32 (upscale and amp are not saved)
        u, a = self._upscale, self.amp
        self.upscale, self.amp = 1, False
        try:
            tensors["latent_background"] = self.latent_background().float()
        finally:
            self.upscale, self.amp = u, a
        atomic_save_safetensors(tensors, path, metadata={META_KEY: json.dumps(self.header())})

    @classmethod
    def load(
        cls, path: str | Path, device: str | torch.device = "cpu", tanh_scale: float | None = None,
        use_mean: bool | None = None,
    ) -> "LatentAutoencoder":
        """Load a file written by :meth:`save`.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            AutoencoderError: if it is not such a file or its tensors do not match its own config.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"autoencoder checkpoint not found: {path}")
        header = read_header(path)
        if header is None:
            raise AutoencoderError(f"{path}: not a latentscenes autoencoder file (no '{META_KEY}' metadata)")
        ae = cls(
            header["vae_config"],
            tanh_scale=header.get("tanh_scale", SD_TANH_SCALE) if tanh_scale is None else tanh_scale,
            use_mean=header.get("use_mean", True) if use_mean is None else use_mean,
            info=header.get("info", {}),
        )
        tensors = _load_safetensors(path)
        state = {k[len("vae."):]: v for k, v in tensors.items() if k.startswith("vae.")}
        _load_state(ae.vae, state, path)
        ae.to(device)
        return ae


def same_latent_space(a: LatentAutoencoder, b: LatentAutoencoder, atol: float = 1e-4) -> tuple[bool, str]:
    """Whether two autoencoders encode to the same normalised latents ``tanh(s E(x))`` (paper Sec. 3's latent space):
    the same tanh scale, and posterior means of a fixed set of probe images (a white image and four smooth colour
    fields, ``[5, 3, 64, 64]`` in [-1, 1]) whose normalised values, in (-1, 1), differ by at most ``atol``. E.g. a
    3Da-AE and the same with its decoder retrained or grown (``ae pretrain --set train_part=decoder``).

    Returns:
        (agree, a one-line reason: the tanh scales or the largest latent difference).
    """
    if abs(a.tanh_scale - b.tanh_scale) > 1e-12:
        return False, f"tanh scales differ ({a.tanh_scale} vs {b.tanh_scale})"
    g = torch.Generator().manual_seed(0)
    # white (the background), and smooth colour fields: what an encoder sees of objects, deterministic
    smooth = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8, generator=g) * 2 - 1, size=(64, 64),
                                             mode="bilinear", align_corners=False)
    x = torch.cat([torch.ones(1, 3, 64, 64), smooth])
    with torch.no_grad():
        za = a.normalize(a.encode_distribution(x.to(a.device)).mean.float()).cpu()
        zb = b.normalize(b.encode_distribution(x.to(b.device)).mean.float()).cpu()
    if za.shape != zb.shape:
        return False, f"latent shapes differ ({list(za.shape)} vs {list(zb.shape)})"
    diff = float((za - zb).abs().max())
    return diff <= atol, f"largest normalised latent difference {diff:.2e}"


def read_header(path: str | Path) -> dict[str, Any] | None:
    """The JSON header of a file written by :meth:`LatentAutoencoder.save`, or None for another safetensors file.

    Raises:
        AutoencoderError: if the file is not a readable safetensors file.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types
        raise AutoencoderError(f"{path}: not a readable .safetensors file ({e})") from None
    if META_KEY not in meta:
        return None
    return json.loads(meta[META_KEY])


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as e:
        raise AutoencoderError(f"{path}: not a readable .safetensors file ({e})") from None


def _load_state(vae: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Strict load with a message that names the file and the first mismatches."""
    own = vae.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape_bad = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shape_bad:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) (e.g. {unexpected[:3]})")
        if shape_bad:
            k = shape_bad[0]
            parts.append(
                f"{len(shape_bad)} shape mismatch(es) (e.g. {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
            )
        if any(k.startswith(("first_stage_model.", "encoder.down.")) for k in unexpected):
            parts.append("this looks like an original (LDM) checkpoint: convert it to diffusers format first")
        raise AutoencoderError(
            f"{path}: checkpoint does not match the autoencoder architecture: " + "; ".join(parts)
        )
    vae.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def _find_diffusers_folder(folder: Path) -> tuple[Path, Path]:
    """(config.json, weights .safetensors) of a diffusers VAE folder, or of its ``vae/`` subfolder."""
    for d in (folder, folder / "vae"):
        cfg = d / "config.json"
        if cfg.is_file():
            for name in ("diffusion_pytorch_model.safetensors", "model.safetensors"):
                if (d / name).is_file():
                    return cfg, d / name
            cands = sorted(d.glob("*.safetensors"))
            if len(cands) == 1:
                return cfg, cands[0]
            bins = sorted(d.glob("*.bin")) + sorted(d.glob("*.ckpt"))
            hint = " (only pickle weights found; convert them to .safetensors: pickles are never loaded)" if bins else ""
            raise FileNotFoundError(f"{d}: no .safetensors weights next to config.json{hint}")
    raise FileNotFoundError(f"{folder}: not a diffusers autoencoder folder (no config.json in it or in vae/)")


def load_autoencoder(cfg: AEConfig, device: str | torch.device = "cpu") -> LatentAutoencoder:
    """Build the autoencoder described by ``cfg`` (paper Sec. 3-4; docs/autoencoder.md).

    Args:
        cfg: which autoencoder; see :class:`AEConfig`.
        device: where to put it.
    Returns:
        a :class:`LatentAutoencoder` in eval mode.
    Raises:
        FileNotFoundError: the shipped weights named by ``cfg.source``, or ``cfg.path``, do not exist (message names
            the path).
        AutoencoderError (a ValueError): the file is unreadable or its tensors do not match the architecture
            (message names the path and the first mismatching keys); ``source="path"`` without a path.
        ValueError: ``cfg.upscale`` not 1, 2, 4 or 8.
    """
    check_upscale(cfg.upscale)  # before the weights are read
    return _load_weights(cfg, device).apply_runtime(cfg)


def _load_weights(cfg: AEConfig, device: str | torch.device) -> LatentAutoencoder:
    if cfg.source == "scratch":
        ae = LatentAutoencoder(
            cfg.architecture(), tanh_scale=cfg.tanh_scale if cfg.tanh_scale is not None else SD_TANH_SCALE,
            use_mean=cfg.use_mean, info={"source": "scratch"},
        )
        if cfg.tanh_scale is None:
            ae.info["tanh_scale_unset"] = True  # pre-training picks it from the trained latents' std
        return ae.to(device).eval()
    if cfg.source in SHIPPED_AUTOENCODERS:
        weights = SHIPPED_AUTOENCODERS[cfg.source]
        if not weights.is_file():
            raise FileNotFoundError(
                f"the shipped base autoencoder {cfg.source!r} is missing: {weights} (reinstall the package, or use "
                "--ae scratch / --ae PATH)"
            )
        ae = LatentAutoencoder.load(weights, device, tanh_scale=cfg.tanh_scale, use_mean=cfg.use_mean)
        ae.info.setdefault("source", cfg.source)
        return ae.eval()
    if cfg.source != "path":
        names = ", ".join(repr(n) for n in (*SHIPPED_AUTOENCODERS, "scratch", "path"))
        raise AutoencoderError(f"AEConfig.source must be one of {names}, not {cfg.source!r}")
    if not cfg.path:
        raise AutoencoderError(
            "AEConfig.source='path' needs a path (e.g. --ae /models/sd15/vae or --set ae.path=...): no weights "
            "can be downloaded, and a random autoencoder is never substituted silently"
        )
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"autoencoder checkpoint not found: {path}")
    if path.is_dir():
        cfg_file, weights = _find_diffusers_folder(path)
        try:
            vae_config = json.loads(cfg_file.read_text())
        except json.JSONDecodeError as e:
            raise AutoencoderError(f"{cfg_file}: not valid JSON ({e})") from None
        if vae_config.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
            raise AutoencoderError(f"{cfg_file}: expected an AutoencoderKL config, got {vae_config.get('_class_name')}")
        ae = LatentAutoencoder(
            vae_config, tanh_scale=cfg.tanh_scale if cfg.tanh_scale is not None else SD_TANH_SCALE,
            use_mean=cfg.use_mean, info={"source": "path", "path": str(path)},
        )
        _load_state(ae.vae, _load_safetensors(weights), weights)
        return ae.to(device).eval()
    if path.suffix != ".safetensors":
        raise AutoencoderError(
            f"{path}: expected a .safetensors file or a diffusers folder (pickle checkpoints are never loaded)"
        )
    header = read_header(path)
    if header is not None:
        ae = LatentAutoencoder.load(path, device, tanh_scale=cfg.tanh_scale, use_mean=cfg.use_mean)
        ae.info["path"] = str(path)
        return ae.eval()
    # A raw diffusers-format state dict (e.g. SD 1.5's vae/diffusion_pytorch_model.safetensors): the
    # architecture comes from cfg.
    ae = LatentAutoencoder(
        cfg.architecture(), tanh_scale=cfg.tanh_scale if cfg.tanh_scale is not None else SD_TANH_SCALE,
        use_mean=cfg.use_mean, info={"source": "path", "path": str(path)},
    )
    state = _load_safetensors(path)
    if state and all(k.startswith("vae.") for k in state):
        state = {k[4:]: v for k, v in state.items()}
    _load_state(ae.vae, state, path)
    return ae.to(device).eval()


def tanh_scale_for_std(std: float) -> float:
    """The tanh scale s with ``s * std = 0.35`` (3 std -> tanh ~0.78), rounded to 3 significant digits."""
    if not math.isfinite(std) or std <= 0:
        raise ValueError(f"latent std must be positive and finite, got {std}")
    s = TANH_TARGET_STD / std
    return float(f"{s:.3g}")


def check_upscale(u: Any) -> int:
    """``u`` as an int if it is a valid :attr:`AEConfig.upscale` (1, 2, 4 or 8); ``ValueError`` otherwise."""
    if isinstance(u, bool) or not isinstance(u, (int, float)) or u != int(u) or int(u) not in (1, 2, 4, 8):
        raise ValueError(f"ae.upscale must be 1, 2, 4 or 8 (a latent pixel covers 8 / upscale image pixels), got {u!r}")
    return int(u)


def _check_images(x: torch.Tensor, multiple: int = DOWNSAMPLE) -> None:
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[-1] % multiple or x.shape[-2] % multiple:
        raise ValueError(f"expected images [B, 3, H, W] with H, W multiples of {multiple}, got {tuple(x.shape)}")
