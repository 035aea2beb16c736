"""``latentscenes bench``: the paper's cost and quality tables (Tables 1-2, Fig. 6-7), measured in one run.

Example (2-core CPU, about 1 h; the shipped pre-trained 3Da-AE against Tri-Planes (RGB))::

    latentscenes bench --preset cpu --out reports/bench-cpu     # builds (or reuses) data/fg128, its training data
    latentscenes bench --preset cpu --data data/fg128 --out reports/bench-cpu
    latentscenes bench --preset cpu-128 --data data/fg128 --out reports/bench-cpu-128  # 128 px, `shipped-128`
    latentscenes bench --preset cpu-own --out reports/bench-cpu-own   # trains its own 3Da-AEs (< 60 min)

Writes ``OUT/results.json`` (machine, versions, config, every figure), ``OUT/summary.md`` and PNG plots.
The protocol is in docs/benchmark.md.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Optional

import typer

from latentscenes.bench.config import BenchConfig
from latentscenes.cli.common import CONFIG_OPT, PRESET_OPT, SET_OPT, user_errors
from latentscenes.config import ConfigError, resolve_config
from latentscenes.utils.folders import check_out_folder
from latentscenes.utils.progress import console


def default_bench_data(cfg) -> Path:
    """Build (or reuse, or grow) the FlightGear subset that ``cfg`` needs: in ``cfg.build_dir`` (default the folder
    ``demo`` uses, ``data/flightgear-demo-<res>``) at ``cfg.build_resolution`` (default the benchmark's image size).

    With ``cfg.pretrained`` the subset must also hold the package's training scenes: the ``cpu`` preset builds (or
    reuses) exactly the shipped package's data, ``data/fg128`` (scripts/ship_3daae.sh step 1). The builder's
    deterministic subsets share their instances and splits, so those scenes are in it; the benchmark checks it.
    """
    # imported on use: keeps `latentscenes --help` fast
    from latentscenes.bench.pretrained import load_package
    from latentscenes.experiments.bench import pipeline_config
    from latentscenes.data.subsets import default_subset_dir, ensure_flightgear_subset

    res = pipeline_config(cfg, "cpu").data.resolution
    root = Path(cfg.build_dir) if cfg.build_dir else default_subset_dir(res)
    n_train = len(load_package(cfg.pretrained).train_scene_ids) if cfg.pretrained else cfg.n_train_scenes
    ensure_flightgear_subset(root, n_train, cfg.n_exploit_scenes, views=cfg.build_views,
                             test_views=cfg.build_test_views, resolution=cfg.build_resolution or res, seed=0,
                             log=console.print)
    return root


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        data: Optional[Path] = typer.Option(
            None, "--data", help="Multi-scene dataset root (with train / exploit scene splits). Default: build or "
            "reuse the preset's built-in FlightGear subset (cpu: data/fg128, the shipped 3Da-AE's data; others: "
            "data/flightgear-demo-<res>, shared with `latentscenes demo`)."),
        out: Path = typer.Option(Path("reports/bench"), "--out", help="Output folder for results.json, summary.md and the plots."),
        preset: Optional[str] = PRESET_OPT,
        config: Optional[Path] = CONFIG_OPT,
        set_: Optional[list[str]] = SET_OPT,
        device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda (overrides the preset)."),
        ae: Optional[str] = typer.Option(
            None, "--ae", help="Autoencoder of the latent methods: shipped, shipped-general, scratch, or a local path (SD-1.5 VAE folder)."
        ),
        resume: bool = typer.Option(
            False, "--resume", help="Continue an interrupted benchmark in --out (finished fits and stages are reused)."
        ),
        only: Optional[list[str]] = typer.Option(
            None, "--only", help="Run only this method's fits (repeatable: rgb, ours, plain-ae, ...) and stop before "
            "the tables: parts run side by side, one process per core, with the same --out and --resume; then the "
            "same command with --resume and no --only writes the tables."),
    ) -> None:
        """Benchmark ours vs Tri-Planes (RGB) on the same scenes, views and machine: Tables 1-2, Fig. 6-7.

        Presets: ``cpu`` (2-core CPU, about 1 h: the shipped pre-trained 3Da-AE), ``cpu-128`` (the same at 128 px with
        ``shipped-128``), ``cpu-own`` (2-core CPU, under
        60 minutes, 3Da-AEs trained in the benchmark), ``paper`` (paper sizes, for a GPU), ``test`` (seconds).

        In parts on a 2-core CPU (one thread each): ``--resume --only rgb --only ours`` and ``--resume --only
        plain-ae`` side by side into the same --out, then ``--resume`` alone for the tables.
        """
        with user_errors():
            # Before the dataset is built: a benchmark replaces its own earlier output, nobody else's.
            check_out_folder(out, "bench", replaces_own=True)
            overrides = list(set_ or [])
            if device is not None:
                overrides.append(f"device={device}")
            if resume and config is None and preset is None and (out / "config.json").is_file():
                config = out / "config.json"  # continue with exactly the interrupted run's settings
            cfg = resolve_config(BenchConfig, preset or (None if config else "cpu"), config, overrides)
            if ae is not None and cfg.pretrained:
                raise ConfigError(
                    f"--ae chooses the autoencoder of 3Da-AEs the benchmark trains; with pretrained={cfg.pretrained!r} "
                    "Ours is that package (its plain-AE ablation uses the package's base autoencoder): drop --ae, "
                    "or add --set pretrained=null (or --preset cpu-own) to train one"
                )
            if ae is not None:
                from latentscenes.autoencoder.model import AEConfig

                chosen = AEConfig.from_option(ae)
                extra = [f"ae.source={chosen.source}"] + ([f"ae.path={ae}"] if chosen.source == "path" else [])
                cfg = dataclasses.replace(cfg, pipeline_overrides=list(cfg.pipeline_overrides) + extra)
            if data is None:
                data = default_bench_data(cfg)
            elif not data.exists():
                raise FileNotFoundError(f"{data}: dataset folder not found")
            # imported on use: keeps `latentscenes --help` fast
            from latentscenes.experiments.bench import run_benchmark

            argv = ["latentscenes", "bench", "--data", str(data), "--out", str(out)]
            argv += ["--preset", preset] if preset else []
            argv += ["--config", str(config)] if config else []
            argv += [a for s in (set_ or []) for a in ("--set", s)]
            argv += ["--device", device] if device else []
            argv += ["--ae", ae] if ae else []
            argv += ["--resume"] if resume else []
            argv += [a for m in (only or []) for a in ("--only", m)]
            command = " ".join(shlex.quote(a) for a in argv)
            results = run_benchmark(cfg, data, out, command=command, resume=resume, only=only)
        if only:
            return
        console.print(f"[green]benchmark written to[/green] {out}/summary.md")
        t1 = results["table1"]
        console.print(
            f"t_scene_eff@{t1['ours']['time_ref']['n_exploit']}: ours {t1['ours']['time_ref']['t_scene_eff'] / 60:.3f} min"
            f" vs RGB {t1['rgb']['t_scene_s'] / 60:.3f} min; render ours {t1['ours']['render']['median_ms']:.1f} ms"
            f" vs RGB {t1['rgb']['render']['median_ms']:.1f} ms"
        )
