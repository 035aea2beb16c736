"""The demo's report folder: a Markdown page with the comparison table, an image grid and turntables.

Every link in ``report.md`` is relative to the report folder, so the folder can be moved or zipped.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from latentscenes.data.types import SceneViews
from latentscenes.evaluation.evaluate import predict_views
from latentscenes.evaluation.images import image_grid, rgb_to_uint8, save_png
from latentscenes.evaluation.model import SceneModel
from latentscenes.utils.io import atomic_write_text


@dataclass
class MethodRow:
    """One line of the comparison table (``None`` = not measured, shown as "-").

    Attributes:
        name: method label.
        n_scenes: scenes the numbers average over.
        psnr: mean held-out PSNR, dB. ssim: mean held-out SSIM.
        seconds_per_scene: wall seconds of fitting per scene (the method's own fitting phases only).
        bytes_per_scene: bytes of per-scene parameters (float32 as stored).
        render_ms: mean milliseconds to render one held-out view at full resolution (incl. decoding).
        note: short remark shown in the last column.
    """

    name: str
    n_scenes: int
    psnr: float | None = None
    ssim: float | None = None
    seconds_per_scene: float | None = None
    bytes_per_scene: int | None = None
    render_ms: float | None = None
    note: str = ""


@dataclass
class ReportContent:
    """What :func:`write_report` puts on the page.

    Attributes:
        title: page title.
        summary: free Markdown paragraph under the title (machine, dataset, preset, ...).
        rows: the main comparison table.
        extra_tables: ``(heading, rows)`` for more tables (e.g. 3Da-AE training scenes).
        grid_png: path of the image grid (inside the report folder).
        grid_caption: text under the grid.
        turntables: ``(label, gif path)`` pairs (inside the report folder).
        phase_seconds: phase name -> wall seconds (the timing summary).
        files: label -> path of other outputs worth linking (metrics JSON, configs, runs).
        notes: extra Markdown lines at the end.
    """

    title: str
    summary: str = ""
    rows: list[MethodRow] = field(default_factory=list)
    extra_tables: list[tuple[str, list[MethodRow]]] = field(default_factory=list)
    grid_png: str | None = None
    grid_caption: str = ""
    turntables: list[tuple[str, str]] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _fmt(v: float | int | None, spec: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, spec)


def human_bytes(n: int | None) -> str:
    """``123456`` -> ``"120.6 KiB"`` (``"-"`` for ``None``)."""
    if n is None:
        return "-"
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if x < 1024 or unit == "GiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{x:.1f} GiB"


def method_table(rows: Sequence[MethodRow]) -> str:
    """Markdown table: method | scenes | PSNR | SSIM | time/scene | bytes/scene | render ms/view | note."""
    out = [
        "| method | scenes | PSNR (dB) | SSIM | fit time / scene (s) | bytes / scene | render ms / view | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.name} | {r.n_scenes} | {_fmt(r.psnr, '.2f')} | {_fmt(r.ssim, '.4f')} | "
            f"{_fmt(r.seconds_per_scene, '.1f')} | {human_bytes(r.bytes_per_scene)} | {_fmt(r.render_ms, '.1f')} | {r.note} |"
        )
    return "\n".join(out)


def _rel(path: str | Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes (links must survive moving the folder)."""
    return Path(os.path.relpath(Path(path).resolve(), root.resolve())).as_posix()


def write_report(out_dir: str | Path, content: ReportContent, name: str = "report.md") -> Path:
    """Write ``out_dir/name`` (Markdown) atomically. Paths in ``content`` are made relative to ``out_dir``.

    Raises:
        FileNotFoundError: if the grid or a turntable it links to does not exist.
    """
    out_dir = Path(out_dir)
    lines = [f"# {content.title}", ""]
    if content.summary:
        lines += [content.summary, ""]
    if content.rows:
        lines += ["## Held-out views", "", method_table(content.rows), ""]
    for heading, rows in content.extra_tables:
        lines += [f"## {heading}", "", method_table(rows), ""]
    if content.grid_png:
        if not Path(content.grid_png).is_file():
            raise FileNotFoundError(f"report: image grid {content.grid_png} does not exist")
        lines += ["## Image grid (held-out views)", "", f"![image grid]({_rel(content.grid_png, out_dir)})", ""]
        if content.grid_caption:
            lines += [content.grid_caption, ""]
    if content.turntables:
        lines += ["## Turntables (novel views)", ""]
        cells = []
        for label, gif in content.turntables:
            if not Path(gif).is_file():
                raise FileNotFoundError(f"report: turntable {gif} does not exist")
            cells.append((label, _rel(gif, out_dir)))
        lines += ["| " + " | ".join(lbl for lbl, _ in cells) + " |", "|" + "---|" * len(cells)]
        lines += ["| " + " | ".join(f"![{lbl}]({p})" for lbl, p in cells) + " |", ""]
    if content.phase_seconds:
        total = sum(content.phase_seconds.values())
        lines += ["## Phase timings (wall clock)", "", "| phase | seconds | share |", "|---|---:|---:|"]
        for k, v in content.phase_seconds.items():
            lines.append(f"| {k} | {v:.1f} | {100 * v / max(total, 1e-9):.0f}% |")
        lines += [f"| **total** | **{total:.1f}** ({total / 60:.1f} min) | 100% |", ""]
    if content.files:
        lines += ["## Files", ""]
        for label, p in content.files.items():
            lines.append(f"- {label}: [{_rel(p, out_dir)}]({_rel(p, out_dir)})")
        lines.append("")
    if content.notes:
        lines += ["## Notes", "", *content.notes, ""]
    lines.append(f"_Generated {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `latentscenes`._")
    path = out_dir / name
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _not_available(shape: tuple[int, ...]) -> np.ndarray:
    """A light-grey cell with a diagonal cross: "this method did not learn that scene" (never white, which
    would read as an empty prediction)."""
    h, w = shape[:2]
    cell = np.full((h, w, 3), 215, np.uint8)
    for i in range(min(h, w)):
        cell[int(i * h / min(h, w)), int(i * w / min(h, w))] = 150
        cell[int(i * h / min(h, w)), w - 1 - int(i * w / min(h, w))] = 150
    return cell


def comparison_grid(
    scenes: Sequence[SceneViews],
    ours: SceneModel,
    rgb: SceneModel | None,
    out_path: str | Path,
    views_per_scene: int = 2,
    split: str = "test",
) -> tuple[Path, list[str]]:
    """PNG grid on held-out views: ground truth | ours (decoded) | RGB Tri-Planes | AE reconstruction.

    One row per (scene, view): the first ``views_per_scene`` views of ``split`` of each scene. The RGB
    column is dropped when ``rgb`` is ``None``; a scene the RGB model does not hold shows a grey crossed cell.

    Returns:
        ``(path, column labels)``.
    Raises:
        ValueError: if no scene has a ``split`` view.
    """
    cols = ["ground truth", ours.name] + ([rgb.name] if rgb is not None else []) + ["AE reconstruction"]
    rows, labels = [], []
    for sc in scenes:
        idx = sc.view_indices(split)[:views_per_scene]
        if not idx:
            continue
        po = predict_views(ours, sc, idx)
        pr = predict_views(rgb, sc, idx) if rgb is not None and sc.scene_id in rgb.scene_ids else None
        for j, i in enumerate(idx):
            gt = rgb_to_uint8(sc.images[i], (0.0, 1.0))
            row = [gt, rgb_to_uint8(po.rgb[j])]
            if rgb is not None:
                row.append(rgb_to_uint8(pr.rgb[j]) if pr is not None else _not_available(gt.shape))
            row.append(rgb_to_uint8(po.ae_rgb[j]) if po.ae_rgb is not None else _not_available(gt.shape))
            rows.append(row)
            labels.append(f"{sc.scene_id[:18]} v{i}")
    if not rows:
        raise ValueError(f"comparison_grid: no {split!r} views in the given scenes")
    # upscale small images so the grid is readable (nearest, integer factor up to 128 px)
    h = rows[0][0].shape[0]
    f = max(1, 128 // h)
    if f > 1:
        rows = [[np.repeat(np.repeat(im, f, 0), f, 1) for im in r] for r in rows]
    grid = image_grid(rows, col_labels=cols, row_labels=labels)
    return save_png(grid, out_path), cols
