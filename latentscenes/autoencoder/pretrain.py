"""Autoencoder pre-training (``latentscenes ae pretrain``): the stage before 3Da-AE training.

The paper (arXiv 2403.11678, Sec. 4) starts from Stable Diffusion's pretrained VAE; its weights cannot be
downloaded here, so the base autoencoder is trained from scratch on images (by default the train-split
views of the train-split scenes of a multi-scene dataset), once, and shipped with the package
(docs/autoencoder.md). Recipe: diffusers ``AutoencoderKL``; random object-biased crops of the training
images (a convolutional autoencoder transfers to full frames); loss ``L1`` (or MSE) on the reconstruction of the
posterior mean plus a tiny KL; Adam with linear warm-up, a constant phase and a cosine decay; bf16 autocast on
CPUs/GPUs that support it (fp32 weights).

Run folder layout (all written atomically):
  * ``config.json``: the resolved :class:`PretrainConfig`;
  * ``checkpoint.safetensors``: weights + Adam state + step + sampler RNG (exact ``--resume``);
  * ``ae.safetensors``: the autoencoder alone, in the format :func:`~latentscenes.autoencoder.load_autoencoder`
    reads (``--ae runs/x/ae.safetensors``), with its tanh scale and latent background;
  * ``metrics.jsonl``: one JSON line per log / evaluation.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from latentscenes.autoencoder.data import CropSampler, to_model_space
from latentscenes.autoencoder.balance import balance_latent_channels
from latentscenes.autoencoder.model import AEConfig, LatentAutoencoder, load_autoencoder, tanh_scale_for_std
from latentscenes.config import from_dict, get_preset, register_presets, save_config, to_dict
from latentscenes.metrics import chroma_error_per_image, opponent_chroma, rgb_metrics, to_unit_range
from latentscenes.utils.device import seed_everything
from latentscenes.utils.io import atomic_save_safetensors, atomic_write_text
from latentscenes.utils.machine import bf16_is_fast
from latentscenes.utils.progress import progress_bar


@dataclass
class PretrainConfig:
    """Autoencoder pre-training recipe (docs/autoencoder.md gives the measurements behind the defaults).

    Attributes:
        ae: the autoencoder to train (``source="scratch"`` = random init; ``shipped``/``path`` = fine-tune it).
        steps: optimiser steps (0 = derive from ``minutes`` after measuring the speed of the first steps).
        minutes: wall-clock budget in minutes (0 = none); training stops at whichever of ``steps`` /
            ``minutes`` comes first, and a final checkpoint is always written.
        batch_size: crops per step.
        crop: square crop size in pixels (multiple of 8; 0 or >= image size = full frames).
        object_prob: probability that a crop is centred inside the object's bounding box (else uniform).
        downscale_prob: probability that a crop is taken at twice the size and area-averaged down 2x, so the
            autoencoder also sees objects as in images of half the resolution (e.g. 64 px demo images from a
            128 px dataset); 0 = off.
        lr: peak Adam learning rate; ``warmup_steps`` linear warm-up; cosine decay to ``lr * lr_final`` over
            the last ``decay_frac`` of the run, measured in steps, or in wall-clock time when
            ``schedule_clock="time"`` and ``minutes`` is set (for a fixed time budget on a shared machine
            whose speed varies; such a run is not bit-reproducible).
        loss: ``"l1"`` or ``"mse"`` reconstruction loss (on [-1, 1] images).
        kl_weight: weight of the KL term (mean over latent elements).
        chroma_weight: weight of an extra L1 term on the opponent chroma (R - G, (R + G)/2 - B) of the
            reconstruction (0 = off, as in stages 1-4 of the shipped autoencoder, which ran before this term
            existed). Plain L1 on mostly white, mostly grey airframes let those stages become colour-blind
            (docs/autoencoder.md, "Colour"); this term weights the colour of the few coloured pixels up.
        train_latent: decode the posterior ``"mean"`` or a ``"sample"`` during training.
        amp: bf16 autocast for forward/backward (weights stay fp32) where the device computes bf16 natively
            (``utils.machine.bf16_is_fast``: CUDA with bf16, CPUs with AVX512-bf16 / AMX; 2.3x faster there);
            elsewhere fp32 is used, since emulated bf16 is many times slower. ``summary.json`` records ``amp_used``.
        grad_clip: max gradient norm (0 = off).
        init_output_bias: for a scratch autoencoder, start the decoder's output bias at the training images'
            mean colour (near white here), so training does not first have to learn the white background
            (a scratch AutoencoderKL otherwise sits near 13 dB for its first ~1,000 steps; docs/autoencoder.md).
        eval_every: steps between held-out evaluations; ``eval_images``: how many held-out images.
        ckpt_every_s: seconds between checkpoints.
        seed: seeds initialisation and crop sampling.
        balance_channels: ``"off"``, ``"std"`` or ``"sensitivity"``: before the tanh scale is chosen, rescale the
            latent channels to equal std, or equal decoder sensitivity, on the held-out images
            (:func:`latentscenes.autoencoder.balance.balance_latent_channels`: function-preserving; the renderer's
            one tanh scale then serves every channel alike). Off by default: it changes the latent space that a
            3Da-AE trained on the unbalanced model expects.
        train_part: ``"all"`` trains encoder and decoder; ``"decoder"`` freezes the encoder (and its tanh scale),
            so the latent space, and with it a 3Da-AE's 3D-aware latents and any tri-planes fitted in them, is
            exactly kept while the decoder (e.g. grown by ``ae grow``) learns to reconstruct better
            (docs/fidelity.md, "The decoder's capacity"). Needs a trained source (not ``scratch``);
            ``balance_channels`` must then be ``"off"`` (balancing changes the latent space).
    """

    ae: AEConfig = field(default_factory=lambda: AEConfig(source="scratch"))
    steps: int = 0
    minutes: float = 0.0
    batch_size: int = 8
    crop: int = 64
    object_prob: float = 0.8
    downscale_prob: float = 0.0
    lr: float = 2e-3
    warmup_steps: int = 100
    decay_frac: float = 0.3
    lr_final: float = 0.02
    schedule_clock: str = "steps"
    loss: str = "l1"
    kl_weight: float = 1e-6
    chroma_weight: float = 2.0
    train_latent: str = "mean"
    amp: bool = True
    grad_clip: float = 1.0
    init_output_bias: bool = True
    eval_every: int = 250
    eval_images: int = 32
    ckpt_every_s: float = 120.0
    seed: int = 0
    balance_channels: str = "off"
    train_part: str = "all"


register_presets(
    PretrainConfig,
    {
        "test": lambda: PretrainConfig(
            ae=AEConfig(source="scratch", block_out_channels=(8, 8, 16, 16), norm_num_groups=4, mid_block_attention=False),
            steps=4, batch_size=2, crop=32, warmup_steps=1, eval_every=2, eval_images=2, amp=False,
        ),
        "tiny-cpu": lambda: PretrainConfig(),
        # ``ae finetune``: the general base weights adapted to a user's dataset in a few minutes (docs/autoencoder.md,
        # "Fine-tuning on your own objects"); the lr of the shipped stages 3-6, half the crops 2x down-scaled so
        # that 64 px and 128 px images both gain.
        "finetune": lambda: PretrainConfig(
            ae=AEConfig(source="shipped-general"), steps=800, lr=5e-4, warmup_steps=50, downscale_prob=0.5,
            init_output_bias=False, eval_every=200,
        ),
        "paper": lambda: PretrainConfig(
            ae=AEConfig(source="scratch", block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32),
            batch_size=16, crop=128, lr=1e-4, warmup_steps=500, steps=100_000,
        ),
    },
)


class PretrainError(RuntimeError):
    """Pre-training cannot continue (NaN loss, incompatible resume); the last good checkpoint is kept."""


def lr_at(cfg: PretrainConfig, step: int, progress: float | None) -> float:
    """Learning rate at optimiser step ``step`` (0-based): linear warm-up over ``warmup_steps``, then constant,
    then a cosine decay to ``lr * lr_final`` over the last ``decay_frac`` of the run.

    Args:
        progress: fraction of the run done, in [0, 1] (steps done / total steps, or elapsed / budget with
            ``schedule_clock="time"``); None while unknown (constant lr).
    """
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    start = 1.0 - cfg.decay_frac
    if progress is None or cfg.decay_frac <= 0 or progress < start:
        return cfg.lr
    t = min(1.0, (progress - start) / cfg.decay_frac)
    return cfg.lr * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))


# ---------------------------------------------------------------------- checkpoints
def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta.get("scalars", {}).items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(path: Path, ae: LatentAutoencoder, opt: torch.optim.Optimizer, sampler: CropSampler,
                    step: int, total_steps: int, elapsed_s: float) -> None:
    """Weights + optimiser + step + sampler RNG, atomically, as safetensors with a JSON header."""
    tensors = {f"vae.{k}": v for k, v in ae.vae.state_dict().items()}
    otensors, ometa = _flatten_optimizer(opt)
    tensors.update(otensors)
    tensors["rng.sampler"] = sampler.generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "step": step, "total_steps": total_steps, "elapsed_s": elapsed_s, "optim": ometa,
        "vae_config": ae.vae_config, "tanh_scale": ae.tanh_scale,
    }
    atomic_save_safetensors(tensors, path, metadata={"latentscenes.pretrain": json.dumps(meta)})


def load_checkpoint(path: Path, ae: LatentAutoencoder, opt: torch.optim.Optimizer, sampler: CropSampler) -> dict[str, Any]:
    """Restore what :func:`save_checkpoint` wrote; returns its JSON header.

    Raises:
        PretrainError: if the checkpoint's architecture differs from ``ae``'s.
    """
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {})["latentscenes.pretrain"])
    if meta["vae_config"] != ae.vae_config:
        raise PretrainError(f"{path}: checkpoint architecture differs from the config's; resume with the same config")
    tensors = load_file(str(path))
    ae.vae.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}, strict=True)
    _unflatten_optimizer(opt, tensors, meta["optim"])
    sampler.generator.set_state(tensors["rng.sampler"])
    torch.set_rng_state(tensors["rng.torch"])
    return meta


# ---------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_reconstruction(ae: LatentAutoencoder, images_u8: torch.Tensor, batch: int = 16,
                            amp: bool = False) -> dict[str, Any]:
    """Reconstruction PSNR / SSIM of ``decode(encode(x))`` under the project's protocol
    (``latentscenes.metrics``: [0, 1], full frame, per image then averaged).

    Args:
        images_u8: ``[N, 3, H, W]`` uint8 ground truth.
    Returns:
        ``{"psnr": float, "ssim": float, "chroma_err": float, "psnr_per_image": [N], "ssim_per_image": [N],
        "chroma_err_per_image": [N], "n": N}``; ``chroma_err`` is the mean absolute opponent-chroma error on
        object pixels in [0, 1] units (``latentscenes.metrics.chroma_error_per_image``).
    """
    was = ae.training
    ae.eval()
    dev = ae.device
    ps, ss, cs = [], [], []
    for i in range(0, images_u8.shape[0], batch):
        gt = images_u8[i : i + batch].to(dev)
        x = to_model_space(gt)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            y = ae.reconstruct(x)
        m = rgb_metrics(y.float(), gt.float() / 255.0)
        ps.append(m["psnr"].cpu())
        ss.append(m["ssim"].cpu())
        cs.append(chroma_error_per_image(to_unit_range(y.float()), gt.float() / 255.0).cpu())
    ae.train(was)
    p = torch.cat(ps)
    s = torch.cat(ss)
    c = torch.cat(cs)
    return {"psnr": float(p.mean()), "ssim": float(s.mean()), "chroma_err": float(c.mean()),
            "psnr_per_image": p.tolist(), "ssim_per_image": s.tolist(), "chroma_err_per_image": c.tolist(),
            "n": int(p.numel())}


@torch.no_grad()
def latent_std(ae: LatentAutoencoder, images_u8: torch.Tensor, batch: int = 16) -> float:
    """Standard deviation of the raw latents (posterior mean) of ``images_u8`` (all channels and pixels)."""
    was = ae.training
    ae.eval()
    zs = [ae.encode_distribution(to_model_space(images_u8[i : i + batch].to(ae.device))).mean.float().cpu()
          for i in range(0, images_u8.shape[0], batch)]
    ae.train(was)
    return float(torch.cat(zs).std())


# ---------------------------------------------------------------------- training
def pretrain(
    cfg: PretrainConfig,
    train_images: torch.Tensor,
    eval_images: torch.Tensor | None,
    out_dir: str | Path,
    resume: bool = False,
    device: str | torch.device = "cpu",
    provenance: dict[str, Any] | None = None,
    show_progress: bool = True,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    stop_at_step: int | None = None,
) -> tuple[LatentAutoencoder, dict[str, Any]]:
    """Train the base autoencoder (see the module docstring for the recipe and the run folder's files).

    Args:
        cfg: the recipe.
        train_images: ``[N, 3, H, W]`` uint8 training images (composited on white).
        eval_images: ``[M, 3, H', W']`` uint8 held-out images for periodic evaluation at full frame (or None).
        out_dir: run folder (created).
        resume: continue from ``out_dir/checkpoint.safetensors`` (exactly: same result as an uninterrupted run).
        device: torch device.
        provenance: extra facts saved in ``ae.safetensors``'s header (command, data, machine).
        stop_at_step: stop (and checkpoint) at this step as if the time budget had ended (tests of resume).
    Returns:
        (the trained autoencoder in eval mode, a summary dict also written to ``out_dir/summary.json``).
    Raises:
        FileNotFoundError: ``resume`` without a checkpoint.
        PretrainError: a NaN/inf loss (the last checkpoint is kept), an incompatible checkpoint, or an unknown
            ``balance_channels`` (checked before training).
    """
    if cfg.balance_channels not in ("off", "std", "sensitivity"):
        raise PretrainError(f"balance_channels must be 'off', 'std' or 'sensitivity', not {cfg.balance_channels!r}")
    if cfg.train_part not in ("all", "decoder"):
        raise PretrainError(f"train_part must be 'all' or 'decoder', not {cfg.train_part!r}")
    decoder_only = cfg.train_part == "decoder"
    if decoder_only and cfg.ae.source == "scratch":
        raise PretrainError("train_part='decoder' keeps the encoder's latent space: it needs a trained autoencoder "
                            "(--ae shipped or a checkpoint), not a scratch one")
    if decoder_only and cfg.balance_channels != "off":
        raise PretrainError("train_part='decoder' keeps the latent space; balance_channels would change it: set it 'off'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.safetensors"
    device = torch.device(device)
    if resume and not ckpt.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {ckpt}")
    if not resume:
        save_config(cfg, out / "config.json")
    seed_everything(cfg.seed)
    ae = load_autoencoder(cfg.ae, device)
    # a grown autoencoder (`ae grow`) keeps the record of what it was grown from
    lineage = {"grown_from": ae.info["grown_from"]} if "grown_from" in ae.info else {}
    ae.train()
    source_tanh_scale = ae.tanh_scale
    if decoder_only:
        for p in ae.encoder_parameters():
            p.requires_grad_(False)
    trained = [p for p in ae.parameters() if p.requires_grad]
    sampler = CropSampler(train_images, cfg.crop, cfg.object_prob, flip=True, seed=cfg.seed + 1,
                          downscale_prob=cfg.downscale_prob)
    opt = torch.optim.Adam(trained, lr=cfg.lr)
    step, total, elapsed0 = 0, int(cfg.steps), 0.0
    if cfg.init_output_bias and cfg.ae.source == "scratch" and not resume:
        with torch.no_grad():
            mean = torch.stack([to_model_space(train_images[i : i + 256]).mean(dim=(0, 2, 3))
                                for i in range(0, train_images.shape[0], 256)]).mean(0)
            ae.vae.decoder.conv_out.bias.copy_(mean.to(device))
    if resume:
        meta = load_checkpoint(ckpt, ae, opt, sampler)
        step, total, elapsed0 = int(meta["step"]), int(meta["total_steps"]), float(meta["elapsed_s"])
        if cfg.steps > 0:
            total = int(cfg.steps)
        elif cfg.schedule_clock == "time" and cfg.minutes > 0:
            total = 0  # the wall-clock budget ends the run
    if cfg.steps <= 0 and cfg.minutes <= 0 and total <= 0:
        raise ValueError("set steps and/or minutes for pre-training")
    # bf16 autocast only where the hardware computes bf16 natively: elsewhere it is emulated and many times
    # slower than fp32 (the run records which was used).
    amp = bool(cfg.amp) and bf16_is_fast(device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 2) if cfg.train_latent == "sample" else None
    metrics_file = out / "metrics.jsonl"
    log_lines: list[str] = metrics_file.read_text().splitlines(keepends=True) if (resume and metrics_file.exists()) else []

    def log(rec: dict[str, Any]) -> None:
        log_lines.append(json.dumps(rec) + "\n")
        atomic_write_text(metrics_file, "".join(log_lines))
        if on_log:
            on_log(rec)

    t_start = time.time()
    budget_s = cfg.minutes * 60.0 if cfg.minutes > 0 else math.inf
    last_ckpt = time.time()
    eval_hist: list[dict[str, Any]] = []
    speed_probe: tuple[int, float] | None = None
    running = 0.0

    def elapsed() -> float:
        return elapsed0 + time.time() - t_start

    # SIGTERM / Ctrl-C: finish the current step, write the checkpoint and ae.safetensors, return.
    stop = {"signal": None}

    def _on_signal(signum, frame):  # noqa: ARG001
        stop["signal"] = signum

    # Restored when the loop's block exits, also by an exception (a caller's Ctrl-C must interrupt again).
    handlers = contextlib.ExitStack()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers.callback(signal.signal, sig, signal.signal(sig, _on_signal))

    if show_progress:
        bar_cm = progress_bar("ae pretrain", total if total > 0 else None)
    else:
        bar_cm = nullcontext((None, None))
    with handlers, bar_cm as (bar, task):
        if bar is not None:
            bar.update(task, completed=step)
        while True:
            if total > 0 and step >= total:
                break
            if elapsed() >= budget_s or (stop_at_step is not None and step >= stop_at_step) or stop["signal"]:
                break
            if cfg.schedule_clock == "time" and math.isfinite(budget_s):
                progress = min(1.0, elapsed() / budget_s)
            else:
                progress = step / total if total > 0 else None
            lr = lr_at(cfg, step, progress)
            for g in opt.param_groups:
                g["lr"] = lr
            x = sampler.sample(cfg.batch_size).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                # a frozen encoder needs no graph (about a third of a step's cost)
                with torch.no_grad() if decoder_only else nullcontext():
                    dist = ae.encode_distribution(x)
                    z = dist.mean if cfg.train_latent == "mean" else dist.sample(generator=gen)
                y = ae.decode(z)
            y = y.float()
            rec = (y - x).abs().mean() if cfg.loss == "l1" else (y - x).pow(2).mean()
            loss = rec
            if not decoder_only:  # the KL term only moves the encoder
                loss = loss + cfg.kl_weight * dist.kl().float().mean() / float(z[0].numel())
            if cfg.chroma_weight > 0:
                loss = loss + cfg.chroma_weight * (opponent_chroma(y) - opponent_chroma(x)).abs().mean()
            if not torch.isfinite(loss):
                raise PretrainError(
                    f"non-finite loss at step {step} (lr {lr:.2e}); last good checkpoint kept at {ckpt}"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(trained, cfg.grad_clip)
            opt.step()
            step += 1
            rv = float(rec.detach())
            running = 0.9 * running + 0.1 * rv if step > 1 else rv
            # Derive the step count from the time budget once the speed is known (then fixed & checkpointed).
            if total <= 0 and cfg.schedule_clock != "time":
                if step == 10:
                    speed_probe = (step, elapsed())
                elif speed_probe is not None and step == speed_probe[0] + 30:
                    rate = 30.0 / max(1e-6, elapsed() - speed_probe[1])
                    eval_cost = 0.04  # periodic evaluations and checkpoints
                    total = max(step + 1, int(step + rate * (budget_s - elapsed()) * (1 - eval_cost)))
                    if bar is not None:
                        bar.update(task, total=total)
            if bar is not None:
                bar.update(task, completed=step, info=f"loss {running:.4f} lr {lr:.1e}"
                           + (f" psnr {eval_hist[-1]['psnr']:.2f}" if eval_hist else ""))
            done = (total > 0 and step >= total) or elapsed() >= budget_s or step == stop_at_step or bool(stop["signal"])
            if step % 50 == 0 or done:
                log({"step": step, "loss": running, "lr": lr, "elapsed_s": round(elapsed(), 2), "total_steps": total})
            if eval_images is not None and cfg.eval_every > 0 and (step % cfg.eval_every == 0 or done):
                ev = evaluate_reconstruction(ae, eval_images[: cfg.eval_images], amp=False)
                rec_ = {"step": step, "eval_psnr": ev["psnr"], "eval_ssim": ev["ssim"], "eval_chroma_err": ev["chroma_err"],
                        "elapsed_s": round(elapsed(), 2)}
                eval_hist.append({"step": step, "psnr": ev["psnr"], "ssim": ev["ssim"], "chroma_err": ev["chroma_err"]})
                log(rec_)
            if time.time() - last_ckpt >= cfg.ckpt_every_s and not done:
                save_checkpoint(ckpt, ae, opt, sampler, step, total, elapsed())
                last_ckpt = time.time()
    save_checkpoint(ckpt, ae, opt, sampler, step, total, elapsed())
    for p in ae.parameters():  # the caller gets an ordinary module back
        p.requires_grad_(True)
    ae.eval()
    # tanh scale from the trained latents' std (unless fixed in the config), then the final autoencoder file.
    probe = eval_images if eval_images is not None else train_images[:64]
    balance = None
    if cfg.balance_channels != "off":
        balance = balance_latent_channels(ae, to_model_space(probe[:64].to(ae.device)), mode=cfg.balance_channels)
    std = latent_std(ae, probe[:64])
    if decoder_only:  # the latent space is the source's, tanh scale included
        ae.tanh_scale = source_tanh_scale
    else:
        ae.tanh_scale = float(cfg.ae.tanh_scale) if cfg.ae.tanh_scale is not None else tanh_scale_for_std(std)
    summary = {
        "steps": step, "total_steps": total, "wall_s": round(elapsed(), 1), "latent_std": std,
        "tanh_scale": ae.tanh_scale, "train_images": int(train_images.shape[0]),
        "train_resolution": list(train_images.shape[-2:]), "crop": sampler.crop,
        "params": {"encoder": ae.num_parameters("encoder"), "decoder": ae.num_parameters("decoder")},
        "train_part": cfg.train_part,
        "last_eval": eval_hist[-1] if eval_hist else None, "amp_used": amp, "config": to_dict(cfg),
        "channel_balance": balance,
    }
    ae.info = {"source": "pretrain", "pretrain": {k: v for k, v in summary.items() if k != "config"},
               "pretrain_config": to_dict(cfg), **lineage, **(provenance or {})}
    ae.save(out / "ae.safetensors")
    summary["latent_background"] = ae.latent_background().tolist()
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return ae, summary


def load_pretrain_config(path: str | Path) -> PretrainConfig:
    """Read a run's ``config.json``."""
    return from_dict(PretrainConfig, json.loads(Path(path).read_text()), where=str(path))


__all__ = [
    "PretrainConfig", "PretrainError", "pretrain", "evaluate_reconstruction", "latent_std", "lr_at",
    "save_checkpoint", "load_checkpoint", "load_pretrain_config", "pretrain_autoencoder",
]


def pretrain_autoencoder(
    ae_cfg: AEConfig,
    images_u8: torch.Tensor,
    out_dir: str | Path,
    steps: int = 0,
    minutes: float = 0.0,
    device: str | torch.device = "cpu",
    eval_images: torch.Tensor | None = None,
    preset: str = "tiny-cpu",
    show_progress: bool = True,
) -> LatentAutoencoder:
    """``--ae scratch`` for the pipeline: pre-train ``ae_cfg`` on ``images_u8`` with the ``preset`` recipe.

    Args:
        ae_cfg: the architecture (``source`` is forced to ``"scratch"`` unless it is ``"path"``/``"shipped"``,
            which are fine-tuned instead).
        images_u8: ``[N, 3, H, W]`` uint8 training images (e.g. the train scenes' train views).
        out_dir: run folder; resumes from it when it already holds a checkpoint.
        steps / minutes: budget (at least one must be > 0).
    Returns:
        the trained :class:`LatentAutoencoder` (eval mode), also saved as ``out_dir/ae.safetensors``.
    """
    cfg = get_preset(PretrainConfig, preset)
    cfg.ae = ae_cfg
    cfg.steps, cfg.minutes = int(steps), float(minutes)
    resume = (Path(out_dir) / "checkpoint.safetensors").is_file()
    ae, _ = pretrain(cfg, images_u8, eval_images, out_dir, resume=resume, device=device, show_progress=show_progress)
    return ae
