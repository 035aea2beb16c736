"""``latentscenes train`` (Alg. 1: warm-up + joint 3Da-AE training) and ``latentscenes exploit`` (Alg. 2).

docs/training.md describes the stages, the run folder and ``--resume``.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer

from latentscenes.cli.common import CONFIG_OPT, PRESET_OPT, SET_OPT, fail, user_errors
from latentscenes.config import ConfigError, apply_overrides, resolve_config
from latentscenes.training import run_format as rf
from latentscenes.utils.folders import check_out_folder
from latentscenes.utils.progress import console


@contextmanager
def pipeline_errors() -> Iterator[None]:
    """User-facing errors of training/exploitation -> one line on stderr and exit code 2 (no traceback)."""
    with user_errors():
        try:
            yield
        except Exception as e:  # narrowed below: only the project's own error types are user errors
            # imported on use: keeps `latentscenes --help` fast
            from latentscenes.autoencoder.model import AutoencoderError
            from latentscenes.training.losses import NonFiniteLossError
            from latentscenes.training.pipeline import RunError

            if isinstance(e, (AutoencoderError, RunError, NonFiniteLossError)):
                fail(e)
            raise


def _summary(res: dict) -> dict:
    """The JSON-able part of a training/exploit result (drops the in-memory model)."""
    return {k: v for k, v in res.items() if k != "system"}


def _print_summary(res: dict) -> None:
    for name, st in res["stages"].items():
        if name == "exploit_refit":  # training/refit.py: which collapsed fits were learned again
            db = lambda x: "exact" if x is None else f"{x:.2f}"  # None: an exact fit (refit.py writes strict JSON)
            done = "; ".join(f"{r['scene']} {db(r['before_db'])} -> {db(r['after_db'])} dB, kept the "
                             f"{'refit' if r['kept'] == 'refit' else 'first fit'}" for r in st["scenes"])
            console.print(f"  {name}: {st['refitted']} of {st['checked']} scenes more than {st['margin_db']:g} dB "
                          f"below the median train-view latent PSNR or collapsed, {st['train_s']:.1f} s"
                          + (f": {done}" if done else ""), markup=False, highlight=False)
            if st.get("still_collapsed"):  # batches written before the check have no such key
                console.print(f"  warning: {len(st['still_collapsed'])} scene(s) still collapsed after their refit "
                              f"(train-view latent PSNR within {st['collapse_margin_db']:g} dB of a flat prediction: "
                              f"a blob, not the object): {', '.join(st['still_collapsed'])}. The 3Da-AE may not suit "
                              "these images (another resolution or category than it was trained on).",
                              style="bold red", markup=False, highlight=False)
            continue
        losses = ", ".join(f"{k} {v:.4g}" for k, v in st.get("final_losses", {}).items())
        console.print(
            f"  {name}: {st['steps']} steps, {st['train_s']:.1f} s ({st['step_ms_median']:.0f} ms/step median), "
            f"peak RSS {st['peak_rss_mb']:.0f} MB; {losses}"
        )
    typer.echo(json.dumps({k: v for k, v in _summary(res).items() if k != "stages"}, default=str))


def _set_threads() -> None:
    """Torch threads: every core (``set_cpu_threads``), or the cores divided among the CPU processes torchrun
    started on this machine."""
    # imported on use: keeps `latentscenes --help` fast
    import torch

    from latentscenes.training.distributed import cpu_threads_per_process
    from latentscenes.utils.device import set_cpu_threads

    n = cpu_threads_per_process()
    if n is None:
        set_cpu_threads()
    else:
        torch.set_num_threads(n)


def _backend() -> str:
    # imported on use: keeps `latentscenes --help` fast
    import torch.distributed as dist

    return str(dist.get_backend())


def n_scenes_override(value: str | None, overrides: list[str] | None, key: str = "data.n_exploit_scenes") -> list[str]:
    """``--n-scenes N|all`` as the ``--set`` it stands for (``KEY=N`` or ``KEY=null``): ``data.n_exploit_scenes``
    for ``exploit``, ``data.n_train_scenes`` for ``train``.

    Raises:
        ConfigError: ``value`` is neither a positive integer nor ``all``, or ``--set KEY`` is given too.
    """
    if value is None:
        return []
    if any(o.split("=", 1)[0].strip() == key for o in overrides or []):
        raise ConfigError(f"give --n-scenes or --set {key}, not both")
    v = value.strip().lower()
    if v == "all":
        return [f"{key}=null"]
    if not v.isdigit() or int(v) < 1:
        raise ConfigError(f"--n-scenes must be a positive number of scenes or 'all', not {value!r}")
    return [f"{key}={int(v)}"]


def register(app: typer.Typer) -> None:
    """Add the ``train`` and ``exploit`` commands to the root app."""

    @app.command("train")
    def train(
        data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (MultiSceneDataset); its 'train' split is used."),
        out: Path = typer.Option(..., "--out", help="Run folder to create (or to continue with --resume)."),
        preset: Optional[str] = PRESET_OPT,
        config: Optional[Path] = CONFIG_OPT,
        set_: Optional[List[str]] = SET_OPT,
        ae: Optional[str] = typer.Option(None, "--ae", help="Autoencoder: 'shipped' (airliners), 'shipped-general' (other objects), 'scratch' or a local path (SD-1.5 folder / .safetensors)."),
        n_scenes: Optional[str] = typer.Option(
            None, "--n-scenes", help="Train on the first N scenes of the 'train' split (sorted ids), or 'all' of them "
                                     "(= --set data.n_train_scenes=N|null; default: the preset's setting)."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoints."),
        device: Optional[str] = typer.Option(None, "--device", help="auto (default: cuda when present), cpu or cuda."),
        init: Optional[str] = typer.Option(
            None, "--init", help="Start from a pre-trained 3Da-AE ('shipped', an exported folder or a finished run): "
                                 "its autoencoder, MLP and global planes; the train scenes' planes learn in the "
                                 "warm-up. Its config is the base of the run's (--preset / --config replace it, "
                                 "--set overrides it)."),
    ) -> None:
        """Train 3Da-AE on the training scenes (paper Alg. 1): latent caching, warm-up, joint training.

        Under torchrun (several processes): the scenes are shared out among the processes (docs/scale.md)."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.autoencoder.model import AEConfig
        from latentscenes.training import distributed
        from latentscenes.training.config import PipelineConfig
        from latentscenes.training.pipeline import load_run_config, resolve_run, train_3daae

        with pipeline_errors():
            _set_threads()
            # Before its config.json is read: another command's config would give a misleading error.
            check_out_folder(out, "train", resume=resume, resumable=True)
            set_ = list(set_ or []) + n_scenes_override(n_scenes, set_, "data.n_train_scenes")
            if resume and config is None and rf.config_path(out).exists():
                # The run's own resolved config: resuming with other values would not continue the same run.
                cfg = apply_overrides(load_run_config(out), set_)
            elif init and preset is None and config is None:
                # The init's sizes (autoencoder, tri-planes, MLP) are what its weights fit; its stages are a start.
                cfg = apply_overrides(dataclasses.replace(load_run_config(resolve_run(init)), init=init), set_)
            else:
                cfg = resolve_config(PipelineConfig, preset or ("tiny-cpu" if config is None else None), config, set_)
            if init:
                if ae:
                    fail("--ae and --init both set the autoencoder: --init takes the pre-trained 3Da-AE's")
                cfg.init = init
            if ae:
                cfg.ae = AEConfig.from_option(ae, cfg.ae)
            if device:
                cfg.device = device
            # torchrun: one process group for the command (gloo on the CPU, nccl on GPUs); nothing otherwise.
            cfg.device = distributed.init_from_env(cfg.device)
            rank, world_size = distributed.world()
            root = data or (Path(cfg.data.path) if cfg.data.path else None)
            if rank == 0:
                console.print(f"[bold]train[/bold] -> {out} (preset {preset or ('init ' + init if init else 'from config')}, device {cfg.device}"
                              + (f", {world_size} processes, backend {_backend()})" if world_size > 1 else ")"))
            res = train_3daae(cfg, out, data_root=root, resume=resume)
            if rank == 0:
                _print_summary(res)
            distributed.shutdown()

    @app.command("exploit")
    def exploit(
        run: Path = typer.Option(..., "--run", help="A finished training run folder (read only), or 'shipped' / "
                                 "'shipped-128': the pre-trained 3Da-AE in the package for 64 / 128 px images (no "
                                 "training run of your own needed)."),
        out: Path = typer.Option(..., "--out", help="Folder for this exploit batch (scenes, fine-tuned decoder)."),
        data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (default: the run's)."),
        scenes: str = typer.Option("exploit", "--scenes", help="Dataset split to learn ('exploit' or 'train')."),
        n_scenes: Optional[str] = typer.Option(
            None, "--n-scenes", help="Learn the first N scenes of the split (sorted ids), or 'all' of them, in this "
                                     "one batch (= --set data.n_exploit_scenes=N|null; default: the run's setting)."),
        strategy: Optional[str] = typer.Option(
            None, "--strategy", help="Scene-fitting objective: encode-scene (paper), decode-scene, encode-decode-scene."
        ),
        no_prior: bool = typer.Option(False, "--no-prior", help="Reset the global planes B (the No-Prior ablation)."),
        set_: Optional[List[str]] = SET_OPT,
        resume: bool = typer.Option(False, "--resume", help="Continue the batch in --out from its last checkpoints."),
        device: Optional[str] = typer.Option(None, "--device", help="auto (default), cpu or cuda."),
    ) -> None:
        """Learn new scenes with a trained 3Da-AE (paper Alg. 2): Encode-Scene, then decoder fine-tuning.

        Under torchrun (several processes): the scenes are shared out among the processes (docs/scale.md)."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.training import distributed
        from latentscenes.training.pipeline import exploit_3daae, exploit_config, load_run_config

        with pipeline_errors():
            _set_threads()
            set_ = list(set_ or []) + n_scenes_override(n_scenes, set_)
            check_out_folder(out, "exploit", resume=resume, resumable=True)
            if resume and rf.config_path(out).exists():
                cfg = exploit_config(load_run_config(out), set_, strategy, True if no_prior else None)
            else:
                cfg = exploit_config(load_run_config(run), set_, strategy, True if no_prior else None)
            if device:
                cfg.device = device
            # torchrun: one process group for the command (gloo on the CPU, nccl on GPUs); nothing otherwise.
            cfg.device = distributed.init_from_env(cfg.device)
            rank, world_size = distributed.world()
            root = data or (Path(cfg.data.path) if cfg.data.path else None)
            if rank == 0:
                console.print(
                    f"[bold]exploit[/bold] {run} -> {out} (split {scenes}, strategy {cfg.exploit.strategy}, "
                    f"no_prior {cfg.exploit.no_prior}"
                    + (f", {world_size} processes, backend {_backend()})" if world_size > 1 else ")")
                )
            res = exploit_3daae(run, out, cfg, data_root=root, split=scenes, resume=resume)
            if rank == 0:
                _print_summary(res)
            distributed.shutdown()

    @app.command("export")
    def export(
        run: str = typer.Option(..., "--run", help="A training run folder (read only), or a pre-trained 3Da-AE "
                                "folder ('shipped', 'shipped-128' too) to derive a package from."),
        out: Path = typer.Option(..., "--out", help="The pre-trained 3Da-AE folder to write (must not exist)."),
        stage: Optional[str] = typer.Option(
            None, "--stage", help="Take the last checkpoint of this stage (warmup = the plain-AE ablation, joint = "
                                  "a joint stage still running) instead of the finished model."),
        triplane_resolution: Optional[int] = typer.Option(
            None, "--triplane-resolution", help="Write the global planes B resampled to this T, so that new scenes "
                                                "are learned at T by default (bilinear; the manifest records the T "
                                                "they were trained at)."),
        ae: Optional[Path] = typer.Option(
            None, "--ae", help="An autoencoder file that replaces the 3Da-AE and encodes to the same latents (its "
                               "decoder trained further or grown: `ae pretrain --set train_part=decoder`); checked."),
        set_: Optional[List[str]] = typer.Option(
            None, "--set", help="Write an exploit recipe setting into the package's config, so that `exploit --run "
                                "OUT` uses it by default: exploit.*, data.*, ae.upscale, render.supersample / "
                                "pixel_jitter / offset_ensemble, triplane.local_init_std / coef_init_std "
                                "(repeatable)."),
    ) -> None:
        """Export a trained 3Da-AE without its scenes, for `exploit --run OUT` (how the shipped ones are made)."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.training.pipeline import export_pretrained

        with pipeline_errors():
            m = export_pretrained(run, out, stage=stage, triplane_resolution=triplane_resolution, ae=ae, recipe=set_)
            src = m["source"]
            what = f"derived from {src['derived_from']}" if src.get("derived_from") else f"{src['stage']}, step {src['step']}"
            console.print(f"[bold]export[/bold] {run} ({what}) -> {out}")
