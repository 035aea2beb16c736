"""``latentscenes eval`` (held-out metrics to JSON), ``latentscenes render`` (novel views and turntables) and
``latentscenes demo`` (the main job: data -> 3Da-AE -> exploit -> RGB baseline -> report).

docs/evaluation.md describes the protocol, the outputs and the demo's phases.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer

from latentscenes.cli.common import SET_OPT, check_out_file, fail, user_errors
from latentscenes.config import apply_overrides, resolve_config, to_dict
from latentscenes.utils.io import atomic_write_text
from latentscenes.utils.progress import console


@contextmanager
def eval_errors() -> Iterator[None]:
    """Input errors (bad run folder, missing data or weights, bad options) -> one line and exit code 2."""
    with user_errors():
        try:
            yield
        except Exception as e:
            # imported on use: keeps `latentscenes --help` fast
            from latentscenes.autoencoder.model import AutoencoderError
            from latentscenes.training.losses import NonFiniteLossError
            from latentscenes.training.pipeline import RunError

            if isinstance(e, (AutoencoderError, RunError, NonFiniteLossError, KeyError)) or (
                isinstance(e, ValueError) and type(e) is ValueError
            ):
                msg = e.args[0] if isinstance(e, KeyError) and e.args else e
                fail(msg)
            raise


OFFSET_ENSEMBLE_OPT = typer.Option(
    None, "--offset-ensemble",
    help="Latent runs: decode each view rendered at G x G sub-latent-pixel offsets, averaged (1, 2, 4, 8; "
         "default: the run's render.offset_ensemble).")


def register(app: typer.Typer) -> None:
    """Add the ``eval``, ``render`` and ``demo`` commands to the root app."""

    @app.command("eval")
    def eval_cmd(
        run: Path = typer.Option(..., "--run", help="A 3Da-AE training run, an exploit batch, or an RGB baseline folder."),
        scenes: str = typer.Option("all", "--scenes", help="train | exploit | all (exploit batches also load their training run; an RGB folder's scenes in that split of the dataset)."),
        out: Path = typer.Option(Path("metrics.json"), "--out", help="JSON file to write."),
        split: str = typer.Option("test", "--split", help="Views to evaluate: test (held-out, default) or train."),
        max_views: Optional[int] = typer.Option(None, "--max-views", help="At most N views per scene (default: all)."),
        data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (default: the one the run records)."),
        device: str = typer.Option("auto", "--device", help="auto (cuda when present), cpu or cuda."),
        offset_ensemble: Optional[int] = OFFSET_ENSEMBLE_OPT,
    ) -> None:
        """Evaluate learned scenes on held-out views: RGB PSNR/SSIM, latent PSNR/SSIM, AE upper bound, render ms."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.api import load
        from latentscenes.evaluation.evaluate import format_summary, write_metrics_json
        from latentscenes.utils.device import set_cpu_threads

        with eval_errors():
            set_cpu_threads()
            check_out_file(out)
            res = load(run, scenes, device, offset_ensemble=offset_ensemble, data=data).evaluate(
                data=data, split=split, max_views=max_views, progress=True)
            write_metrics_json(res, out)
            console.print(format_summary(res))
            console.print(f"wrote {out}")

    @app.command("probe")
    def probe_cmd(
        data: Path = typer.Option(..., "--data", help="Dataset folder; its scenes need held-out (test) views."),
        out: Path = typer.Option(Path("probe.json"), "--out", help="JSON file to write."),
        ae: Optional[str] = typer.Option(None, "--ae", help="Autoencoder to probe: shipped, shipped-general, scratch or a path (default: the preset's)."),
        run: Optional[Path] = typer.Option(None, "--run", help="Probe the trained 3Da-AE of this training run instead of --ae."),
        split: str = typer.Option("exploit", "--scenes", help="Dataset split whose scenes are fitted (exploit or train)."),
        n_scenes: int = typer.Option(8, "--n-scenes", help="First N scenes of the split."),
        view_updates: int = typer.Option(600, "--view-updates", help="View-updates per scene of the probe fit."),
        preset: Optional[str] = typer.Option(None, "--preset", help="Pipeline preset for tri-plane/renderer sizes (default: tiny-cpu, or the run's config)."),
        set_: Optional[List[str]] = SET_OPT,
        device: str = typer.Option("auto", "--device", help="auto (cuda when present), cpu or cuda."),
    ) -> None:
        """Latent consistency probe (docs/fidelity.md): fit latent tri-planes on ALL views of each scene with a
        frozen autoencoder and report decoded PSNR on the held-out views next to the autoencoder's own."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.autoencoder.model import AEConfig, load_autoencoder
        from latentscenes.evaluation.probe import ProbeConfig, consistency_probe
        from latentscenes.training.config import PipelineConfig
        from latentscenes.training.pipeline import (
            apply_render_defaults, load_run_autoencoder, load_run_config, load_scenes,
        )
        from latentscenes.utils.device import pick_device, set_cpu_threads

        with eval_errors():
            set_cpu_threads()
            check_out_file(out)
            if n_scenes < 2 or view_updates < 1:
                raise ValueError("--n-scenes must be >= 2 and --view-updates >= 1")
            dev = pick_device(device)
            if run is not None:
                if ae:
                    raise ValueError("give --run or --ae, not both")
                cfg = apply_overrides(load_run_config(run), set_)
                autoenc = load_run_autoencoder(run, dev)
                autoenc.apply_runtime(cfg.ae)  # the probe's latent grid and precision (--set ae.upscale / ae.amp)
                what = f"run {run}"
            else:
                cfg = resolve_config(PipelineConfig, preset or "tiny-cpu", None, set_)
                if ae:
                    cfg.ae = AEConfig.from_option(ae, cfg.ae)
                autoenc = load_autoencoder(cfg.ae, dev)
                what = f"autoencoder {ae or cfg.ae.source}"
            scenes, defaults = load_scenes(cfg, split, n_scenes, data)
            cfg = apply_render_defaults(cfg, defaults)
            res = consistency_probe(autoenc, scenes, cfg, ProbeConfig(view_updates_per_scene=view_updates),
                                    progress=cfg.logging.progress)
            res.update({"probed": what, "data": str(data), "split": split, "resolution": cfg.data.resolution,
                        "config": to_dict(cfg), "probe_config": {"view_updates_per_scene": view_updates}})
            atomic_write_text(out, json.dumps(res, indent=1, default=float) + "\n")
            s = res["summary"]
            console.print(
                f"probe of {what} on {len(scenes)} {split} scenes ({res['steps']} steps, {res['fit_s']:.0f} s): "
                f"held-out PSNR {s['probe_psnr']:.2f} dB (latent {s['probe_latent_psnr']:.2f}), autoencoder "
                f"{s['ae_psnr']:.2f} dB, consistency gap {s['consistency_gap_db']:.2f} dB"
            )
            console.print(f"wrote {out}")

    @app.command("render")
    def render_cmd(
        run: Path = typer.Option(..., "--run", help="A 3Da-AE training run, an exploit batch, or an RGB baseline folder."),
        scene: Optional[List[str]] = typer.Option(None, "--scene", help="Scene id to render (repeatable: --scene a --scene b)."),
        all_scenes: bool = typer.Option(False, "--all", help="Render every scene of the run."),
        n_scenes: Optional[int] = typer.Option(None, "--n-scenes", help="Render the run's first N scenes."),
        out: Path = typer.Option(..., "--out", help="Folder for the turntables and view PNGs (one sub-folder per scene "
                                 "unless a single --scene is given)."),
        fmt: str = typer.Option("gif", "--format", help="Turntable animation: gif, mp4 or both."),
        frames: int = typer.Option(24, "--frames", help="Frames over one turn."),
        fps: float = typer.Option(8.0, "--fps", help="Frame rate of the GIF / MP4."),
        views: int = typer.Option(4, "--views", help="Frames also saved as PNG novel views."),
        elevation: Optional[float] = typer.Option(None, "--elevation", help="Degrees above the ground plane (default: the dataset's)."),
        radius: Optional[float] = typer.Option(None, "--radius", help="Camera distance (default: the dataset's)."),
        size: Optional[int] = typer.Option(None, "--size", help="Output image side in px (default: the run's image size)."),
        data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (default: the one the run records)."),
        device: str = typer.Option("auto", "--device", help="auto (cuda when present), cpu or cuda."),
        offset_ensemble: Optional[int] = OFFSET_ENSEMBLE_OPT,
    ) -> None:
        """Novel views and turntables (GIF and/or MP4) of learned scenes, decoded to RGB, plus latent channels and
        depth. One --scene writes into --out; several scenes (--scene ..., --all, --n-scenes N) write --out/<scene>/."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.api import load
        from latentscenes.evaluation.render import turntable_formats
        from latentscenes.utils.device import set_cpu_threads

        with eval_errors():
            set_cpu_threads()
            asked = list(dict.fromkeys(scene or []))
            if sum([bool(asked), all_scenes, n_scenes is not None]) != 1:
                raise ValueError("choose the scenes to render: --scene ID (repeatable), --all or --n-scenes N")
            if n_scenes is not None and n_scenes < 1:
                raise ValueError(f"--n-scenes must be >= 1, got {n_scenes}")
            formats = turntable_formats(fmt)
            r = load(run, "all", device, offset_ensemble=offset_ensemble)
            ids = asked or (r.scenes if all_scenes else r.scenes[:n_scenes])
            r.check_scenes(ids)  # every id before any rendering: a typo fails at once
            one_folder = len(asked) == 1
            for s in ids:
                res = r.turntable(s, out if one_folder else out / s, frames=frames, fps=fps, views=views,
                                  elevation=elevation, radius=radius, size=size, format=formats, data=data)
                files = ", ".join(a["turntable"] for a in res["animations"].values())
                console.print(f"{s}: {frames} frames at radius {res['radius']:.2f}, elevation {res['elevation_deg']:.1f} deg "
                              f"({res['camera_source']}), {res['ms_per_frame']:.1f} ms/frame -> {files}")

    @app.command("demo")
    def demo_cmd(
        preset: str = typer.Option("tiny-cpu", "--preset", help="tiny-cpu (2-core CPU, 64 px, < 30 min), cpu-128 (2-core CPU, the paper's 128 px geometry, ~45 min at one thread), test (seconds) or paper (GPU)."),
        data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder to reuse (with manifest.json) or to build into "
                                            "(default data/flightgear-demo-<res>)."),
        out: Path = typer.Option(Path("reports/demo"), "--out", help="Report folder."),
        set_: Optional[List[str]] = SET_OPT,
    ) -> None:
        """The main job: build/reuse FlightGear data, train 3Da-AE, exploit new scenes, fit RGB Tri-Planes,
        evaluate, render turntables and write a Markdown report (docs/evaluation.md)."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.experiments.demo import run_demo

        with eval_errors():
            run_demo(preset=preset, data=data, out=out, overrides=list(set_ or []))

