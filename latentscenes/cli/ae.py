"""``latentscenes ae pretrain | finetune | grow | eval``: pre-train the base autoencoder, adapt it to a dataset, measure it.

docs/autoencoder.md describes the recipe, the shipped weights and the evaluation protocol.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Iterator, Optional

import typer

from latentscenes.cli.common import CONFIG_OPT, PRESET_OPT, SET_OPT, check_out_file, fail, user_errors
from latentscenes.config import apply_overrides, resolve_config
from latentscenes.utils.folders import check_out_folder, mark_folder
from latentscenes.utils.io import atomic_write_text
from latentscenes.utils.progress import console

ae_app = typer.Typer(help="Base autoencoder: pre-train it, adapt it, grow it, evaluate it (docs/autoencoder.md).",
                     no_args_is_help=True)

DEFAULT_DATA = "data/flightgear"


@contextmanager
def ae_errors() -> Iterator[None]:
    """The project's input errors plus autoencoder/pre-training errors -> one line and exit code 2."""
    # imported on use: keeps `latentscenes --help` fast
    from latentscenes.autoencoder.model import AutoencoderError
    from latentscenes.autoencoder.pretrain import PretrainError

    with user_errors():
        try:
            yield
        except (AutoencoderError, PretrainError) as e:
            fail(e)


def _recipe(out: Path, command: str, resume: bool, preset: Optional[str], config: Optional[Path],
            set_: Optional[list[str]], ae: Optional[str], steps: Optional[int], minutes: Optional[float]):
    """The ``PretrainConfig`` of ``ae pretrain`` / ``ae finetune``: the run's saved one on ``--resume`` (with
    ``--set``), else the preset + config + overrides with ``--ae``; ``--steps`` / ``--minutes`` on top.

    Raises:
        OutFolderError: ``out`` belongs to another command or exists without ``--resume``.
        FileNotFoundError: ``--resume`` of a folder without ``config.json``.
    """
    # imported on use: keeps `latentscenes --help` fast
    from latentscenes.autoencoder.model import AEConfig
    from latentscenes.autoencoder.pretrain import PretrainConfig, load_pretrain_config

    check_out_folder(out, command, resume=resume, resumable=True)
    if resume:
        cfg_path = out / "config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"--resume: no run at {out} (missing {cfg_path})")
        cfg = apply_overrides(load_pretrain_config(cfg_path), set_)
    else:
        cfg = resolve_config(PretrainConfig, preset, config, set_)
        if ae:
            cfg.ae = AEConfig.from_option(ae, cfg.ae)
    if steps is not None:
        cfg.steps = int(steps)
    if minutes is not None:
        cfg.minutes = float(minutes)
    return cfg


