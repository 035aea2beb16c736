"""The demo's last phases, independent of how the models were trained: evaluate ours and the RGB baseline on
held-out views, render turntables, build the image grid and write the report folder.

Inputs are :class:`SceneModel` objects (see :mod:`latentscenes.evaluation.model`), ground-truth scenes and the
fitting figures measured by the caller (seconds and bytes per scene), so the same function serves the real
demo and the tests' fakes.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from latentscenes.data.types import SceneViews, check_scene_id
from latentscenes.evaluation.cameras import CameraDefaults
from latentscenes.evaluation.evaluate import evaluate_model, format_summary, subset_result, write_metrics_json
from latentscenes.evaluation.model import SceneModel
from latentscenes.evaluation.render import TurntableConfig, render_turntable
from latentscenes.evaluation.report import MethodRow, ReportContent, comparison_grid, write_report
from latentscenes.utils.io import atomic_write_text
from latentscenes.utils.phases import Phase
from latentscenes.utils.progress import console, progress_bar


@dataclass
class FitFigures:
    """What fitting cost, measured by the caller.

    Attributes:
        seconds_per_scene: wall seconds of the method's scene-fitting phases divided by the scenes fitted.
        bytes_per_scene: bytes of one scene's own parameters.
        note: remark for the table (e.g. "exploit fit + decoder fine-tune").
    """

    seconds_per_scene: float | None = None
    bytes_per_scene: int | None = None
    note: str = ""


@dataclass
class ReportPlan:
    """Which scenes go where.

    Attributes:
        train_ids: scenes 3Da-AE was trained on (Alg. 1). exploit_ids: scenes learned later (Alg. 2).
        rgb_ids: exploit scenes the RGB baseline was fitted on (a subset of ``exploit_ids``).
        grid_scenes / grid_views: rows of the image grid (first scenes of ``rgb_ids``, then ``exploit_ids``).
        turntable_scenes: how many exploit scenes get turntables (ours, and the baseline when it has them).
        turntable: turntable settings. max_views: held-out views per scene to evaluate (``None`` = all).
    """

    train_ids: list[str]
    exploit_ids: list[str]
    rgb_ids: list[str] = field(default_factory=list)
    grid_scenes: int = 4
    grid_views: int = 1
    turntable_scenes: int = 2
    turntable: TurntableConfig = field(default_factory=TurntableConfig)
    max_views: int | None = None


def _row(name: str, res: dict | None, group: str, fig: FitFigures | None, n: int) -> MethodRow:
    m = (res or {}).get("groups", {}).get(group, {}).get("mean", {}) if res else {}
    return MethodRow(
        name=name,
        n_scenes=n,
        psnr=m.get("psnr"),
        ssim=m.get("ssim"),
        seconds_per_scene=fig.seconds_per_scene if fig else None,
        bytes_per_scene=fig.bytes_per_scene if fig else None,
        render_ms=m.get("total_ms"),
        note=fig.note if fig else "",
    )


def evaluate_and_report(
    out_dir: str | Path,
    ours: SceneModel,
    rgb: SceneModel | None,
    scenes: dict[str, SceneViews],
    plan: ReportPlan,
    camera: CameraDefaults,
    ours_fit: FitFigures,
    rgb_fit: FitFigures | None,
    phase_seconds: dict[str, float],
    title: str = "latentscenes demo",
    summary: str = "",
    files: dict[str, str] | None = None,
    notes: list[str] | None = None,
    timer: Callable[[str], object] | None = None,
) -> dict:
    """Evaluate, render and write ``out_dir/report.md`` (+ grid.png, metrics_*.json, turntables/).

    Args:
        ours: the 3Da-AE model holding ``train_ids`` and ``exploit_ids``.
        rgb: the RGB baseline holding ``rgb_ids`` (``None``: no baseline column).
        scenes: ground truth for every id used.
        camera: turntable camera defaults (dataset distance / elevation / intrinsics).
        phase_seconds: wall seconds of the phases run before this call; this function adds its own
            (``evaluate``, ``render``, ``report``) to the same dict.
        timer: optional context-manager factory ``timer(phase_name)`` that records phase times into
            ``phase_seconds`` itself (the demo's ``PhaseClock``); without it each phase is measured here with
            :class:`latentscenes.utils.phases.Phase` and its wall seconds added to ``phase_seconds``.
    Returns:
        ``{"report": path, "metrics_ours": ..., "metrics_rgb": ..., "grid": ..., "turntables": [...],
        "ours": eval dict, "rgb": eval dict or None}``.
    Raises:
        DatasetError: a turntable scene id that is not one plain path component (it names a folder under
            ``out_dir/turntables``), before anything is written.
    """
    out_dir = Path(out_dir)
    for sid in plan.exploit_ids[: plan.turntable_scenes]:
        check_scene_id(sid, f"turntable of scene {sid!r} (under {out_dir / 'turntables'})")
    out_dir.mkdir(parents=True, exist_ok=True)
    image_hw = next(iter(scenes.values())).resolution

    @contextmanager
    def measured(name: str) -> Iterator[None]:
        with Phase(name) as ph:  # the one phase timer (utils/phases.py), also without a caller's
            yield
        phase_seconds[name] = phase_seconds.get(name, 0.0) + ph.record.wall_s

    phase = timer if timer is not None else measured

    with phase("evaluate"):
        groups = {"train": list(plan.train_ids), "exploit": list(plan.exploit_ids)}
        res_ours = evaluate_model(ours, scenes, groups, max_views=plan.max_views)
        p_ours = write_metrics_json(res_ours, out_dir / "metrics_ours.json")
        console.print(format_summary(res_ours))
        res_rgb = p_rgb = None
        if rgb is not None and plan.rgb_ids:
            res_rgb = evaluate_model(rgb, scenes, {"exploit": list(plan.rgb_ids)}, max_views=plan.max_views)
            p_rgb = write_metrics_json(res_rgb, out_dir / "metrics_rgb.json")
            console.print(format_summary(res_rgb))
            # ours restricted to the very scenes the baseline fitted: the like-for-like comparison
            res_ours_same = subset_result(res_ours, list(plan.rgb_ids), "exploit")
        else:
            res_ours_same = None

    turntables: list[tuple[str, str]] = []
    with phase("render"):
        tt_ids = list(plan.exploit_ids[: plan.turntable_scenes])
        jobs = [(sid, ours, out_dir / "turntables" / sid, "ours") for sid in tt_ids]
        jobs += [(sid, rgb, out_dir / "turntables" / sid / "rgb_baseline", "RGB")
                 for sid in tt_ids if rgb is not None and sid in rgb.scene_ids]
        jobs.sort(key=lambda j: tt_ids.index(j[0]))
        if jobs:
            with progress_bar("turntables", total=len(jobs)) as (prog, task):
                for sid, model, d, tag in jobs:
                    r = render_turntable(model, sid, camera, d, image_hw, plan.turntable)
                    turntables.append((f"{sid} ({tag})", r["turntable"]))
                    prog.update(task, advance=1, info=f"{sid} {tag}: {r['ms_per_frame']:.0f} ms/frame")
        grid_ids = [s for s in plan.rgb_ids if s in plan.exploit_ids][: plan.grid_scenes]
        grid_ids += [s for s in plan.exploit_ids if s not in grid_ids][: max(0, plan.grid_scenes - len(grid_ids))]
        grid, cols = comparison_grid([scenes[s] for s in grid_ids], ours, rgb, out_dir / "grid.png", plan.grid_views)

    with phase("report"):
        n_ex, n_tr = len(plan.exploit_ids), len(plan.train_ids)
        rows = [_row(ours.name, res_ours, "exploit", ours_fit, n_ex)]
        if res_ours_same is not None:
            rows.append(_row(f"{ours.name}, same scenes as RGB", res_ours_same, "exploit", ours_fit, len(plan.rgb_ids)))
        if rgb is not None:
            rows.append(_row(rgb.name, res_rgb, "exploit", rgb_fit, len(plan.rgb_ids)))
        ae_m = res_ours["groups"].get("exploit", {}).get("mean", {})
        rows.append(MethodRow("AE reconstruction (upper bound)", n_ex, ae_m.get("ae_psnr"), ae_m.get("ae_ssim"),
                              note="D(E(x)) of the ground truth"))
        extra = []
        if n_tr:
            tm = res_ours["groups"]["train"]["mean"]
            extra.append(("3Da-AE training scenes (held-out views)", [
                MethodRow(ours.name, n_tr, tm.get("psnr"), tm.get("ssim"), render_ms=tm.get("total_ms"),
                          note=f"latent PSNR {tm.get('latent_psnr', float('nan')):.2f} dB"),
                MethodRow("AE reconstruction (upper bound)", n_tr, tm.get("ae_psnr"), tm.get("ae_ssim")),
            ]))
        if "latent_psnr" in ae_m:
            rows[0].note = (rows[0].note + "; " if rows[0].note else "") + f"latent PSNR {ae_m['latent_psnr']:.2f} dB"
        all_files = {"metrics (ours)": str(p_ours)}
        if p_rgb is not None:
            all_files["metrics (RGB baseline)"] = str(p_rgb)
        all_files.update(files or {})
        caption = " | ".join(cols) + " (columns); one row per held-out view."
        content = ReportContent(
            title=title, summary=summary, rows=rows, extra_tables=extra, grid_png=str(grid), grid_caption=caption,
            turntables=turntables, phase_seconds={}, files=all_files, notes=list(notes or []),
        )
        timings_path = out_dir / "timings.json"
        all_files["phase timings"] = str(timings_path)
    # the report's own time is tiny; include everything measured so far in the table
    content.phase_seconds = dict(phase_seconds)
    atomic_write_text(timings_path, json.dumps(phase_seconds, indent=2) + "\n")
    report = write_report(out_dir, content)
    return {
        "report": str(report), "metrics_ours": str(p_ours), "metrics_rgb": str(p_rgb) if p_rgb else None,
        "grid": str(grid), "turntables": [p for _, p in turntables], "ours": res_ours, "rgb": res_rgb,
    }
