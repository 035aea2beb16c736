"""The step the benchmark and the demo share: run a method, then reload what it saved as scene models.

:func:`run_method` takes any registered :class:`~latentscenes.methods.Method` and its scene batches:
a latent method gets its 3Da-AE training run (trains it, or takes the one in ``MethodContext.training_runs``: a
pre-trained package, or Ours' run for Ours-No-Prior) and learns each batch in an exploit batch (Alg. 2); an RGB
method fits its batch with Tri-Planes (RGB). Each part runs inside the caller's ``phase`` (the bench's time and
memory accounting, the demo's clock). :func:`load_models` reloads the results from their files (what is evaluated
is what was saved) and :func:`evaluate_models` evaluates them on held-out views.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Sequence

import torch

from latentscenes.evaluation.curves import rgb_fit_evaluator
from latentscenes.evaluation.evaluate import evaluate_model
from latentscenes.evaluation.runs import latent_system_model, load_rgb_run
from latentscenes.methods import Method
from latentscenes.baselines.rgb import fit_format as rgb_format
from latentscenes.training import run_format as rf
from latentscenes.training.pipeline import exploit_3daae, exploit_config, load_exploited, train_3daae
from latentscenes.baselines.rgb.fit import fit_rgb_scenes
from latentscenes.utils.progress import console


@contextmanager
def no_phase(method: str, part: str) -> Iterator[dict]:
    """The default ``MethodContext.phase``: nothing measured."""
    yield {}


@dataclass
class Batch:
    """Scenes a method learns together: one exploit batch of a latent method, or an RGB method's fit.

    Attributes:
        tag: its part name (``phase(method, tag)``, ``MethodRun.results``); a latent batch's folder under the
            method's folder (an RGB fit is written into the method's folder itself).
        group: the evaluation group its scenes count in (``exploit``, ``train``; None: every group).
        config: the exploit batch's ``PipelineConfig`` (see :func:`exploit_base`) or the ``RGBFitConfig``.
        scenes: the scenes in memory, or a data set (RGB: with ``scene_ids``); None: the config's data from
            ``MethodContext.data_root`` (latent).
        scene_ids: RGB: which scenes of a data set to fit (None: all given).
        eval_fn: latent: the stages' evaluation callback (PSNR-vs-time curve; the stages exclude its time).
        eval_cpu: latent: where ``eval_fn`` adds up its CPU seconds; recorded as the part's ``eval_cpu_s``.
        log: RGB: the fit's log callback.
    """

    tag: str
    group: str | None
    config: Any
    scenes: Any = None
    scene_ids: Sequence[str] | None = None
    eval_fn: Callable | None = None
    eval_cpu: dict | None = None
    log: Callable[[str], None] | None = None


@dataclass
class MethodContext:
    """What the methods of one benchmark or demo run share.

    Attributes:
        pipeline: Ours' ``PipelineConfig``; a latent method trains with ``method.pipeline_config(pipeline)``.
        data_root: the dataset, for parts given no scenes in memory.
        train_scenes: the 3Da-AE training scenes in memory (None: the pipeline's data from ``data_root``).
        training_runs: 3Da-AE training runs (or pre-trained packages) by method name: the given ones (a
            pre-trained Ours is not trained) and each one :func:`run_method` trains (Ours-No-Prior exploits Ours').
        render_defaults: near / far / box of the dataset for the RGB fits (None: the data set's own).
        phase: ``phase(method, part)``: a context manager around each part (``train``, each batch's tag) that
            yields a dict of figures to record with it (``resumed``, ``eval_cpu_s``).
        resume: reuse the parts an earlier session finished in the same folders (``bench --resume``).
    """

    pipeline: Any
    data_root: str | Path | None = None
    train_scenes: Sequence[Any] | None = None
    training_runs: dict[str, str | Path] = field(default_factory=dict)
    render_defaults: dict | None = None
    phase: Callable[[str, str], ContextManager[dict]] = no_phase
    resume: bool = False


@dataclass
class MethodRun:
    """What :func:`run_method` ran: the training run used, each part's folder and results (``system`` removed)."""

    method: Method
    batches: list[Batch]
    training_run: str | Path | None
    folders: dict[str, Path]
    results: dict[str, dict]


def exploit_base(method: Method, pcfg: Any) -> Any:
    """A latent method's exploit config before any per-batch budget: its plane layout (and schedule) from Ours'
    ``pcfg``, with its ``exploit.no_prior`` and the strategy's fit weights (``training.pipeline.exploit_config``)."""
    return exploit_config(method.pipeline_config(pcfg), no_prior=method.no_prior)


def run_method(method: Method, ctx: MethodContext, folder: Path, batches: Sequence[Batch],
               train_config: Any | None = None) -> MethodRun:
    """Run ``method`` on its ``batches``, writing into ``folder``.

    Args:
        folder: the method's folder: ``train/`` (its 3Da-AE when trained here) and one folder per batch tag for a
            latent method; the RGB fit's own files for an RGB method.
        batches: a latent method's exploit batches; an RGB method's one fit.
        train_config: the training config instead of ``method.pipeline_config(ctx.pipeline)`` (the bench's
            plain-AE ablation of a pre-trained package repeats the package's warm-up).
    Raises:
        ValueError: a method that exploits another method's 3Da-AE before that one has run.
    """
    if method.kind == "rgb":
        (b,) = batches
        n = len(b.scene_ids) if b.scene_ids is not None else len(b.scenes)
        console.print(f"[bold]{method.name}[/bold]: fitting {n} scenes in RGB ({b.config.steps} steps of "
                      f"{b.config.rays_per_batch} rays)")
        res = finished_rgb_fit(folder, b.scenes) if ctx.resume else None
        with ctx.phase(method.name, b.tag) as extra:
            if res is None:
                # resumed: the scenes an interrupted session finished are kept (their records in folder/scenes/)
                res = fit_rgb_scenes(b.scenes, b.config, out_dir=folder, scene_ids=b.scene_ids,
                                     render_defaults=ctx.render_defaults, log=b.log, evaluate=rgb_fit_evaluator(),
                                     resume=ctx.resume)
            else:
                extra["resumed"] = True
        return MethodRun(method, list(batches), None, {b.tag: folder}, {b.tag: res})

    folders: dict[str, Path] = {}
    results: dict[str, dict] = {}
    run = ctx.training_runs.get(method.training)
    if run is None:
        if not method.trains:
            raise ValueError(f"{method.name} exploits the 3Da-AE of {method.training}: run {method.training} first")
        run = folder / "train"
        cfg = train_config if train_config is not None else method.pipeline_config(ctx.pipeline)
        n = f"{len(ctx.train_scenes)} " if ctx.train_scenes is not None else ""
        console.print(f"[bold]{method.name}[/bold]: 3Da-AE training on {n}scenes")
        with ctx.phase(method.name, "train") as extra:
            res = finished_run(run) if ctx.resume else None
            if res is None:
                res = train_3daae(cfg, run, data_root=_root(ctx, ctx.train_scenes), scenes=ctx.train_scenes,
                                  resume=ctx.resume and run.exists())
            else:
                extra["resumed"] = True
        res.pop("system", None)
        folders["train"], results["train"] = run, res
        ctx.training_runs[method.name] = run
    for b in batches:
        out = folder / b.tag
        n = f"{len(b.scenes)} " if b.scenes is not None else ""
        console.print(f"[bold]{method.name}[/bold]: exploiting {n}{b.tag} scenes "
                      f"(fit {_budget(b.config.exploit.fit)}, fine-tune {_budget(b.config.exploit.finetune)})")
        with ctx.phase(method.name, b.tag) as extra:
            res = finished_run(out) if ctx.resume else None
            if res is None:
                res = exploit_3daae(run, out, b.config, data_root=_root(ctx, b.scenes), scenes=b.scenes,
                                    eval_fn=b.eval_fn, resume=ctx.resume and out.exists())
            else:
                extra["resumed"] = True
            if b.eval_cpu is not None:
                extra["eval_cpu_s"] = b.eval_cpu.get("s", 0.0)
        res.pop("system", None)
        folders[b.tag], results[b.tag] = out, res
    return MethodRun(method, list(batches), run, folders, results)


def _budget(st: Any) -> str:
    """A stage's update budget as configured: passes over its views (``epochs``, which win) or a step count."""
    return f"{st.epochs:.3g} epochs" if st.epochs is not None else f"{st.steps} steps"


def _root(ctx: MethodContext, scenes: Any) -> str | Path | None:
    """The dataset to read a part's scenes from: none when they are given in memory."""
    return ctx.data_root if scenes is None else None


def load_models(run: MethodRun, device: torch.device | str) -> list[tuple[str | None, Any]]:
    """``(evaluation group, scene model)`` of each batch of ``run``, reloaded from the files it saved: an exploit
    batch with its own fine-tuned decoder, an RGB fit with its planes and MLPs."""
    if run.method.kind == "rgb":
        return [(b.group, load_rgb_run(run.folders[b.tag], device=device, name=run.method.name)) for b in run.batches]
    return [(b.group, latent_system_model(load_exploited(run.folders[b.tag], device), run.method.name))
            for b in run.batches]


def evaluate_models(models: Sequence[tuple[str | None, Any]], truth: dict, groups: dict[str, list[str]],
                    max_views: int | None) -> dict:
    """:func:`evaluate_model` of each ``(group, model)`` on the held-out views of that group's scenes (every group
    of ``groups`` for None), merged with :func:`combine_evaluations`."""
    evs = [evaluate_model(model, truth, dict(groups) if g is None else {g: groups[g]}, "test", max_views,
                          show_progress=False) for g, model in models]
    return combine_evaluations(evs)


def combine_evaluations(evs: Sequence[dict]) -> dict:
    """Merge :func:`evaluate_model` results over disjoint scene groups (e.g. one per exploit batch) into one:
    groups and scenes are united; ``overall`` is the mean over all scenes (each scene weighs the same)."""
    if len(evs) == 1:
        return evs[0]
    out = {k: v for k, v in evs[0].items() if k not in ("groups", "scenes", "overall", "eval_seconds")}
    out["groups"], out["scenes"] = {}, {}
    for ev in evs:
        out["groups"].update(ev["groups"])
        out["scenes"].update(ev["scenes"])
    out["eval_seconds"] = sum(ev.get("eval_seconds", 0.0) for ev in evs)
    rows = [s["mean"] for s in out["scenes"].values()]
    keys = sorted({k for r in rows for k in r})
    mean = {}
    for k in keys:
        vals = [r[k] for r in rows if k in r and r[k] is not None and math.isfinite(r[k])]
        if vals:
            mean[k] = sum(vals) / len(vals)
    out["overall"] = {"n_scenes": len(rows), "n_views": sum(s["n_views"] for s in out["scenes"].values()), "mean": mean}
    return out


def finished_run(folder: Path) -> dict | None:
    """The results of a 3Da-AE training or exploit folder finished in an earlier session (read from its
    manifest, without touching its files), or None when it is missing or unfinished."""
    m = rf.finished_manifest(folder)
    if m is None:
        return None
    r = rf.summary(m)  # keys in the order the benchmark's results.json has always had them
    return {"run_dir": str(folder), **{k: r[k] for k in ("scene_ids", "n_views", "latent_cache_s", "stages", "bytes",
                                                          "train_s")}, "resumed": True}


def finished_rgb_fit(fit_dir: Path, scenes: Sequence[Any]) -> dict | None:
    """The results of an RGB fit finished in an earlier session (same scenes), or None."""
    if not rgb_format.is_rgb_fit(fit_dir):
        return None
    res = rgb_format.read_results(fit_dir)
    if [r["scene_id"] for r in res.get("scenes", [])] != [s.scene_id for s in scenes]:
        return None
    return res
