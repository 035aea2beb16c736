"""The optimisation stages of 3Da-AE (paper Alg. 1 and Alg. 2) as functions over a :class:`LatentSystem`.

Every stage is the same loop (:func:`run_stage`) over mini-batches mixing views of many scenes; what differs
is which loss terms are active (their lambdas) and which parameter groups learn (their learning rates):

===================  =============================================  ===========================================
stage                loss                                           trained
===================  =============================================  ===========================================
warm-up (Alg. 1)     L_Enc on cached latents (+TV)                  T_mic, W, B, MLP (AE frozen)
joint (Alg. 1, Eq.5) l_ae L_ae + l_Enc L_Enc + l_Dec L_Dec (+TV)    T_mic, W, B, MLP, encoder, decoder
exploit fit (Alg.2)  Encode-Scene: L_E on cached latents            T_mic, W, B, MLP (AE frozen)
                     or Decode-Scene L_D / Encode-Decode-Scene Eq.4
exploit fine-tune    L_Dec                                          T_mic, W, B, MLP, decoder
===================  =============================================  ===========================================

Randomness (batch order, stratified and importance samples, posterior samples) is a pure function of
(seed, stage, step): a stage resumed from its checkpoint at step k performs exactly the updates an
uninterrupted run performs from step k (see tests/training/test_resume.py).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open

from latentscenes.autoencoder.model import META_KEY, LatentAutoencoder
from latentscenes.rendering.decoder import TriplaneDecoder
from latentscenes.rendering.offsets import merge_offset_images
from latentscenes.rendering.rays import crop_intrinsics
from latentscenes.rendering.renderer import RenderConfig, render_views
from latentscenes.scenes.bank import SceneBank
from latentscenes.training.checkpoint import (
    existing_checkpoint_dir,
    load_states,
    read_json,
    recover_checkpoint_dir,
    save_states,
    write_checkpoint_dir,
    write_json,
)
from latentscenes.training.config import StageConfig
from latentscenes.training.data import ViewTable, batch_indices, step_generator
from latentscenes.training import run_format as rf
from latentscenes.training.loop import GroupOptimizers, ParamGroup, StageResult, StepOutput, bank_groups, optimise
from latentscenes.training.metrics_log import MetricsLogger
from latentscenes.training.losses import (
    NonFiniteStateError,
    latent_scale_anchor,
    recon_loss,
    triplane_tv,
)
from latentscenes.utils.io import UnreadableFileError, atomic_save_safetensors

SHARD_SCENES = 256  # scenes per safetensors shard (bounded file sizes; a scene never spans two shards)


# ============================================================================================ the system
@dataclass
class LatentSystem:
    """Everything that renders latent scenes and decodes them (paper Fig. 5).

    Attributes:
        ae: the autoencoder (E_phi, D_psi) with tanh normalisation.
        bank: per-scene local planes T_mic and coefficients W, shared global planes B.
        mlp: the shared tiny MLP R_alpha (``TriplaneDecoder`` with C = latent channels outputs).
        render: renderer settings.
    """

    ae: LatentAutoencoder
    bank: SceneBank
    mlp: TriplaneDecoder
    render: RenderConfig

    @property
    def device(self) -> torch.device:
        return self.ae.device

    @property
    def downsample(self) -> int:
        return int(self.ae.downsample_factor)

    def background(self) -> torch.Tensor:
        """``[C]`` latent background in the renderer's [0, 1] pre-scale space (normalised code of white)."""
        return self.ae.latent_background().to(self.device)

    def render_latents(
        self, rows: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, height: int, width: int,
        generator: torch.Generator | None = None, bg: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Render normalised latents of bank rows ``rows [B]`` from cameras ``c2w [B,4,4]``, ``K [B,3,3]``.

        Returns:
            ``render_views``' dict: ``image [B, C, height, width]`` normalised latent in about [-1, 1],
            ``depth``, ``opacity``; differentiable w.r.t. planes and MLP.
        """
        planes = self.bank.planes(rows.to(self.device))
        bg = self.background() if bg is None else bg
        out = render_views(planes, self.mlp, c2w.to(self.device), K.to(self.device), height, width, self.render, bg, generator)
        out["planes"] = planes
        return out


def save_shared(system: LatentSystem, path: Path, parts: tuple[str, ...] = ("encoder", "decoder")) -> None:
    """Write the shared weights to ONE safetensors file, atomically.

    Keys: ``vae.*`` (diffusers names, the AE parts in ``parts``; both by default), ``mlp.*``, ``global_planes``
    (when F_mac > 0) and ``latent_background`` ``[C]``. The metadata holds the autoencoder header under the
    autoencoder's own key, so ``LatentAutoencoder.load(path)`` reads this file directly when both parts are in
    it, plus the MLP sizes.
    """
    tensors: dict[str, torch.Tensor] = {}
    keep = _ae_keys(system.ae, parts)
    for k, v in system.ae.vae.state_dict().items():
        if k in keep:
            tensors[f"vae.{k}"] = v
    for k, v in system.mlp.state_dict().items():
        tensors[f"mlp.{k}"] = v
    if system.bank.global_planes is not None:
        tensors["global_planes"] = system.bank.global_planes.detach()
    tensors["latent_background"] = system.ae.latent_background().float()
    meta = {
        META_KEY: json.dumps(system.ae.header()),
        "mlp": json.dumps({"in_features": system.mlp.in_features, "out_channels": system.mlp.out_channels,
                           "hidden": system.mlp.hidden}),
        "ae_parts": json.dumps(list(parts)),
    }
    atomic_save_safetensors(tensors, path, metadata=meta)


def _ae_keys(ae: LatentAutoencoder, parts: tuple[str, ...]) -> set[str]:
    keys: set[str] = set()
    for k in ae.vae.state_dict():
        is_enc = k.startswith(("encoder.", "quant_conv."))
        if ("encoder" in parts and is_enc) or ("decoder" in parts and not is_enc):
            keys.add(k)
    return keys


def _read_shared(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata and tensors of a file written by :func:`save_shared`.

    Raises:
        FileNotFoundError: missing file. UnreadableFileError: a truncated or damaged file.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: shared weights not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as e:
        raise UnreadableFileError(f"{path}: shared weights file is truncated or damaged ({e})") from None


def replace_shared_planes(path: Path, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Rewrite a file written by :func:`save_shared` with its global planes B ``[M, 3, F_mac, T, T]`` replaced by
    ``fn(B)`` (another T allowed; M and F_mac must stay), atomically; every other tensor and the metadata are kept
    byte for byte. Returns the new planes.

    Raises:
        FileNotFoundError: missing file. UnreadableFileError: a truncated or damaged file.
        ValueError: the file holds no global planes, or M / F_mac differ.
    """
    path = Path(path)
    meta, tensors = _read_shared(path)
    old = tensors.get("global_planes")
    if old is None:
        raise ValueError(f"{path}: holds no global planes (F_mac = 0)")
    new = fn(old)
    if new.shape[:3] != old.shape[:3]:
        raise ValueError(f"{path}: global planes {list(old.shape)} cannot be replaced by {list(new.shape)} (M, 3, "
                         "F_mac must stay)")
    tensors["global_planes"] = new.detach().to(old.dtype).cpu().contiguous()
    atomic_save_safetensors(tensors, path, metadata=meta)
    return tensors["global_planes"]


def replace_shared_autoencoder(path: Path, ae: LatentAutoencoder) -> None:
    """Rewrite a file written by :func:`save_shared` with ``ae``'s weights and header in place of its autoencoder
    (both parts), atomically; the MLP, the global planes and the latent background are kept byte for byte.

    The caller guarantees that ``ae`` encodes to the same latents
    (:func:`~latentscenes.autoencoder.model.same_latent_space`): the MLP and B were learned to render that space.

    Raises:
        FileNotFoundError: missing file. UnreadableFileError: a truncated or damaged file.
        ValueError: the file holds only part of an autoencoder (``ae_parts``), so it has no header to replace.
    """
    path = Path(path)
    meta, tensors = _read_shared(path)
    parts = json.loads(meta.get("ae_parts", '["encoder", "decoder"]'))
    if sorted(parts) != ["decoder", "encoder"]:
        raise ValueError(f"{path}: holds only the autoencoder parts {parts}; its autoencoder cannot be replaced")
    kept = {k: v for k, v in tensors.items() if not k.startswith("vae.")}
    for k, v in ae.vae.state_dict().items():
        kept[f"vae.{k}"] = v.detach().float().cpu().contiguous()
    atomic_save_safetensors(kept, path, metadata={**meta, META_KEY: json.dumps(ae.header())})


def load_shared_into(system: LatentSystem, path: Path) -> list[str]:
    """Load a file written by :func:`save_shared` into ``system`` (the AE parts it holds, MLP, B).

    Returns:
        the AE parts that were loaded (``["encoder", "decoder"]`` or a subset).
    Raises:
        FileNotFoundError: missing file. UnreadableFileError: a truncated or damaged file.
        ValueError: sizes that do not match ``system``.
    """
    path = Path(path)
    meta, tensors = _read_shared(path)
    parts = json.loads(meta.get("ae_parts", '["encoder", "decoder"]'))
    vae = {k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}
    if vae:
        full = system.ae.vae.state_dict()
        keep = _ae_keys(system.ae, tuple(parts))
        missing = sorted(k for k in keep if k not in vae)
        bad = sorted(k for k in keep if k in vae and vae[k].shape != full[k].shape)
        if missing or bad:
            raise ValueError(
                f"{path}: autoencoder weights do not match this architecture "
                f"({len(missing)} missing, e.g. {missing[:2]}; {len(bad)} of another shape, e.g. {bad[:2]})"
            )
        merged = {k: (vae[k].to(full[k].dtype) if k in keep else full[k]) for k in full}
        system.ae.vae.load_state_dict(merged, strict=True)
    mlp = {k[4:]: v for k, v in tensors.items() if k.startswith("mlp.")}
    try:
        system.mlp.load_state_dict(mlp, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: MLP weights do not match ({e})") from None
    if system.bank.global_planes is not None:
        if "global_planes" not in tensors or tensors["global_planes"].shape != system.bank.global_planes.shape:
            raise ValueError(f"{path}: global planes missing or of another size")
        with torch.no_grad():
            system.bank.global_planes.copy_(tensors["global_planes"])
    return parts


def save_scene_shards(bank: SceneBank, folder: Path, ids: list[str] | None = None) -> list[str]:
    """Per-scene parameters as shards ``folder/scenes-00000.safetensors`` (<= 256 scenes each). Returns names."""
    ids = list(bank.scene_ids if ids is None else ids)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for k, i in enumerate(range(0, len(ids), SHARD_SCENES)):
        name = rf.scene_shard_name(k)
        bank.save_shard(folder / name, ids[i : i + SHARD_SCENES])
        names.append(name)
    return names


def load_scene_shards(bank: SceneBank, folder: Path) -> list[str]:
    """Load every shard of ``folder`` into ``bank`` (in file order). Returns the scene ids loaded."""
    ids: list[str] = []
    for p in sorted(Path(folder).glob(rf.SCENE_SHARD_GLOB)):
        ids.extend(bank.load_shard(p))
    return ids


# ============================================================================================ optimisers
class StageOptimizers(GroupOptimizers):
    """The optimisers of one latent stage: :class:`~latentscenes.training.loop.GroupOptimizers` over the groups
    T_mic (``local``), W (``coefs``), B (``global``), the MLP, the encoder and the decoder at ``cfg``'s learning
    rates (0 = frozen; gradients still flow *through* a frozen decoder to the planes)."""

    def __init__(self, system: LatentSystem, cfg: StageConfig) -> None:
        sparse = cfg.optimizer == "sparse"
        super().__init__([
            *bank_groups(system.bank, sparse, cfg.lr_local, cfg.lr_coefs, cfg.lr_global),
            ParamGroup("mlp", list(system.mlp.parameters()), cfg.lr_mlp),
            ParamGroup("encoder", list(system.ae.encoder_parameters()), cfg.lr_encoder),
            ParamGroup("decoder", list(system.ae.decoder_parameters()), cfg.lr_decoder),
        ], sparse=sparse)


# ============================================================================================ one stage
EvalFn = Callable[[LatentSystem, str, int], dict[str, float]]


def resolve_steps(cfg: StageConfig, n_views: int) -> int:
    """Number of updates of a stage: ``cfg.steps``, or ``ceil(epochs * n_views / batch_size)`` when
    ``cfg.epochs`` is set."""
    if cfg.epochs is not None:
        return max(1, math.ceil(cfg.epochs * n_views / cfg.batch_size))
    return int(cfg.steps)


def stage_losses(
    system: LatentSystem,
    table: ViewTable,
    latents: torch.Tensor | None,
    rows: torch.Tensor,
    bank_rows: torch.Tensor,
    cfg: StageConfig,
    generator: torch.Generator | None,
    encode_live: bool,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted loss of one mini-batch (paper Eq. 2-5, Alg. 1 lines 4-15, Alg. 2 lines 4-10 / 15-22).

    Args:
        table: the stage's views; rows: ``[B]`` view rows of the batch; bank_rows: ``[B]`` their scene rows in
            ``system.bank``.
        latents: ``[N, C, h, w]`` cached normalised targets (Encode-Scene); with ``encode_live`` the cached
            latents of the pre-trained encoder (reference of ``lambda_latent_anchor``) or None.
        cfg: lambdas and loss kind.
        encode_live: encode the batch with a trainable encoder (joint stage: L_Enc also trains E, Eq. 5).
    Returns:
        ``(total, terms)`` where ``terms`` holds the unweighted ``enc``/``dec``/``ae``/``tv``/``anchor`` values
        present. With ``encode_live``, ``latents`` (when given) are only the reference of the latent-scale anchor.
    """
    dev = system.device
    # [B,3,H,W] in [-1,1], decoded from the table's pixel codes only when a term compares with the images (an
    # Encode-Scene fit on cached latents never looks at them).
    need_images = encode_live or cfg.lambda_ae > 0 or cfg.lambda_dec > 0
    x = table.batch_images(rows).to(dev) if need_images else None
    H, W = table.resolution
    ds = system.downsample
    h, w = H // ds, W // ds
    merge_dec = cfg.lambda_dec > 0 and cfg.dec_offset_merge and table.copies > 1
    crop_dec = cfg.lambda_dec > 0 and 0 < cfg.dec_crop < max(h, w)
    # The rows' own renders; L_Dec on the offset average or on a window renders what it needs itself, so without
    # L_Enc or TV they would be drawn and thrown away.
    out = None
    if not (merge_dec or crop_dec) or cfg.lambda_enc > 0 or cfg.lambda_tv > 0:
        out = system.render_latents(bank_rows, table.c2w[rows], table.K[rows], h, w, generator)
    z_render = out["image"] if out is not None else None  # rendered normalised latent, R_alpha(T_s, p)
    terms: dict[str, torch.Tensor] = {}
    total = torch.zeros((), device=dev)
    z = None
    if encode_live and (cfg.lambda_enc > 0 or cfg.lambda_ae > 0 or cfg.lambda_latent_anchor > 0):
        z = system.ae.encode(x, generator=generator)  # E_phi(x_p), raw
    z_norm = system.ae.normalize(z) if z is not None else None
    if cfg.lambda_enc > 0:
        target = z_norm if encode_live else latents[rows].to(dev)
        terms["enc"] = recon_loss(z_render, target, cfg.loss)  # L_Enc (Eq. 5) / L_E (Eq. 2)
        total = total + cfg.lambda_enc * terms["enc"]
    if cfg.lambda_latent_anchor > 0 and encode_live:
        if latents is None or z_norm is None:
            raise ValueError("lambda_latent_anchor > 0 needs the cached latents of the pre-trained encoder")
        terms["anchor"] = latent_scale_anchor(z_norm, latents[rows].to(dev))
        total = total + cfg.lambda_latent_anchor * terms["anchor"]
    if cfg.lambda_ae > 0:
        if z is not None:
            z_ae = z
        elif latents is not None:
            # Frozen encoder (exploit fine-tune): its cached posterior means are E(x), so L_ae costs one decode
            # and anchors the decoder to reconstructing real latents while L_Dec pulls it toward renders.
            z_ae = system.ae.denormalize(latents[rows].to(dev))
        else:
            raise ValueError("lambda_ae > 0 needs a live encoder or the cached latents of the stage's views")
        x_ae = x
        if 0 < cfg.ae_views < len(z_ae):
            z_ae, x_ae = z_ae[:cfg.ae_views], x[:cfg.ae_views]
        ha, wa = z_ae.shape[-2:]
        if 0 < cfg.ae_crop < max(ha, wa):
            z_ae, x_ae = latent_window(z_ae, x_ae, min(cfg.ae_crop, ha), min(cfg.ae_crop, wa), ds, generator)
        terms["ae"] = recon_loss(system.ae.decode(z_ae), x_ae, cfg.loss)  # L_ae (Eq. 1/5)
        total = total + cfg.lambda_ae * terms["ae"]
    if cfg.lambda_dec > 0:
        # The latent window L_Dec is computed on (dec_crop): rows i0:i0+ch, cols j0:j0+cw; the whole grid without.
        ch, cw = (min(cfg.dec_crop, h), min(cfg.dec_crop, w)) if crop_dec else (h, w)
        i0, j0 = window_corner(h, w, ch, cw, generator) if crop_dec else (0, 0)
        if merge_dec:
            # L_Dec on the image evaluation decodes (render.offset_ensemble): every copy of each row's source view
            # rendered, decoded, moved back and averaged, against the source view (copy 0).
            n, g2 = table.n_source_views, table.copies
            src = rows % n
            copy_rows = torch.cat([src + c * n for c in range(g2)])  # copy-major, as merge_offset_images expects
            K = table.K[copy_rows]
            if crop_dec:
                K = crop_intrinsics(K, i0, j0, ch, cw, (h, w))
            z_copies = system.render_latents(bank_rows.repeat(g2), table.c2w[copy_rows], K, ch, cw, generator)["image"]
            x_dec = merge_offset_images(system.ae.decode(system.ae.denormalize(z_copies)), table.shift_grid, ds)
            x_ref = table.batch_images(src).to(dev)
        else:
            if not crop_dec:
                z_dec = z_render
            elif z_render is not None:  # rendered whole for L_Enc / TV: its window
                z_dec = z_render[..., i0:i0 + ch, j0:j0 + cw]
            else:  # only the window's rays
                K = crop_intrinsics(table.K[rows], i0, j0, ch, cw, (h, w))
                z_dec = system.render_latents(bank_rows, table.c2w[rows], K, ch, cw, generator)["image"]
            x_dec = system.ae.decode(system.ae.denormalize(z_dec))  # D_psi(R_alpha(T_s, p))
            x_ref = x
        if crop_dec:
            x_ref = x_ref[..., ds * i0:ds * (i0 + ch), ds * j0:ds * (j0 + cw)]
        terms["dec"] = recon_loss(x_dec, x_ref, cfg.loss)  # L_Dec (Eq. 5) / L_D (Eq. 3)
        total = total + cfg.lambda_dec * terms["dec"]
    if cfg.lambda_tv > 0:
        terms["tv"] = triplane_tv(out["planes"], cfg.tv_mode)
        total = total + cfg.lambda_tv * terms["tv"]
    return total, terms


def latent_window(
    z: torch.Tensor, x: torch.Tensor, ch: int, cw: int, ds: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random ``ch x cw`` window of latents ``z [B, C, h, w]`` and the image pixels it decodes to: the
    ``StageConfig.ae_crop`` form of L_ae (paper Eq. 1/5 on a window; the window is ours, not the paper's).

    Args:
        x: ``[B, 3, ds*h, ds*w]`` images in [-1, 1]; ch, cw: window size in latent pixels, ``1 <= ch <= h`` and
            ``1 <= cw <= w`` (the caller clamps; a larger window makes ``torch.randint`` raise RuntimeError);
            ds: image pixels per latent pixel (the autoencoder's ``downsample_factor``, 8 / ``ae.upscale``);
            generator: draws the window's corner, uniformly over the valid corners (None: the global generator).
    Returns:
        ``(z[..., i:i+ch, j:j+cw], x[..., ds*i:ds*(i+ch), ds*j:ds*(j+cw)])``, one corner for the whole batch.
    """
    i, j = window_corner(*z.shape[-2:], ch, cw, generator)
    return z[..., i:i + ch, j:j + cw], x[..., ds * i:ds * (i + ch), ds * j:ds * (j + cw)]


def window_corner(h: int, w: int, ch: int, cw: int, generator: torch.Generator | None) -> tuple[int, int]:
    """The top-left corner ``(i, j)`` of a random ``ch x cw`` window of an ``h x w`` grid, uniform over the
    ``(h - ch + 1) (w - cw + 1)`` corners that keep it inside (drawn row first, then column, from ``generator``;
    None: the global generator). ``ch <= h`` and ``cw <= w``, else ``torch.randint`` raises RuntimeError."""
    dev = generator.device if generator is not None else None
    i, j = (int(torch.randint(n + 1, (1,), generator=generator, device=dev)) for n in (h - ch, w - cw))
    return i, j


def _step_batch(
    table: ViewTable, bank_rows_of_scene: torch.Tensor, cfg: StageConfig, seed: int, stage: str, step: int,
    dev: torch.device,
) -> tuple[torch.Generator, torch.Tensor, torch.Tensor]:
    """Seed the global RNG for ``step`` and return ``(renderer generator, view rows [B], bank rows [B])``."""
    # One seed per (run, stage, step): the global RNG (posterior samples) and the renderer's generator.
    s = step_generator(seed, stage, step)
    torch.manual_seed(s)
    gen = torch.Generator(device=dev).manual_seed(s)
    rows = batch_indices(len(table), cfg.batch_size, seed, stage, step)
    return gen, rows, bank_rows_of_scene[table.scene_rows[rows]].to(dev)


#: Loss terms summed over the batch (``triplane_tv``); the others are means over it. A rank of a multi-process stage
#: weights a mean term by its share of the global batch and a summed one by 1 (training/distributed.py).
SUMMED_TERMS = ("tv",)
#: The config weight of each loss term of :func:`stage_losses`.
TERM_LAMBDA = {"enc": "lambda_enc", "anchor": "lambda_latent_anchor", "ae": "lambda_ae", "dec": "lambda_dec",
               "tv": "lambda_tv"}


def _shard_batch(
    table: ViewTable, shard: Any, bank_rows_of_scene: torch.Tensor, cfg: StageConfig, seed: int, stage: str,
    step: int, dev: torch.device,
) -> tuple[torch.Generator, torch.Tensor, torch.Tensor, float]:
    """:func:`_step_batch` of one rank of a multi-process stage: the single-process batch of ``step`` (over every
    view of the run), cut to this rank's rows. Returns ``(generator, rows, bank rows, share of the batch)``; a rank
    with no row in the batch gets one stand-in row of its own and share 0 (it still joins the all-reduce)."""
    s = step_generator(seed, stage, step)
    torch.manual_seed(s)
    gen = torch.Generator(device=dev).manual_seed(s)
    rows = shard.local_rows(batch_indices(len(shard), cfg.batch_size, seed, stage, step))
    share = rows.numel() / cfg.batch_size
    if rows.numel() == 0:
        rows = torch.zeros(1, dtype=torch.long)
    return gen, rows, bank_rows_of_scene[table.scene_rows[rows]].to(dev), share


def _shard_losses(
    system: "LatentSystem", table: ViewTable, latents: torch.Tensor | None, rows: torch.Tensor,
    bank_rows: torch.Tensor, cfg: StageConfig, generator: torch.Generator | None, encode_live: bool, share: float,
    shard: Any,
) -> tuple[torch.Tensor, dict[str, float]]:
    """This rank's part of the global batch's loss (to back-propagate) and the whole batch's loss terms (summed
    over the ranks: the same values on every rank, NaN on every rank when some rank's loss is not finite)."""
    _, terms = stage_losses(system, table, latents, rows, bank_rows, cfg, generator, encode_live)
    part = None
    parts = []
    for k, v in terms.items():
        w = 0.0 if share == 0 else (1.0 if k in SUMMED_TERMS else share)
        term = (getattr(cfg, TERM_LAMBDA[k]) * w) * v
        part = term if part is None else part + term
        parts.append(w * v.detach().double())
    if part is None:
        raise ValueError("stage with no loss term")
    vec = torch.stack(parts + [part.detach().double()]).to(system.device)
    shard.all_reduce_sum(vec)
    got = vec.tolist()
    vals = {k: got[i] for i, k in enumerate(terms)}
    vals["total"] = got[-1]
    return part, vals


def _probe_losses(
    system: LatentSystem, table: ViewTable, latents: torch.Tensor | None, bank_rows_of_scene: torch.Tensor,
    cfg: StageConfig, seed: int, stage: str, step: int, encode_live: bool, shard: Any = None,
) -> dict[str, float]:
    """The loss terms of ``step``'s batch without gradients; the RNG state is left as it was."""
    dev = system.device
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), torch.no_grad():
        if shard is not None:
            gen, rows, bank_rows, share = _shard_batch(table, shard, bank_rows_of_scene, cfg, seed, stage, step, dev)
            return _shard_losses(system, table, latents, rows, bank_rows, cfg, gen, encode_live, share, shard)[1]
        gen, rows, bank_rows = _step_batch(table, bank_rows_of_scene, cfg, seed, stage, step, dev)
        total, terms = stage_losses(system, table, latents, rows, bank_rows, cfg, gen, encode_live)
    return {**{k: float(v) for k, v in terms.items()}, "total": float(total)}


def non_finite_tensors(system: LatentSystem, opts: StageOptimizers, limit: int = 3) -> list[str]:
    """Names of (at most ``limit``) parameters and optimiser-state tensors holding NaN or inf."""
    named = [(f"ae.{k}", p) for k, p in system.ae.named_parameters()]
    named += [(f"mlp.{k}", p) for k, p in system.mlp.named_parameters()]
    named += [(f"bank.{k}", p) for k, p in system.bank.named_parameters()]
    named += list(_state_tensors(opts.state(), "optim"))
    bad = []
    for name, t in named:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad.append(name)
            if len(bad) >= limit:
                break
    return bad


def _state_tensors(obj: Any, path: str):
    """Yield ``(dotted path, tensor)`` for every tensor of a nested optimiser state (no copies)."""
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _state_tensors(v, f"{path}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _state_tensors(v, f"{path}.{i}")


def run_stage(
    system: LatentSystem,
    table: ViewTable,
    stage: str,
    cfg: StageConfig,
    *,
    seed: int,
    latents: torch.Tensor | None = None,
    encode_live: bool = False,
    ckpt_dir: Path | None = None,
    resume: bool = False,
    logger: MetricsLogger | None = None,
    eval_fn: EvalFn | None = None,
    progress: bool = False,
    save_extra: Callable[[Path], None] | None = None,
    shared_parts: tuple[str, ...] = ("encoder", "decoder"),
    shard: Any = None,
) -> StageResult:
    """Run one optimisation stage for ``resolve_steps(cfg, table.n_source_views)`` updates.

    Args:
        system: model to train in place (the stage's parameter groups per ``cfg`` learning rates).
        table: the stage's training views; every scene of ``table.scene_ids`` must be in ``system.bank``.
        stage: name used for the RNG stream, logs and checkpoints (``warmup``, ``joint``, ``exploit_fit``, ...).
        cfg: the :class:`StageConfig`.
        seed: run seed; batches and sampling noise at step k depend only on (seed, stage, k).
        latents: ``[N, C, h, w]`` cached normalised latents (needed when ``lambda_enc > 0`` and not live).
        encode_live: encode images with the (trainable) encoder at each step (joint stage).
        ckpt_dir: folder of this stage's checkpoint (``ckpt_dir/ckpt``); ``None`` = no checkpoints.
        resume: continue from ``ckpt_dir``'s checkpoint if there is one (model, optimisers, step, timings).
        logger: JSON-lines logger; eval_fn: ``eval_fn(system, stage, step) -> {metric: value}`` called every
            ``cfg.eval_every`` steps and at the end (its time is excluded from ``train_s``).
        progress: show a progress bar with ETA.
        save_extra: called with the temporary checkpoint folder to add files (the run's manifest pieces).
        shared_parts: AE parts written to the checkpoint's shared file.
        shard: this rank's :class:`~latentscenes.training.distributed.Shard` in a multi-process stage (``table`` and
            ``system.bank`` then hold its own scenes; batches, step counts and checkpoints are the whole run's:
            training/distributed.py); None = a single process.
    Returns:
        :class:`StageResult`.
    Raises:
        NonFiniteLossError: a loss term is NaN/inf; parameters are left as before that step and the last good
            checkpoint stays on disk (a checkpoint is written only once its parameters gave a finite loss on the
            next batch; the final state is probed with one forward pass). NonFiniteStateError (a subclass): a
            parameter or optimiser state to be checkpointed is NaN/inf; nothing is written.
        ValueError: inconsistent inputs (scenes missing from the bank, no latents for an Encode-Scene stage).
    """
    dev = system.device
    n_views = table.n_source_views if shard is None else shard.n_source_views
    n_steps = resolve_steps(cfg, n_views)
    bank_rows_of_scene = system.bank.rows(table.scene_ids).cpu()
    if cfg.lambda_enc > 0 and not encode_live and latents is None:
        raise ValueError(f"stage {stage!r}: lambda_enc > 0 needs cached latents (or encode_live)")
    if shard is not None and cfg.optimizer != "sparse":
        raise ValueError(f"stage {stage!r}: several processes need optimizer 'sparse' (per-scene Adam states are "
                         f"sharded by scene), not {cfg.optimizer!r}")
    if shard is not None and eval_fn is not None:
        raise ValueError(f"stage {stage!r}: eval_fn is not supported with several processes")
    opts = StageOptimizers(system, cfg)
    main = shard is None or shard.is_main
    if not main:
        logger, progress, save_extra = None, False, None
    steps_per_epoch = max(1.0, n_views / cfg.batch_size)
    result = StageResult(stage=stage, view_copies=int(table.copies))
    start = 0
    ckpt_path = None if ckpt_dir is None else Path(ckpt_dir) / rf.CKPT_DIR

    if resume and ckpt_path is not None:
        if shard is None:
            found = recover_checkpoint_dir(ckpt_path)
        else:  # rank 0 settles an interrupted swap; the others read once it has
            found = recover_checkpoint_dir(ckpt_path) if shard.is_main else None
            shard.barrier()
            found = existing_checkpoint_dir(ckpt_path)
        if found is not None:
            state = read_json(found / "state.json")
            if state.get("stage") != stage:
                raise ValueError(f"{found}: checkpoint of stage {state.get('stage')!r}, expected {stage!r}")
            load_shared_into(system, found / rf.SHARED_FILE)
            if shard is None:
                load_scene_shards(system.bank, found / rf.SCENES_DIR)
                opts.load(load_states(found / "optim.safetensors"))
            else:
                shard.load_own_scenes(system.bank, found / rf.SCENES_DIR)
                states = load_states(found / "optim.safetensors")
                opts.load({k: (shard.own_rows_of_states(v) if k.startswith("lazy.") else v) for k, v in states.items()})
            start = int(state["step"])
            prev = state.get("result", {})
            for k in ("train_s", "cpu_s", "eval_s", "checkpoint_s", "latent_cache_s"):
                setattr(result, k, float(prev.get(k, 0.0)))
            result.curve = list(prev.get("curve", []))
            result.resumed_from = start

    def last_good() -> str | None:
        found = existing_checkpoint_dir(ckpt_path) if ckpt_path is not None else None
        return None if found is None else str(found)

    def write_ckpt(step: int, done: bool) -> float:
        """Checkpoint the state after ``step`` updates; returns the seconds it took.

        Raises NonFiniteStateError (keeping the previous checkpoint) when a parameter or optimiser state is
        not finite: a checkpoint that cannot be resumed would replace the last one that can.
        """
        bad = non_finite_tensors(system, opts)
        if shard is not None and shard.any(bool(bad), dev) and not bad:
            bad = ["(a tensor of another process)"]
        if bad:
            raise NonFiniteStateError(stage, step, bad, last_good())
        if ckpt_path is None:
            return 0.0
        t0 = time.perf_counter()
        result.steps = step
        bank, opt_state = system.bank, None
        if shard is not None:  # every rank's scenes and per-scene Adam moments, on rank 0 (collective)
            opt_state = opts.state()
            lazy = {k: v for k, v in opt_state.items() if k.startswith("lazy.")}
            bank, merged = shard.gather_bank(system.bank, lazy)
            if merged is not None:
                opt_state.update(merged)

        def write(tmp: Path) -> None:
            save_shared(system, tmp / rf.SHARED_FILE, shared_parts)
            save_scene_shards(bank, tmp / rf.SCENES_DIR)
            save_states(opts.state() if opt_state is None else opt_state, tmp / "optim.safetensors")
            if save_extra is not None:
                save_extra(tmp)
            write_json(tmp / "state.json", {"stage": stage, "step": step, "steps_total": n_steps, "done": done,
                                            "result": result.to_dict()})

        if main:
            write_checkpoint_dir(ckpt_path, write)
        if shard is not None:
            shard.barrier()
        dt = time.perf_counter() - t0
        result.checkpoint_s += dt
        return dt

    def forward(step: int) -> StepOutput:
        if shard is None:
            gen, rows, bank_rows = _step_batch(table, bank_rows_of_scene, cfg, seed, stage, step, dev)
            total, terms = stage_losses(system, table, latents, rows, bank_rows, cfg, gen, encode_live)
            vals = {k: float(v.detach()) for k, v in terms.items()}
            vals["total"] = float(total.detach())
            return StepOutput(total, vals, bank_rows)
        gen, rows, bank_rows, share = _shard_batch(table, shard, bank_rows_of_scene, cfg, seed, stage, step, dev)
        total, vals = _shard_losses(system, table, latents, rows, bank_rows, cfg, gen, encode_live, share, shard)
        # none of this rank's scenes in the batch: its stand-in row must not move
        return StepOutput(total, vals, bank_rows, set(opts.lazy) if share == 0 else set())

    def after_backward() -> None:  # the replicated parameters' gradients: summed over the ranks
        shard.all_reduce_grads([p for o in opts.dense.values() for g in o.param_groups for p in g["params"]])

    def lr_factor(step: int) -> float:
        return cfg.lr_gamma_per_epoch ** (step / steps_per_epoch) if cfg.lr_gamma_per_epoch != 1.0 else 1.0

    def probe() -> dict[str, float]:
        return _probe_losses(system, table, latents, bank_rows_of_scene, cfg, seed, stage, n_steps, encode_live,
                             shard)

    n_scenes = len(table.scene_ids) if shard is None else len(shard.scene_ids)
    return optimise(
        stage=stage, n_steps=n_steps, start=start, result=result, opts=opts, forward=forward, device=dev,
        lr_factor=lr_factor,
        frozen_from=[("mlp", math.ceil(cfg.freeze_mlp_fraction * n_steps))] if cfg.freeze_mlp_fraction is not None else (),
        after_backward=None if shard is None else after_backward,
        run_eval=None if eval_fn is None else (lambda step: eval_fn(system, stage, step)),
        eval_every=cfg.eval_every if eval_fn is not None else 0,
        eval_at_start=eval_fn is not None and cfg.eval_every > 0,
        write_checkpoint=write_ckpt, checkpoint_every=cfg.checkpoint_every, last_good=last_good, probe=probe,
        logger=logger, log_every=cfg.log_every,
        progress=f"{stage} ({n_scenes} scenes)" if progress else None,
    )
