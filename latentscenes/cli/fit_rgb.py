"""``latentscenes fit-rgb``: fit the Tri-Planes (RGB) baseline (or Tri-Planes-Macro (RGB)) to N scenes.

Example (2-core CPU)::

    latentscenes fit-rgb --data data/flightgear-small --scenes 1 --out runs/rgb --preset tiny-cpu

Writes ``OUT/results.json`` (per-scene time, parameter bytes, held-out PSNR/SSIM, PSNR-vs-time curve, the
resolved config and the command) and ``OUT/config.json``; planes go to ``OUT/scenes/`` (safetensors).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from latentscenes.cli.common import CONFIG_OPT, PRESET_OPT, SET_OPT, user_errors
from latentscenes.config import resolve_config, save_config
from latentscenes.utils.folders import check_out_folder, mark_folder
from latentscenes.utils.progress import console


def register(app: typer.Typer) -> None:
    @app.command("fit-rgb")
    def fit_rgb(
        data: Path = typer.Option(..., "--data", help="Dataset root (multi-scene folder) or one scene folder."),
        out: Path = typer.Option(..., "--out", help="Output folder (results.json, config.json, scenes/)."),
        scenes: Optional[int] = typer.Option(None, "--scenes", help="Fit the first N scenes (default: all)."),
        split: Optional[str] = typer.Option(None, "--split", help="Only scenes of this dataset split (train/exploit)."),
        preset: Optional[str] = PRESET_OPT,
        config: Optional[Path] = CONFIG_OPT,
        set_: Optional[list[str]] = SET_OPT,
        resume: bool = typer.Option(False, "--resume", help="Continue an interrupted fit in OUT: the scenes it "
                                    "finished are kept, the others fitted (same settings: OUT/config.json)."),
    ) -> None:
        """Fit RGB tri-planes in image space with random ray batches; report time, bytes and held-out PSNR/SSIM.

        Presets: ``tiny-cpu`` (T=64, F=32, 64x64 images, 24+24 samples), ``paper`` (T=64, F=32, 128x128, 48+48;
        GPU), ``test`` (seconds). ``--set variant=macro`` fits Tri-Planes-Macro (RGB) (shared global planes only).
        Each scene is written when it is done; ``--resume`` fits only the scenes an interrupted run had not finished
        (``micro`` fits; a ``macro`` fit starts again).
        """
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.baselines.rgb.fit import RGBFitConfig, fit_rgb_scenes
        from latentscenes.baselines.rgb.fit_format import write_results
        from latentscenes.data import MultiSceneDataset, load_scene
        from latentscenes.data.bounds import derive_bounds, describe
        from latentscenes.data.loaders import detect_layout
        from latentscenes.data.types import DatasetError
        from latentscenes.evaluation.curves import rgb_fit_evaluator
        from latentscenes.utils.device import pick_device

        with user_errors():
            saved = out / "config.json"
            if resume and saved.is_file() and not (preset or config):
                # the saved config is the fit's own; --set may repeat it but not change it (checked below)
                cfg = resolve_config(RGBFitConfig, None, saved, list(set_ or []))
            else:
                cfg = resolve_config(RGBFitConfig, preset or (None if config else "tiny-cpu"), config, list(set_ or []))
            cfg.validate()
            if not data.exists():
                raise FileNotFoundError(f"{data}: dataset folder not found")
            bounds = None
            try:
                dataset = MultiSceneDataset(data, resolution=cfg.resolution)
                ids = list(dataset.split_scene_ids(split) if split else dataset.scene_ids)
                source = dataset
            except DatasetError as multi:
                if split:
                    raise
                try:
                    detect_layout(data)
                except DatasetError:
                    raise multi from None  # neither a dataset nor a scene: the dataset's error says why
                # not a multi-scene root: a single scene folder, which states no ray bounds
                scene = load_scene(data, resolution=cfg.resolution)
                ids, source = [scene.scene_id], [scene]
                if cfg.use_dataset_render:
                    bounds = derive_bounds(source, cfg.render.box_size)
                    console.print(describe(bounds))
            if scenes is not None:
                ids = ids[:scenes]
            # Checked before anything is written: a refused start must leave no folder behind. A folder holding
            # any output (its own earlier fit included) is refused, not overwritten, unless --resume continues it.
            check_out_folder(out, "fit-rgb", resume=resume, resumable=True)
            if resume and saved.is_file():
                _check_same_config(cfg, saved)
            pick_device(cfg.device)
            mark_folder(out, "fit-rgb")
            save_config(cfg, out / "config.json")
            results = fit_rgb_scenes(source, cfg, out, scene_ids=ids, render_defaults=bounds,
                                     log=lambda s: console.print(s), evaluate=rgb_fit_evaluator(), resume=resume)
            results["command"] = "latentscenes " + " ".join(shlex.quote(a) for a in sys.argv[1:])
            if isinstance(source, MultiSceneDataset):
                results["data_root"] = str(data)  # `latentscenes eval --run OUT` finds the ground truth without --data
            write_results(out, results)
        s = results["summary"]
        msg = (
            f"{s['n_scenes']} scene(s): held-out PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.3f},"
            f" {s['time_s_per_scene']:.1f} s and {s['param_bytes_per_scene'] / 1e6:.3f} MB per scene"
        )
        if "render_ms_per_view_128" in s:
            msg += f", render {s['render_ms_per_view_128']:.1f} ms per 128x128 view"
        console.print(f"[green]{msg}[/green] -> {out}/results.json")


def _check_same_config(cfg, saved: Path) -> None:
    """Refuse a resumed fit whose settings differ from the interrupted one's (its scenes would mix two recipes);
    ``device`` is runtime only (as for ``train --resume``)."""
    import json

    from latentscenes.config import ConfigError, flat_dict, load_config, to_dict

    old, new = (flat_dict(json.loads(json.dumps(to_dict(c)))) for c in (load_config(type(cfg), saved), cfg))
    diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k != "device")
    if diff:
        raise ConfigError(f"{saved}: the fit being resumed used other settings ({', '.join(diff)} differ); resume "
                          "with the same --preset/--config/--set, or choose another --out")
