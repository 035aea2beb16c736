"""``latentscenes view``: the local web viewer (docs/evaluation.md, "Viewer"), built on :mod:`latentscenes.api`."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

import typer

from latentscenes.cli.common import fail
from latentscenes.cli.evaluate import eval_errors
from latentscenes.utils.progress import console


def resolve_metrics(runs: list, given: list[Path]) -> tuple[list[dict], list[str | None]]:
    """Per run: ``{scene_id: PSNR}`` and the file read (``--metrics`` files in run order, else found beside it).

    Raises:
        MetricsError: a given file that is unreadable, of no known format, or naming none of its run's scenes.
        ViewerError: more ``--metrics`` files than runs.
    """
    # imported on use: keeps `latentscenes --help` fast
    from latentscenes.viewer.scenes import MetricsError, discover_metrics, read_psnr
    from latentscenes.viewer.server import ViewerError

    if len(given) > len(runs):
        raise ViewerError(f"{len(given)} --metrics files for {len(runs)} runs: give at most one per --run, in order")
    psnr: list[dict] = []
    files: list[str | None] = []
    for i, run in enumerate(runs):
        path = given[i] if i < len(given) else None
        if path is not None:
            vals = read_psnr(path, run.path, run.scenes)
            if not set(vals) & set(run.scenes):
                raise MetricsError(f"{path}: evaluates none of the scenes of {run.path} (it names e.g. "
                                   f"{sorted(vals)[:3]}, the run holds e.g. {run.scenes[:3]})")
        else:
            path = discover_metrics(run.path, run.is_latent)
            vals = {}
            if path is not None:
                try:
                    vals = read_psnr(path, run.path, run.scenes)
                except MetricsError:
                    vals = {}
            if not set(vals) & set(run.scenes):
                path, vals = None, {}
        psnr.append(vals)
        files.append(str(path) if path is not None else None)
    return psnr, files


#: Seconds Ctrl-C waits for the server and its threads to stop before the process exits regardless.
STOP_TIMEOUT_S = 10.0


def _stop_within(viewer, timeout: float) -> None:
    """Stop the viewer; if it, or a non-daemon thread of its server stack, is still running after ``timeout`` s,
    say which threads and end the process (exit code 0: the user asked it to stop).

    Why: a Ctrl-C that leaves the process alive is worse than one that skips a clean shutdown. The viewer writes
    nothing in the background (PNG / MP4 saves finish before their button returns), so nothing is lost. A
    safeguard: the hang seen in full test-suite runs (no exit within 60 s of SIGINT) was a SIGINT ignored from
    the start, fixed where the command installs its handler; no hanging shutdown has been observed.
    """
    stopper = threading.Thread(target=viewer.stop, name="viewer-stop", daemon=True)
    stopper.start()
    end = time.monotonic() + timeout
    stopper.join(timeout)
    for th in threading.enumerate():
        if th is not threading.current_thread() and not th.daemon:
            th.join(max(0.0, end - time.monotonic()))
    stuck = [th.name for th in threading.enumerate()
             if th is not threading.current_thread() and (th is stopper or not th.daemon) and th.is_alive()]
    if stuck:
        console.print(f"latentscenes viewer: did not stop within {timeout:.0f} s (threads {', '.join(stuck)}); "
                      "exiting anyway", markup=False, highlight=False, soft_wrap=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def register(app: typer.Typer) -> None:
    """Add the ``view`` command to the root app."""

    @app.command("view")
    def view_cmd(
        run: List[Path] = typer.Option(..., "--run", help="A 3Da-AE training run, an exploit batch or an RGB baseline "
                                       "folder; repeat to compare runs side by side (same scenes)."),
        metrics: Optional[List[Path]] = typer.Option(None, "--metrics", help="Evaluation JSON of each --run, in order "
                                                     "(latentscenes eval --out FILE; default: found beside the run)."),
        port: int = typer.Option(8080, "--port", help="Port to serve on (0: any free port)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on (0.0.0.0: reachable from other machines)."),
        scene: Optional[str] = typer.Option(None, "--scene", help="Scene to show first (default: the worst PSNR)."),
        size: Optional[int] = typer.Option(None, "--size", help="Height (px) of the still view (default: the run's image size)."),
        preview: Optional[int] = typer.Option(None, "--preview", help="Height (px) of the view while moving (default: automatic)."),
        out: Path = typer.Option(Path("viewer_out"), "--out", help="Folder for saved PNGs and MP4 turntables."),
        data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (ground-truth views, turntables; default: the run's)."),
        device: str = typer.Option("auto", "--device", help="auto (cuda when present), cpu or cuda."),
    ) -> None:
        """Web viewer: browse the scenes (worst held-out PSNR first), orbit a free camera, show RGB, latent channels,
        depth, opacity or the nearest ground-truth view with its error, two runs side by side; save PNG / MP4."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.api import load
        from latentscenes.utils.device import set_cpu_threads
        from latentscenes.viewer.scenes import MetricsError
        from latentscenes.viewer.server import Viewer, ViewerError, check_port

        viewer = None
        with eval_errors():
            try:
                set_cpu_threads()
                check_port(host, port)  # before loading anything: a taken port fails at once
                runs = [load(r, "all", device) for r in run]
                psnr, files = resolve_metrics(runs, list(metrics or []))
                viewer = Viewer(runs, psnr, files, host=host, port=port, out_dir=out, full_height=size,
                                preview_height=preview, scene=scene, data=data)
                url = viewer.start()
            except (ViewerError, MetricsError) as e:
                fail(e)
        # Ctrl-C must stop it even when the process was started with SIGINT ignored (a disposition inherited from
        # the parent, e.g. a background job of a non-interactive shell or a test harness): Python then installs no
        # KeyboardInterrupt handler of its own. Installed before the URL is printed: a Ctrl-C sent as soon as the
        # URL appears (a loaded machine, the test suite) would otherwise be ignored and the viewer never stop.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            console.print(f"latentscenes viewer: {url}  ({len(runs)} run(s), {len(runs[0].scenes)} scenes; Ctrl-C "
                          "stops it)", markup=False, highlight=False, soft_wrap=True)
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
        finally:
            _stop_within(viewer, STOP_TIMEOUT_S)
