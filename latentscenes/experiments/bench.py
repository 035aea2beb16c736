"""The benchmark run: every method on the same scenes, views and machine, then Tables 1-2 and Fig. 6-7.

Order of work (docs/benchmark.md gives the protocol):
  1. load the train / exploit scenes once, at the pipeline's image size (all methods see the same images);
  2.-4. every method of the registry (:mod:`latentscenes.methods`, in ``RUN_ORDER``), each through the
     shared step :func:`latentscenes.experiments.step.run_method` inside this benchmark's phases
     (:class:`~latentscenes.utils.phases.PhaseLog`), on what :func:`bench_batches` gives it: Tri-Planes (RGB) and
     Tri-Planes-Macro (RGB) on the baseline's scenes (``fit_rgb_scenes``); Ours: 3Da-AE training
     (``train_3daae``), exploitation of the exploit scenes with PSNR-vs-time evaluations (``exploit_3daae`` + an
     evaluation callback whose time the stages exclude), exploitation of re-learned train scenes; then the
     ablations (Micro, Macro, No-Prior, plain AE); each reloaded from its files and evaluated on the held-out
     views (``load_models``, ``evaluate_models``: :func:`latentscenes.evaluation.evaluate_model`);
  5. the fidelity diagnosis, render latency at 128x128 (no autograd) for ours and Tri-Planes (RGB) on the same
     views, bytes read back from the saved safetensors files, Eq. 8-11 (:mod:`latentscenes.bench.measure`,
     :mod:`latentscenes.bench.accounting`);
  6. Tables 1-2, time to quality, Fig. 7 (:mod:`latentscenes.bench.tables`), results.json and the report.

With ``cfg.pretrained`` (a pre-trained 3Da-AE, e.g. the shipped one; docs/benchmark.md) step 3 trains no 3Da-AE for
Ours: its run folder is the package, Table 1 charges the entry cost its manifest records
(:mod:`latentscenes.bench.pretrained`), the plain-AE ablation repeats the package's warm-up on the package's
training scenes, and Ours-Micro / Ours-Macro are not run (the results say so).

The times entering Table 1 are the stages' own optimisation clocks (``StageResult.train_s``, and the RGB fit's
per-scene clock): evaluation callbacks and checkpoint writes are excluded on both sides; the encoding of the
Encode-Scene targets (``latent_cache_s``) is included, because only our method pays for it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from latentscenes.autoencoder.model import AutoencoderError, load_autoencoder
from latentscenes.baselines.rgb.fit import RGBFitConfig
from latentscenes.bench.config import ALL_METHODS, BenchConfig
from latentscenes.utils.phases import PhaseLog
from latentscenes.bench.measure import fidelity_diagnosis, measure_costs
from latentscenes.bench.pretrained import BenchPackage, load_package, package_entry_cost, warmup_recipe
from latentscenes.bench.report import write_report
from latentscenes.bench.tables import build_fig7, build_table2, build_time_to_quality
from latentscenes.config import ConfigError, apply_overrides, get_preset, save_config, to_dict
from latentscenes.data import MultiSceneDataset
from latentscenes.data.types import DatasetError, SceneViews
from latentscenes.evaluation.curves import latent_curve_eval
from latentscenes.methods import RUN_ORDER, get_method
from latentscenes.experiments.step import (
    Batch,
    MethodContext,
    combine_evaluations,  # noqa: F401  (re-exported: it lived here; tests and callers import it from here)
    evaluate_models,
    exploit_base,
    load_models,
    run_method,
)
from latentscenes.training import run_format as rf
from latentscenes.training.config import PipelineConfig, fit_for_min_steps
from latentscenes.training.pipeline import apply_render_defaults
from latentscenes.utils.device import pick_device, seed_everything, set_cpu_threads
from latentscenes.utils.folders import check_out_folder, mark_folder
from latentscenes.utils.io import atomic_write_text
from latentscenes.utils.machine import machine_info
from latentscenes.utils.progress import console

#: The latent / RGB methods in the order the benchmark runs them (:data:`latentscenes.methods.RUN_ORDER`).
LATENT_METHODS = tuple(m for m in RUN_ORDER if get_method(m).kind == "latent")
RGB_METHODS = tuple(m for m in RUN_ORDER if get_method(m).kind == "rgb")


# ============================================================================================ configs
#: ``pipeline_overrides`` refused with a pre-trained 3Da-AE: they describe a training the benchmark does not run
#: (the package's autoencoder, warm-up and joint stage are fixed; the plain-AE ablation repeats its warm-up).
PACKAGE_FIXED_KEYS = ("ae.", "warmup.", "joint.")
#: ... except these, which an exploit batch chooses for itself (the same weights on a finer latent grid; the
#: plain-AE ablation's warm-up and the fidelity diagnosis then run on that grid too).
PACKAGE_FREE_KEYS = ("ae.upscale",)


def pipeline_config(cfg: BenchConfig, device: torch.device | str, package: BenchPackage | None = None):
    """The :class:`PipelineConfig` of "Ours" for this benchmark (preset + overrides + the bench's settings).

    With ``cfg.pretrained``: the package's saved config (its sizes match its weights; its data settings, e.g.
    ``data.shift_grid``, and exploit recipe are kept) + ``cfg.pipeline_overrides`` + the bench's settings, at
    the package's image size. Checkpoints are written only at the end of each stage (``checkpoint_every = 0``):
    the RGB baseline writes none while fitting, and the times used exclude checkpoint writes anyway.

    Args:
        package: the already-read package of ``cfg.pretrained`` (read here when None).
    Raises:
        ConfigError: with a package, ``cfg.resolution`` (or an override) differs from the package's image size,
            or an override of ``ae.*`` (but ``ae.upscale``) / ``warmup.*`` / ``joint.*``.
    """
    if cfg.pretrained:
        pkg = package or load_package(cfg.pretrained)
        keys = [(ov, ov.split("=", 1)[0].strip()) for ov in cfg.pipeline_overrides]
        fixed = [ov for ov, k in keys if k.startswith(PACKAGE_FIXED_KEYS) and k not in PACKAGE_FREE_KEYS]
        if fixed:
            raise ConfigError(
                f"pipeline_overrides {fixed} cannot apply with pretrained={cfg.pretrained!r}: the package fixes the "
                "autoencoder, the warm-up and the joint stage (set pretrained=null to train a 3Da-AE in the benchmark)"
            )
        p = apply_overrides(dataclasses.replace(pkg.config), cfg.pipeline_overrides)
        size = pkg.image_size
        for what, res in (("the benchmark's resolution", cfg.resolution), ("pipeline_overrides' data.resolution", p.data.resolution)):
            if res is not None and int(res) != size:
                raise ConfigError(
                    f"{what} is {res} px but the pre-trained 3Da-AE {cfg.pretrained!r} ({pkg.path}) was trained on "
                    f"{size} px images; set resolution={size} (or null)"
                )
        data = dataclasses.replace(
            p.data, path=None, resolution=size, n_train_scenes=len(pkg.train_scene_ids), n_exploit_scenes=None,
            max_views=None,
        )
    else:
        p = apply_overrides(get_preset(PipelineConfig, cfg.pipeline_preset), cfg.pipeline_overrides)
        data = dataclasses.replace(
            p.data,
            resolution=cfg.resolution if cfg.resolution is not None else p.data.resolution,
            n_train_scenes=cfg.n_train_scenes,
            n_exploit_scenes=None,
            max_views=None,  # the benchmark selects the train views itself (same views for every method)
        )
    stages = {k: dataclasses.replace(getattr(p, k), checkpoint_every=0, eval_every=0) for k in ("warmup", "joint")}
    ex = dataclasses.replace(
        p.exploit,
        fit=dataclasses.replace(p.exploit.fit, checkpoint_every=0, eval_every=0),
        finetune=dataclasses.replace(p.exploit.finetune, checkpoint_every=0, eval_every=0),
    )
    logging = dataclasses.replace(p.logging, progress=cfg.name != "test")
    return dataclasses.replace(
        p, data=data, exploit=ex, logging=logging, seed=cfg.seed, device=str(device), **stages
    )


def resolve_exploit_budget(cfg: BenchConfig, pcfg) -> BenchConfig:
    """``cfg`` with its per-scene exploit budget filled in where None: the recipe's own (``pcfg.exploit``, a
    package's saved config or the pipeline preset), its stage's ``epochs`` over ``max_train_views`` views. A budget
    per scene (not per batch) keeps t_scene independent of N_exploit, which Eq. 9's extrapolation to N_exploit = 1000
    relies on.

    Returns:
        ``cfg`` itself when both budgets are set, else a copy with them as int view-updates per scene.

    Raises:
        ConfigError: a None budget with ``max_train_views`` None, or for a stage the recipe sizes in steps (its
            budget per scene would depend on how many scenes are learned).
    """
    budget = {}
    for field_name, stage_name in (("fit_view_updates_per_scene", "fit"),
                                   ("finetune_view_updates_per_scene", "finetune")):
        if getattr(cfg, field_name) is not None:
            continue
        stage_cfg = getattr(pcfg.exploit, stage_name)
        if cfg.max_train_views is None or stage_cfg.epochs is None:
            why = ("max_train_views is null" if cfg.max_train_views is None
                   else f"the exploit recipe's {stage_name} stage is sized in steps ({stage_cfg.steps}), not epochs")
            raise ConfigError(f"{field_name}=null takes the exploit recipe's epochs x max_train_views, but {why}; "
                              f"set {field_name} to a number of view-updates per scene")
        budget[field_name] = round(stage_cfg.epochs * cfg.max_train_views)
    return dataclasses.replace(cfg, **budget) if budget else cfg


def per_scene_exploit(pcfg, cfg: BenchConfig, n_scenes: int, curve_points: int = 0):
    """Exploit stage steps from the per-scene budget: ``ceil(updates_per_scene * n_scenes / batch_size)``.

    The fit of a small batch (the re-learned train scenes) draws smaller mini-batches as a user's exploit does
    (``exploit.fit_min_steps``, :func:`~latentscenes.training.config.fit_for_min_steps`): the same view-updates
    per scene. ``curve_points > 0`` also sets ``eval_every`` so that each stage is evaluated about that many times.
    """
    cfg = resolve_exploit_budget(cfg, pcfg)
    ex = pcfg.exploit

    def stage(sc, updates: int, min_steps: int | None = None):
        if updates > 0:  # epochs x n_views there = updates per scene x scenes here: the batch's view-updates
            sc = fit_for_min_steps(dataclasses.replace(sc, epochs=float(updates)), n_scenes, min_steps)
        steps = max(1, math.ceil(updates * n_scenes / sc.batch_size)) if updates > 0 else 0
        every = max(1, steps // curve_points) if curve_points > 0 and steps > 0 else 0
        return dataclasses.replace(sc, steps=steps, epochs=None, eval_every=every)

    fit = stage(ex.fit, cfg.fit_view_updates_per_scene, ex.fit_min_steps)
    ft = stage(ex.finetune, cfg.finetune_view_updates_per_scene)
    ex = dataclasses.replace(ex, fit=fit, finetune=ft, finetune_decoder=ex.finetune_decoder and ft.steps > 0)
    return dataclasses.replace(pcfg, exploit=ex)


def package_plain_ae_config(pcfg, recipe: dict):
    """The plain-AE ablation's training config with a pre-trained 3Da-AE: the package's warm-up as it ran
    (:func:`latentscenes.bench.pretrained.warmup_recipe`: stage settings, ``data.shift_grid``, tri-plane
    resolution, its training scenes, the settings an exploit recipe of the package replaced) with the base
    autoencoder (``pcfg.ae``, the package's saved one) and no joint stage. Checkpoints and evaluations at the stage's
    end only, as every stage of the benchmark."""
    warm = dataclasses.replace(recipe["warmup"], checkpoint_every=0, eval_every=0)
    T = int(recipe.get("triplane_resolution") or pcfg.triplane.resolution)
    pcfg = apply_overrides(pcfg, recipe.get("trained_with") or [])  # as trained, not the exploit recipe
    return dataclasses.replace(
        pcfg, warmup=warm, joint=dataclasses.replace(pcfg.joint, steps=0, epochs=None),
        triplane=dataclasses.replace(pcfg.triplane, resolution=T),
        data=dataclasses.replace(pcfg.data, shift_grid=int(recipe["shift_grid"]),
                                 n_train_scenes=len(recipe["train_scene_ids"])),
    )


def variant_config(pcfg, method: str):
    """Plane layout / schedule of each latent method (paper Sec. 4.3): :meth:`Method.pipeline_config` of the
    registered method (:mod:`latentscenes.methods`)."""
    return get_method(method).pipeline_config(pcfg)


def bench_batches(method, cfg: BenchConfig, pcfg, rgb_scenes: Sequence[SceneViews],
                  exploit_scenes: Sequence[SceneViews], relearn: Sequence[SceneViews],
                  curve_scenes: Sequence[SceneViews], device: torch.device) -> list[Batch]:
    """What the benchmark gives ``method`` to learn (docs/benchmark.md "Protocol"): an RGB method fits the
    baseline's scenes (``rgb_config``); a latent method exploits the exploit scenes (Ours with the PSNR-vs-time
    evaluations of Fig. 6) and the re-learned train scenes, each batch with the per-scene budget."""
    if method.kind == "rgb":
        rcfg = rgb_config(cfg, pcfg, method.rgb_variant, len(rgb_scenes), device)
        return [Batch("fit", None, rcfg, scenes=list(rgb_scenes))]
    base = exploit_base(method, pcfg)
    batches = []
    for tag, group, scenes in (("exploit", "exploit", exploit_scenes), ("relearn", "train", relearn)):
        if not scenes:
            continue
        curve = method.name == "ours" and tag == "exploit"
        eval_cpu: dict = {}
        batches.append(Batch(
            tag, group, per_scene_exploit(base, cfg, len(scenes), cfg.curve_points if curve else 0),
            scenes=list(scenes), eval_fn=latent_curve_eval(curve_scenes, cfg.curve_views, eval_cpu) if curve else None,
            eval_cpu=eval_cpu,
        ))
    return batches


def rgb_config(cfg: BenchConfig, pcfg, variant: str, n_scenes: int, device: torch.device):
    """The RGB baseline config: its preset + overrides, with the same F = F_mic + F_mac and renderer as ours.

    The plane resolution T is the RGB preset's own (``triplane.resolution`` in ``rgb_overrides`` changes it): the
    baseline is tuned for itself (the ``tiny-cpu`` preset's T = 64 is 0.70 dB above T = 32 at 64 px, 0.87 at 128 px:
    docs/fidelity.md, twentieth session), not held to ours' T. For the Macro variant, whose steps are counted in
    total over all scenes, the steps and rays are scaled so that every scene gets the same rays as in the
    per-scene (Micro) fit.
    """
    r = apply_overrides(get_preset(RGBFitConfig, cfg.rgb_preset), cfg.rgb_overrides)
    F = pcfg.triplane.f_mic + pcfg.triplane.f_mac
    tp = dataclasses.replace(r.triplane, f_mic=F, f_mac=0, n_global=pcfg.triplane.n_global)
    steps, rays = r.steps, r.rays_per_batch
    if variant == "macro":
        S = max(1, min(r.scenes_per_batch, n_scenes))
        rays = r.rays_per_batch * S
        steps = max(1, math.ceil(r.steps * n_scenes / S))
    every = max(1, steps // max(1, cfg.curve_points))
    return dataclasses.replace(
        r, triplane=tp, render=pcfg.render, variant=variant, resolution=None, steps=steps, rays_per_batch=rays,
        eval_every=every, curve_views=cfg.curve_views,
        max_eval_views=cfg.eval_max_views or 0, seed=cfg.seed, device=str(device), save_planes=True,
        measure_render=False,
    )


def preflight_autoencoder(pcfg, device: torch.device) -> None:
    """Load the pipeline's autoencoder once before any work, so that missing or mismatched weights are reported
    at once instead of after the RGB baselines have run.

    Raises:
        ConfigError: the autoencoder cannot be loaded (the message says why and how to fix it).
    """
    try:
        load_autoencoder(pcfg.ae, device)
    except (FileNotFoundError, AutoencoderError) as e:
        raise ConfigError(
            f"autoencoder of pipeline preset cannot be loaded: {e} "
            "(set it with --set 'pipeline_overrides=[\"ae.source=path\", \"ae.path=DIR\"]')"
        ) from None


# ============================================================================================ data
def load_bench_scenes(cfg: BenchConfig, pcfg, root: Path, train_ids: Sequence[str] | None = None
                      ) -> tuple[list[SceneViews], list[SceneViews], dict]:
    """Train and exploit scenes (N of each split, evenly spread over its sorted ids) at the pipeline's image size.

    Args:
        train_ids: the train scenes to load instead of ``cfg.n_train_scenes`` spread over the split (a
            pre-trained 3Da-AE's ``train_scene_ids``, in that order); each must be in the train split.
    Raises:
        DatasetError: too few scenes; ``train_ids`` missing from the train split; exploit scenes that are also
            train scenes (the exploit scenes must never have been seen in training).
    """
    ds = MultiSceneDataset(root, resolution=pcfg.data.resolution)
    split_train = ds.split_scene_ids(pcfg.data.train_split)
    if train_ids is None:
        train_ids = spread_ids(split_train, cfg.n_train_scenes)
        n_train = cfg.n_train_scenes
    else:
        train_ids, n_train = list(train_ids), len(train_ids)
        missing = [i for i in train_ids if i not in set(split_train)]
        if missing:
            raise DatasetError(
                f"{root}: {len(missing)} of the pre-trained 3Da-AE's {len(train_ids)} training scenes are not in the "
                f"dataset's {pcfg.data.train_split!r} split (e.g. {missing[:3]}); benchmark it on the data it was "
                "trained on (the cpu preset's data/fg128)"
            )
    exploit_ids = spread_ids(ds.split_scene_ids(pcfg.data.exploit_split), cfg.n_exploit_scenes)
    if len(train_ids) < n_train or len(exploit_ids) < cfg.n_exploit_scenes:
        raise DatasetError(
            f"{root}: the benchmark needs {n_train} train and {cfg.n_exploit_scenes} exploit scenes, "
            f"the dataset has {len(train_ids)} / {len(exploit_ids)} (lower n_train_scenes / n_exploit_scenes)"
        )
    seen = sorted(set(exploit_ids) & set(train_ids))
    if seen:
        raise DatasetError(
            f"{root}: {len(seen)} exploit scene(s) are also training scenes of the 3Da-AE (e.g. {seen[:3]}); the "
            f"{pcfg.data.exploit_split!r} split must hold scenes never seen in training"
        )
    defaults = dict(getattr(ds, "render_defaults", None) or {})
    return [_keep_train_views(ds.load(i), cfg.max_train_views) for i in train_ids], [
        _keep_train_views(ds.load(i), cfg.max_train_views) for i in exploit_ids
    ], defaults


def spread_ids(ids: Sequence[str], n: int) -> list[str]:
    """``n`` ids evenly spaced over the sorted list (deterministic): ``sorted(ids)[floor(i * len / n)]``.

    Sorted scene ids group similar scenes (e.g. the liveries of one airframe are consecutive), so the first ``n``
    would often be one airframe; an even spread covers the split. Returns all ids when ``n >= len(ids)``.
    """
    ids = sorted(ids)
    if n >= len(ids):
        return ids
    return [ids[(i * len(ids)) // n] for i in range(n)]


def rgb_scene_ids(exploit_ids: Sequence[str], relearn_ids: Sequence[str], cfg: BenchConfig) -> dict[str, list[str]]:
    """The scenes the RGB baselines fit: ``n_rgb_exploit`` exploit scenes evenly spread over ours' (
    :func:`spread_ids`) and the first ``n_rgb_train`` re-learned train scenes.

    Why spread: sorted ids group kinds of objects (in ``data/fg128`` the airliners' ids sort before the small
    aircraft's), and the first ones alone measured ours against RGB on the airliners only (docs/fidelity.md,
    twenty-eighth session: -0.34 dB on the first 6 of 10, -0.82 on all 10).

    Returns:
        ``{"exploit": [...], "train": [...]}``: scene ids, exploit ones sorted (all of them when
        ``n_rgb_exploit >= len(exploit_ids)``).
    """
    return {"exploit": spread_ids(exploit_ids, cfg.n_rgb_exploit), "train": list(relearn_ids[: cfg.n_rgb_train])}


def _keep_train_views(scene: SceneViews, max_train: int | None) -> SceneViews:
    """The first ``max_train`` train views and every test view, so that the latent pipeline and the RGB baseline
    learn from exactly the same views (``None`` = all)."""
    if max_train is None:
        return scene
    train = scene.view_indices("train")[:max_train]
    keep = sorted(train + scene.view_indices("test"))
    return scene.subset(keep)


# ============================================================================================ measuring
#: What a phase record measured of the process that ran it (:class:`~latentscenes.utils.phases.PhaseRecord`).
CARRIED_FIELDS = ("wall_s", "cpu_s", "rss_start_bytes", "rss_peak_bytes", "rss_peak_delta_bytes", "gpu_peak_bytes",
                  "load_average_end")


def carry_phase_records(phases: dict, folder: Path, method: str) -> None:
    """Keep a method's phase records across processes (``bench --resume``, ``bench --only``).

    A phase that ran in this process is saved to ``folder/phases.json``; a phase reused from an earlier process
    (``extra["resumed"]``) gets that process's saved time and memory figures back (``extra["record_from"]``),
    so that Table 1's peak memory of a benchmark run in parts is the parts' own, not a reload's. A reused phase
    with no saved record (a folder written before this file existed) keeps this process's figures.

    Args:
        phases: the :class:`~latentscenes.utils.phases.PhaseLog`'s records by name (changed in place).
        folder: the method's run folder (``OUT/runs/<method>``).
        method: the method's name; its phases are ``<method>/<part>``.
    """
    path = folder / "phases.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    for name, rec in phases.items():
        if not name.startswith(method + "/"):
            continue
        if not rec.get("extra", {}).get("resumed"):
            saved[name] = rec
        elif name in saved:
            rec.update({k: saved[name][k] for k in CARRIED_FIELDS if k in saved[name]})
            rec["extra"]["record_from"] = str(path)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(saved, indent=2, default=str) + "\n")


# ============================================================================================ the run
def run_benchmark(
    cfg: BenchConfig, data_root: str | Path, out_dir: str | Path, command: str = "", resume: bool = False,
    only: Sequence[str] | None = None,
) -> dict:
    """Run the whole benchmark and write ``results.json``, ``summary.md`` and the plots into ``out_dir``.

    Args:
        cfg: :class:`BenchConfig` (preset ``test``, ``cpu`` or ``paper``).
        data_root: multi-scene dataset with ``train`` and ``exploit`` scene splits.
        out_dir: output folder (``runs/`` holds each method's run folder).
        command: the command line, recorded in the results.
        resume: continue an interrupted benchmark in the same ``out_dir`` with the same config: finished RGB fits
            are reused from their ``results.json``, 3Da-AE runs continue from their checkpoints (their stage
            clocks sum over sessions). Phases reused this way (``"resumed": true`` in ``phases``) keep the time and
            memory record of the process that ran them (``runs/<method>/phases.json``, :func:`carry_phase_records`).
        only: run just these methods' fits and stop before the tables: one part of the benchmark, so that parts
            run side by side in separate processes (one core each) into the same ``out_dir``; a later run with
            ``resume=True`` and no ``only`` reuses every part and writes the tables.
    Returns:
        the results dict (also in ``out_dir/results.json``); with ``only``, ``{"only": [...], "out_dir": ...}``.
    Raises:
        DatasetError: too few scenes, or scenes without held-out views. ConfigError: unknown method name, or an
        ``only`` method this benchmark does not run.
    """
    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    unknown = set(cfg.methods) - set(ALL_METHODS)
    if unknown:
        raise ConfigError(f"unknown benchmark method(s) {sorted(unknown)}; known: {list(ALL_METHODS)}")
    methods = [m for m in ALL_METHODS if m in set(cfg.methods) | {"ours", "rgb"}]
    # A pre-trained 3Da-AE as Ours: read and checked (weights, image size, overrides) before anything is written.
    device = pick_device(cfg.device)
    pkg = load_package(cfg.pretrained) if cfg.pretrained else None
    pcfg = pipeline_config(cfg, device, pkg)
    cfg = resolve_exploit_budget(cfg, pcfg)  # saved resolved below: a rerun of config.json uses the same budget
    skipped: dict[str, str] = {}
    if pkg is not None:
        # Ours-Micro / Ours-Macro train their own 3Da-AE with another plane layout: compared with a package they
        # would differ in the recipe too (and be charged their training while Ours is not); two more packages
        # trained like this one would be needed.
        why = (f"with pretrained={cfg.pretrained!r} a fair comparison needs two more packages trained with the same "
               "recipe and F_mic = F / F_mac = F (preset cpu-own trains all three 3Da-AEs in the benchmark)")
        skipped = {m: why for m in ("ours-micro", "ours-macro") if m in methods}
        methods = [m for m in methods if m not in skipped]
    if only:
        outside = sorted(set(only) - set(methods))
        if outside:
            raise ConfigError(f"--only {outside}: not a method of this benchmark (it runs {methods})")
    out_dir = Path(out_dir)
    check_out_folder(out_dir, "bench", replaces_own=True)  # its runs/ is removed below: never another's
    mark_folder(out_dir, "bench")
    runs = out_dir / "runs"
    if runs.exists() and not resume:
        shutil.rmtree(runs)  # a fresh benchmark: stale runs of an earlier one must not be mixed in
    runs.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir / "config.json")  # rerun exactly with --config OUT/config.json
    if device.type == "cpu":
        set_cpu_threads()
    seed_everything(cfg.seed)
    info = machine_info(device)
    console.print(f"[bold]bench[/bold] {cfg.name}: {info['cpu_model']}, {info['usable_cores']} cores, device {device}")

    preflight_autoencoder(pcfg, device)  # the base autoencoder (with a package: its plain-AE ablation's)
    recipe = warmup_recipe(pkg) if pkg is not None else None
    entry = package_entry_cost(pkg) if pkg is not None else None
    log = PhaseLog(device)  # every phase's time and memory, by name
    phases = log.phases
    with log("load data"):
        train_scenes, exploit_scenes, defaults = load_bench_scenes(
            cfg, pcfg, Path(data_root), train_ids=pkg.train_scene_ids if pkg is not None else None)
    notes: list[str] = []
    if pkg is None:
        pcfg = apply_render_defaults(pcfg, defaults)
    else:
        # The package's MLP and planes learned with its own near/far/box: it keeps them (exploit_3daae does too),
        # and so do the RGB baselines (same renderer for every method). Exploit refuses cameras that cannot see
        # the box with them.
        differ = {k: (getattr(pcfg.render, k), defaults[k]) for k in ("near", "far", "box_size")
                  if defaults.get(k) is not None and float(defaults[k]) != float(getattr(pcfg.render, k))}
        if differ:
            notes.append(f"the dataset records other render bounds than the pre-trained 3Da-AE (package, dataset): "
                         f"{differ}; every method renders with the package's")
        # The plain-AE ablation's warm-up must see the views the package's did (max_train_views, another build).
        n_views = sum(len(s.view_indices("train")) for s in train_scenes)
        if rf.n_views(pkg.manifest) is not None and n_views != int(rf.n_views(pkg.manifest)):
            notes.append(f"the package's training scenes have {n_views} train views here, its warm-up used "
                         f"{rf.n_views(pkg.manifest)}: the plain-AE ablation does not see the same views")
    by_id = {s.scene_id: s for s in train_scenes + exploit_scenes}
    for s in by_id.values():
        if not s.view_indices("test"):
            raise DatasetError(f"scene {s.scene_id!r} has no held-out (test) views to evaluate on")
    if pkg is None:
        relearn = train_scenes[: cfg.n_train_relearn]
    else:
        # Evenly spread over the package's training scenes (as the train split is for a benchmark that trains).
        relearn = [by_id[i] for i in spread_ids(pkg.train_scene_ids, cfg.n_train_relearn)]
    rgb_ids = rgb_scene_ids([s.scene_id for s in exploit_scenes], [s.scene_id for s in relearn], cfg)
    rgb_scenes = [by_id[i] for i in rgb_ids["exploit"] + rgb_ids["train"]]
    curve_scenes = [by_id[i] for i in rgb_ids["exploit"][: max(1, cfg.curve_scenes)]]
    stage_results: dict[str, Any] = {}
    evaluations: dict[str, dict] = {}
    groups = {"train": [s.scene_id for s in relearn], "exploit": [s.scene_id for s in exploit_scenes]}

    # ------------------------------------------------------------------ every method, through the shared step
    # RGB baselines first (a fresh process), then Ours before the ablations (RUN_ORDER)
    ctx = MethodContext(pcfg, train_scenes=train_scenes, render_defaults=defaults, phase=log, resume=resume,
                        training_runs={"ours": pkg.path} if pkg is not None else {})
    if pkg is not None:  # not trained here: Table 1 charges the entry cost its manifest records
        console.print(f"[bold]ours[/bold]: the pre-trained 3Da-AE {cfg.pretrained!r} ({pkg.path}), entry cost "
                      f"{entry['t_ec_s'] / 60:.1f} min as measured when it was made")
    rgb_results: dict[str, dict] = {}
    rgb_models: dict[str, Any] = {}
    exploited: dict[str, Path] = {}
    latent_models: dict[str, list] = {}
    for m in [x for x in RUN_ORDER if x in (set(only) if only else set(methods))]:
        method = get_method(m)
        batches = bench_batches(method, cfg, pcfg, rgb_scenes, exploit_scenes, relearn, curve_scenes, device)
        # the plain-AE ablation of a package repeats the package's warm-up with the base autoencoder, no joint stage
        train_cfg = package_plain_ae_config(pcfg, recipe) if pkg is not None and not method.joint else None
        run = run_method(method, ctx, runs / m, batches, train_config=train_cfg)
        if method.kind == "rgb":
            rgb_results[m] = run.results["fit"]
        else:
            stage_results.update({f"{m}/{part}": res for part, res in run.results.items()})
        # reloaded from the files it saved, so that evaluation and byte counting use exactly what is on disk
        models = load_models(run, device)
        evaluations[m] = evaluate_models(models, by_id, rgb_ids if method.kind == "rgb" else groups, cfg.eval_max_views)
        if method.kind == "rgb":
            rgb_models[m] = models[0][1]
        else:
            exploited[m] = run.folders["exploit"]
            if m == "ours":  # kept for the render timing; the others are freed (an SD-size autoencoder each)
                latent_models[m] = [model for _, model in models]
        carry_phase_records(phases, runs / m, m)
    if only:
        console.print(f"[bold]bench[/bold]: {', '.join(only)} done in {out_dir}; when every part is done, run the "
                      "same command with --resume and no --only for the tables")
        return {"only": list(only), "out_dir": str(out_dir)}
    trained = ctx.training_runs

    # ------------------------------------------------------------------ fidelity diagnosis (docs/fidelity.md)
    with log("diagnosis"):
        diagnosis = fidelity_diagnosis(cfg, pcfg, trained["ours"], exploited["ours"], exploit_scenes, device)

    # ------------------------------------------------------------------ Table 1 (costs, Eq. 8-11)
    ex = stage_results["ours/exploit"]
    n_ex = len(exploit_scenes)
    table1, cost_notes = measure_costs(
        cfg, pkg=pkg, entry=entry, phases=phases, stage_results=stage_results, rgb_results=rgb_results,
        ours_run=trained["ours"], ours_exploit=exploited["ours"], rgb_dir=runs / "rgb",
        ours_model=latent_models["ours"][0], rgb_model=rgb_models["rgb"],
        timing_scenes=[by_id[i] for i in rgb_ids["exploit"]], n_exploit=n_ex, device=device)
    notes.extend(cost_notes)

    # ------------------------------------------------------------------ time to quality, Fig. 7
    curve_t, curve_p = [], []
    offset = ex["latent_cache_s"]
    for st in ("exploit_fit", "exploit_refit", "exploit_finetune"):
        s = ex["stages"].get(st)
        if not s:
            continue
        for rec in s.get("curve", []):
            if "psnr" in rec:
                curve_t.append(offset + rec["train_s"])
                curve_p.append(rec["psnr"])
        offset += s["train_s"]
    rgb_curves = [
        {"scene_id": r["scene_id"], "t_s": [c[0] for c in r["curve"]], "psnr": [c[1] for c in r["curve"]]}
        for r in rgb_results["rgb"]["scenes"] if r["scene_id"] in {s.scene_id for s in curve_scenes}
    ]
    ttq = build_time_to_quality({"t_s": curve_t, "psnr": curve_p}, n_ex, table1["ours"]["time"]["t_ec"], rgb_curves, cfg.n_ref)
    ttq["curve_scenes"] = [s.scene_id for s in curve_scenes]
    ttq["curve_views_per_scene"] = cfg.curve_views
    fig7 = build_fig7(table1["ours"]["time"]["t_ec"], table1["ours"]["time"]["t_scene"], table1["rgb"]["t_scene_s"], cfg.fig7_n)
    table2 = build_table2(evaluations, rgb_ids)

    resumed = [k for k, p in phases.items() if p.get("extra", {}).get("resumed")]
    carried = [k for k in resumed if phases[k]["extra"].get("record_from")]
    if carried:
        notes.append(
            f"resumed benchmark: {len(carried)} phases were reused from an earlier process ({', '.join(carried)}); "
            "their time and memory records are the ones that process measured (runs/<method>/phases.json)"
        )
    if len(carried) < len(resumed):
        notes.append(
            f"resumed benchmark: {len(resumed) - len(carried)} phases were reused from an earlier session "
            f"({', '.join(k for k in resumed if k not in carried)}); their times come from their saved results, "
            "their memory figures are not of this process"
        )
    if pkg is not None:
        notes.append(
            f"ours is the pre-trained 3Da-AE {cfg.pretrained!r} ({pkg.path}; weights sha256 {pkg.shared_sha256[:12]}), not "
            f"trained here: t_EC = {entry['t_ec_s'] / 60:.2f} min is its manifest's entry cost, {entry['note']}"
        )
        notes.append(
            f"plain-ae repeats the package's warm-up ({recipe['warmup'].steps} steps, data.shift_grid "
            f"{recipe['shift_grid']}"
            + (f", as trained: {', '.join(recipe['trained_with'])}" if recipe.get("trained_with") else "")
            + f") on its {len(pkg.train_scene_ids)} training scenes with the base autoencoder, "
            "no joint stage; then the same exploit recipe"
        )
        notes.extend(recipe["notes"])
        if entry["sum_matches_entry_cost"] is False:
            notes.append(f"the package's stage times do not add up to its entry_cost_s ({entry['entry_cost_s']:.1f} s)")
    if skipped:
        notes.append(f"not run: {', '.join(skipped)}: {next(iter(skipped.values()))}")
    if cfg.name in ("cpu", "cpu-own"):
        notes.append(
            "cpu preset: tiny sizes (pipeline preset 'tiny-cpu'); absolute PSNRs are capped by the small "
            "autoencoder's reconstruction PSNR (Table 2 upper bound); compare ratios, not absolute values."
        )
    hot = [k for k, p in phases.items() if p.get("load_average_end") and info["usable_cores"]
           and p["load_average_end"][0] > 1.5 * info["usable_cores"]]
    if hot:
        peak = max(phases[k]["load_average_end"][0] for k in hot)
        notes.append(
            f"the machine was busy: the 1-min load average exceeded 1.5 x {info['usable_cores']} cores at the end of "
            f"{len(hot)} of {len(phases)} phases (max {peak:.1f}); times measured under contention are inflated"
        )

    results = {
        "schema": "latentscenes.bench/1",
        "command": command,
        "started_utc": started,
        "wall_s": time.perf_counter() - t_start,
        "machine": info,
        "config": to_dict(cfg),
        "pipeline_config": to_dict(pcfg),
        "pretrained": None if pkg is None else {
            "spec": cfg.pretrained, "path": str(pkg.path), "manifest_sha256": pkg.manifest_sha256,
            "sha256_shared": pkg.shared_sha256, "source": rf.export_source(pkg.manifest) or None,
            "train_scene_ids": pkg.train_scene_ids, "image_size": pkg.image_size,
            "entry_cost": entry,
            "plain_ae_warmup": {"stage": to_dict(recipe["warmup"]), "shift_grid": recipe["shift_grid"],
                                "trained_with": recipe.get("trained_with") or [], "from": recipe["from"]},
        },
        "skipped_methods": skipped,
        "rgb_config": {m: r["config"] for m, r in rgb_results.items()},
        "data": {
            "root": str(data_root),
            "resolution": pcfg.data.resolution,
            "n_train": len(train_scenes),
            "n_exploit": n_ex,
            "n_relearn": len(relearn),
            "n_rgb": len(rgb_scenes),
            "train_scene_ids": [s.scene_id for s in train_scenes],
            "exploit_scene_ids": [s.scene_id for s in exploit_scenes],
            "relearn_scene_ids": groups["train"],
            "rgb_scene_ids": rgb_ids,
            "test_views_per_scene": sorted({len(s.view_indices("test")) for s in by_id.values()}),
            "render_defaults": defaults,
        },
        "phases": phases,
        "table1": table1,
        "table2": table2,
        "time_to_quality": ttq,
        "diagnosis": diagnosis,
        "fig7": fig7,
        "stage_results": stage_results,
        "rgb_results": {m: {k: v for k, v in r.items() if k != "config"} for m, r in rgb_results.items()},
        "evaluations": {m: {k: v for k, v in e.items()} for m, e in evaluations.items()},
        "notes": notes,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=2, allow_nan=True, default=str) + "\n")
    write_report(results, out_dir)
    if not cfg.keep_runs:
        shutil.rmtree(runs, ignore_errors=True)
    return results
