"""The viewer's scene browser data: held-out PSNR per scene from evaluation files, and the filtered, sorted list.

Evaluation files read (:func:`read_psnr`):
  * ``latentscenes eval --out FILE`` and the demo's ``metrics_ours.json`` / ``metrics_rgb.json``: a JSON object
    whose ``scenes[id]["mean"]["psnr"]`` is the scene's mean PSNR (dB) over its held-out views;
  * a benchmark's ``results.json`` (``latentscenes bench``): ``evaluations[method]`` holds one such object per
    method; the method is the one whose name is a folder of the run's path (``OUT/runs/<method>/...``), else the
    only method that evaluated scenes of the run.

Where they are found without ``--metrics`` (:func:`discover_metrics`): ``RUN/metrics.json``; a demo's
``OUT/metrics_ours.json`` for ``OUT/runs/exploit`` (3Da-AE) and ``OUT/metrics_rgb.json`` for ``OUT/runs/rgb``; a
benchmark's ``OUT/results.json`` for ``OUT/runs/<method>[/<stage>]``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

__all__ = ["MetricsError", "SceneRow", "read_psnr", "discover_metrics", "scene_rows", "filter_rows", "row_label"]


class MetricsError(ValueError):
    """An evaluation file that cannot be read, has no per-scene PSNR, or does not fit the run."""


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MetricsError(f"{path}: no such metrics file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MetricsError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(data, dict):
        raise MetricsError(f"{path}: not an evaluation file (a JSON object with 'scenes' or 'evaluations')")
    return data


def _scene_psnr(ev: Mapping, path: Path) -> dict[str, float]:
    scenes = ev.get("scenes")
    if not isinstance(scenes, Mapping):
        raise MetricsError(f"{path}: no per-scene results ('scenes')")
    out: dict[str, float] = {}
    for sid, rec in scenes.items():
        mean = rec.get("mean") if isinstance(rec, Mapping) else None
        v = mean.get("psnr") if isinstance(mean, Mapping) else None
        if isinstance(v, (int, float)) and math.isfinite(float(v)):
            out[str(sid)] = float(v)
    return out


def read_psnr(path: str | Path, run_path: str | Path | None = None,
              run_scenes: Iterable[str] | None = None) -> dict[str, float]:
    """Mean held-out PSNR (dB) per scene id from an evaluation file (see the module docstring).

    Args:
        path: an evaluation JSON or a benchmark ``results.json``.
        run_path: the run the file is for (chooses the benchmark method by folder name).
        run_scenes: the run's scene ids: a benchmark method is chosen among those that evaluated some of them.
    Returns:
        ``{scene_id: psnr}`` (finite values only; may hold ids the run does not hold).
    Raises:
        MetricsError: unreadable file, neither format, or a benchmark file whose method is ambiguous.
    """
    path = Path(path)
    data = _load_json(path)
    if "scenes" in data:
        return _scene_psnr(data, path)
    evs = data.get("evaluations")
    if not isinstance(evs, Mapping) or not evs:
        raise MetricsError(f"{path}: not an evaluation file (no 'scenes' or 'evaluations')")
    parts = set(Path(run_path).resolve().parts) if run_path is not None else set()
    named = [m for m in evs if m in parts]
    if len(named) == 1:
        return _scene_psnr(evs[named[0]], path)
    held = set(run_scenes or [])
    fits = [m for m in evs if held and held & set((evs[m] or {}).get("scenes", {}) or {})]
    if len(fits) == 1:
        return _scene_psnr(evs[fits[0]], path)
    raise MetricsError(f"{path}: a benchmark file with the evaluations of {len(evs)} methods ({', '.join(evs)}); "
                       "view a run under its runs/<method>/ folder, or pass a single evaluation "
                       "(latentscenes eval --out FILE)")


def discover_metrics(run_path: str | Path, latent: bool) -> Path | None:
    """The evaluation file kept next to a run by ``eval``, the demo or the benchmark, or ``None``.

    Args:
        run_path: the run folder.
        latent: whether the run is a 3Da-AE run (the demo's ``metrics_ours.json``) or RGB (``metrics_rgb.json``).
    """
    run = Path(run_path).resolve()
    if (run / "metrics.json").is_file():
        return run / "metrics.json"
    for up in (run.parent, run.parent.parent):
        if up.name != "runs":
            continue
        out = up.parent
        demo = out / ("metrics_ours.json" if latent else "metrics_rgb.json")
        if up == run.parent and demo.is_file():
            return demo
        if (out / "results.json").is_file():
            return out / "results.json"
    return None


@dataclass(frozen=True)
class SceneRow:
    """One scene of the browser: its id and held-out PSNR (dB) in each run shown (``None``: not evaluated)."""

    scene_id: str
    psnr: tuple[float | None, ...]


def scene_rows(scene_ids: Sequence[str], psnr: Sequence[Mapping[str, float]]) -> list[SceneRow]:
    """Rows sorted worst first: by the first run's PSNR ascending; scenes without one last, in run order."""
    rows = [SceneRow(s, tuple(p.get(s) for p in psnr)) for s in scene_ids]
    order = {s: i for i, s in enumerate(scene_ids)}
    first = [r.psnr[0] if r.psnr else None for r in rows]
    return [r for r, _ in sorted(zip(rows, first), key=lambda t: (t[1] is None, t[1] if t[1] is not None else 0.0,
                                                                   order[t[0].scene_id]))]


def filter_rows(rows: Sequence[SceneRow], query: str) -> list[SceneRow]:
    """Rows whose id contains every whitespace-separated word of ``query`` (case-insensitive), order kept."""
    words = query.lower().split()
    return [r for r in rows if all(w in r.scene_id.lower() for w in words)]


def row_label(row: SceneRow) -> str:
    """Dropdown text of a row: ``"ex03 · 21.40 dB"``, ``"ex03 · 21.40 | 24.10 dB"`` with two runs, or the id."""
    vals = ["-" if v is None else f"{v:.2f}" for v in row.psnr]
    if not row.psnr or all(v is None for v in row.psnr):
        return row.scene_id
    return f"{row.scene_id} · {' | '.join(vals)} dB"