@ae_app.command("pretrain")
def pretrain_cmd(
    data: Path = typer.Option(Path(DEFAULT_DATA), "--data", help="Multi-scene dataset: its train-split scenes' train views are used."),
    images: Optional[Path] = typer.Option(None, "--images", help="Train on every image under this folder instead of --data."),
    out: Path = typer.Option(Path("runs/ae-pretrain"), "--out", help="Run folder (checkpoint, ae.safetensors, metrics.jsonl)."),
    preset: Optional[str] = PRESET_OPT,
    config: Optional[Path] = CONFIG_OPT,
    set_: Optional[list[str]] = SET_OPT,
    ae: Optional[str] = typer.Option(None, "--ae", help="Start from: scratch (default of the recipe), shipped, shipped-general, or a local checkpoint path."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Wall-clock budget in minutes (stops cleanly, checkpoint written)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimiser steps (0 = derive from --minutes)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.safetensors with its saved config."),
    device: str = typer.Option("auto", "--device", help="auto (cuda if present), cpu or cuda."),
    max_scenes: int = typer.Option(0, "--max-scenes", help="Use at most this many train scenes (0 = all)."),
    views_per_scene: int = typer.Option(0, "--views-per-scene", help="Use at most this many train views per scene (0 = all)."),
    eval_scenes: int = typer.Option(8, "--eval-scenes", help="Exploit scenes whose test views are the periodic held-out evaluation."),
    resolution: int = typer.Option(128, "--resolution", help="Image resolution for --images folders."),
) -> None:
    """Pre-train the base autoencoder (diffusers AutoencoderKL) on images; see docs/autoencoder.md."""
    # imported on use: keeps `latentscenes --help` fast
    from latentscenes.autoencoder.data import load_dataset_views, load_image_folder
    from latentscenes.autoencoder.pretrain import pretrain
    from latentscenes.utils.device import pick_device, set_cpu_threads
    from latentscenes.utils.machine import machine_brief

    with ae_errors():
        set_cpu_threads()
        cfg = _recipe(out, "ae pretrain", resume, preset, config, set_, ae, steps, minutes)
        dev = pick_device(device)
        eval_u8 = None
        if images is not None:
            train_u8 = load_image_folder(images, resolution)
            n_eval = max(1, min(cfg.eval_images, train_u8.shape[0] // 10))
            eval_u8, train_u8 = train_u8[:n_eval], train_u8[n_eval:] if train_u8.shape[0] > n_eval else train_u8
            source = {"images": str(images), "n": int(train_u8.shape[0])}
        else:
            train_u8, owners = load_dataset_views(data, "train", "train", max_scenes, views_per_scene, seed=cfg.seed)
            try:
                eval_u8, _ = load_dataset_views(data, "exploit", "test", eval_scenes, 0, seed=cfg.seed, progress=False)
            except Exception as e:  # a dataset without exploit scenes: hold out test views of train scenes
                console.print(f"[yellow]no exploit-scene test views ({e}); evaluating on train scenes' test views[/yellow]")
                eval_u8, _ = load_dataset_views(data, "train", "test", eval_scenes, 0, seed=cfg.seed, progress=False)
            source = {"dataset": str(data), "scenes": len(set(owners)), "images": int(train_u8.shape[0]),
                      "views": "train-split views of train-split scenes"}
        console.print(
            f"ae pretrain: {train_u8.shape[0]} images {tuple(train_u8.shape[-2:])}, eval {0 if eval_u8 is None else eval_u8.shape[0]}, "
            f"device {dev}, crop {cfg.crop}, batch {cfg.batch_size}, steps {cfg.steps or 'auto'}, minutes {cfg.minutes or '-'}"
        )
        provenance = {
            "command": "latentscenes " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "data": source, "machine": machine_brief(), "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        mark_folder(out, "ae pretrain")
        model, summary = pretrain(cfg, train_u8, eval_u8, out, resume=resume, device=dev, provenance=provenance)
        last = summary.get("last_eval") or {}
        console.print(
            f"done: {summary['steps']} steps in {summary['wall_s']:.0f} s; held-out PSNR {last.get('psnr', float('nan')):.2f} dB "
            f"SSIM {last.get('ssim', float('nan')):.3f} chroma error {last.get('chroma_err', float('nan')):.4f}; tanh_scale {summary['tanh_scale']}; wrote {out / 'ae.safetensors'}"
        )


@ae_app.command("finetune")
def finetune_cmd(
    data: Path = typer.Option(..., "--data", help="Your multi-scene dataset: its train-split scenes' train views are used."),
    out: Path = typer.Option(Path("runs/ae-finetune"), "--out", help="Run folder (ae.safetensors, finetune.json, checkpoint)."),
    ae: str = typer.Option("shipped-general", "--ae", help="Start from: shipped-general (default: the base autoencoder for objects other than airliners), shipped (airliners), or a local checkpoint (ae.safetensors, diffusers folder)."),
    preset: Optional[str] = typer.Option("finetune", "--preset", help="Recipe preset (PretrainConfig)."),
    set_: Optional[list[str]] = SET_OPT,
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimiser steps (default: the preset's 800)."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Wall-clock budget in minutes instead (stops cleanly)."),
    resolution: list[int] = typer.Option([64, 128], "--resolution", help="Resolution(s) of the before/after figures (repeatable)."),
    eval_scenes: int = typer.Option(16, "--eval-scenes", help="Held-out scenes measured before and after (0 = all)."),
    max_scenes: int = typer.Option(0, "--max-scenes", help="Use at most this many train scenes (0 = all)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.safetensors with its saved config."),
    device: str = typer.Option("auto", "--device", help="auto (cuda if present), cpu or cuda."),
) -> None:
    """Adapt the shipped general base autoencoder to your objects (a few minutes on CPU); prints held-out figures before/after.

    Then train your 3Da-AE from it: ``latentscenes train --data DATA --ae OUT/ae.safetensors`` (docs/autoencoder.md).
    """
    # imported on use: keeps `latentscenes --help` fast
    from latentscenes.autoencoder.finetune import finetune_autoencoder
    from latentscenes.utils.device import pick_device, set_cpu_threads
    from latentscenes.utils.machine import machine_brief

    with ae_errors():
        set_cpu_threads()
        cfg = _recipe(out, "ae finetune", resume, preset, None, set_, ae, steps, minutes)
        provenance = {
            "command": "latentscenes " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "data": {"dataset": str(data), "views": "train-split views of train-split scenes"},
            "machine": machine_brief(), "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        console.print(f"ae finetune: from {ae}, data {data}, steps {cfg.steps or '-'}, minutes {cfg.minutes or '-'}")
        mark_folder(out, "ae finetune")
        r = finetune_autoencoder(cfg, data, out, resolutions=tuple(resolution), max_scenes=max_scenes,
                                 eval_scenes=eval_scenes, resume=resume, device=pick_device(device),
                                 provenance=provenance)
        console.print(f"held-out views: {r['held_out']['description']}; {r['train_images']['n']} training images "
                      f"of {r['train_images']['scenes']} scenes; {r['steps']} steps in {r['wall_s']:.0f} s")
        for res, a in r["after"].items():
            b, d = r["before"][res], r["change"][res]
            console.print(f"{res}x{res}: PSNR {b['psnr']:.2f} -> {a['psnr']:.2f} dB ({d['psnr']:+.2f}), SSIM "
                          f"{b['ssim']:.4f} -> {a['ssim']:.4f}, chroma error {b['chroma_err']:.4f} -> "
                          f"{a['chroma_err']:.4f} ({a['n_scenes']} scenes, {a['n_views']} views)")
        console.print(f"wrote {r['ae']} and {out / 'finetune.json'}; next: latentscenes train --data {data} "
                      f"--ae {r['ae']} --out RUN")


@ae_app.command("grow")
def grow_cmd(
    out: Path = typer.Option(..., "--out", help="Where to write the grown autoencoder (.safetensors)."),
    ae: str = typer.Option("shipped", "--ae", help="shipped, shipped-general, or a local checkpoint to grow."),
    width: int = typer.Option(2, "--width", help="Channel multiplier: 1 or 2."),
    extra_layers: int = typer.Option(0, "--extra-layers", help="ResNet layers added to every block (identity at start)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the weight splits that let duplicated channels diverge."),
    latent_channels: Optional[int] = typer.Option(None, "--latent-channels", help="Widen the bottleneck to this many latent channels (default: the source's)."),
) -> None:
    """A wider / deeper autoencoder, or one with more latent channels, computing the same function
    (docs/autoencoder.md): continue it with `ae pretrain --ae OUT`."""
    # imported on use: keeps `latentscenes --help` fast
    import torch

    from latentscenes.autoencoder.grow import grow_autoencoder
    from latentscenes.autoencoder.model import AEConfig, AutoencoderError, load_autoencoder

    with ae_errors():
        if out.suffix != ".safetensors":
            raise AutoencoderError(f"--out {out}: the grown autoencoder is written as a .safetensors file")
        check_out_file(out)
        src = load_autoencoder(AEConfig.from_option(ae))
        grown = grow_autoencoder(src, width, extra_layers, seed, source=ae, latent_channels=latent_channels)
        x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        with torch.no_grad():
            # the source's latent channels come first; the new ones must not change the decoded image
            z, z2 = src.encode(x), grown.encode(x)
            diff = max(float((z - z2[:, : z.shape[1]]).abs().max()),
                       float((src.decode(z) - grown.decode(z2)).abs().max()))
        if diff > 1e-3:  # never write a grown model that does not reproduce its source
            raise AutoencoderError(f"the grown autoencoder differs from {ae} by {diff:.2e} (expected float rounding)")
        out.parent.mkdir(parents=True, exist_ok=True)
        grown.save(out)
        console.print(
            f"grew {ae}: {src.num_parameters():,} -> {grown.num_parameters():,} parameters "
            f"(blocks {src.vae_config['block_out_channels']} -> {grown.vae_config['block_out_channels']}, "
            f"{src.vae_config['layers_per_block']} -> {grown.vae_config['layers_per_block']} layers per block, "
            f"{src.latent_channels} -> {grown.latent_channels} latent channels); "
            f"max output difference {diff:.1e}; wrote {out}"
        )


@ae_app.command("eval")
def eval_cmd(
    ae: str = typer.Option("shipped", "--ae", help="shipped, shipped-general, or a local checkpoint (ae.safetensors, diffusers folder or state dict)."),
    data: Path = typer.Option(Path(DEFAULT_DATA), "--data", help="Multi-scene dataset."),
    scenes: str = typer.Option("exploit", "--scenes", help="Scene split: exploit, train or all."),
    views: str = typer.Option("test", "--views", help="View split: test, train or all."),
    resolution: list[int] = typer.Option([128, 64], "--resolution", help="Resolution(s) to evaluate at (repeatable)."),
    max_scenes: int = typer.Option(0, "--max-scenes", help="At most this many scenes (seeded subset; 0 = all)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the figures (overall, per scene, per view) to this JSON."),
    preset: Optional[str] = PRESET_OPT,
    set_: Optional[list[str]] = SET_OPT,
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Reconstruction PSNR/SSIM of an autoencoder on held-out views (per view -> per scene -> overall)."""
    # imported on use: keeps `latentscenes --help` fast
    from latentscenes.autoencoder.evaluate import evaluate_on_dataset
    from latentscenes.autoencoder.model import AEConfig, load_autoencoder
    from latentscenes.utils.device import pick_device, set_cpu_threads
    from latentscenes.utils.machine import machine_brief

    with ae_errors():
        set_cpu_threads()
        check_out_file(out)
        base = resolve_config(AEConfig, preset, None, set_)
        cfg = AEConfig.from_option(ae, base)
        model = load_autoencoder(cfg, pick_device(device))
        report = {"ae": ae, "data": str(data), "scenes": scenes, "views": views, "machine": machine_brief(),
                  "results": {}}
        for res in resolution:
            r = evaluate_on_dataset(model, data, scenes, None if views == "all" else views, res, max_scenes)
            report["results"][str(res)] = r
            console.print(
                f"{res}x{res}: PSNR {r['psnr']:.2f} dB  SSIM {r['ssim']:.4f}  chroma error {r['chroma_err']:.4f}  "
                f"({r['n_scenes']} scenes, {r['n_views']} views)"
            )
        if out is not None:
            atomic_write_text(out, json.dumps(report, indent=2) + "\n")
            console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add the ``ae`` command group (``pretrain``, ``finetune``, ``grow``, ``eval``) to the main app."""
    app.add_typer(ae_app, name="ae")
