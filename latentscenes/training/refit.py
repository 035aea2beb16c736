"""Exploit fits that collapsed: found on the train views right after Encode-Scene, learned again, the better kept.

Why: a latent scene's fit can fail while the rest of its batch fits well. Two of ten exploit scenes of a
3Da-AE with a long joint stage came back as grey blobs, 4-5 dB below the others in RGB *and* latent PSNR, on
their train views as on held-out ones, with the autoencoder's own reconstruction unchanged (docs/fidelity.md,
"1,600 joint steps"). The fit, not the decoder, failed, and its own training views show it: the rendered
latents of those views stay far from the cached latents they were fitted to. A scene is only as good as its
fit, and a user learning 1,000 scenes cannot inspect each.

What runs (``exploit.refit_margin_db``; off with ``null``), between the fit and the decoder fine-tune of Alg. 2:

1. :func:`fit_latent_psnr`: every scene's latent PSNR on (up to ``max_views``) of its own train views, rendered
   deterministically and compared with the cached latents the fit used (normalised latents in [-1, 1], peak 2,
   as ``eval``'s ``latent_psnr``).
2. :func:`scenes_to_refit`: the scenes more than ``margin_db`` below the batch's median (batches of >= 4 scenes),
   and every scene less than ``exploit.collapse_margin_db`` above its flat prediction (:func:`flat_latent_psnr`, the
   scene's mean latent everywhere): the median alone cannot see a batch that collapsed as a whole, nor a batch of
   one to three scenes (docs/fidelity.md, eighteenth and nineteenth sessions). A scene still collapsed after its
   refit is named in the record (``still_collapsed``) and the exploit command warns.
3. :func:`refit_scenes`: each of them learned again, alone, with the fit stage's recipe and per-scene budget (in
   at least ``exploit.fit_min_steps`` updates, as a fit of one scene), the
   shared MLP and global planes B frozen (the other scenes of the batch were fitted with them), its own batch
   order seeded by the scene id (the result does not depend on which other scenes failed or on how a
   multi-process batch is sharded). It starts from the **mean** T_mic and W of the batch's other scenes (the
   average learned object, ``exploit.refit_init = "mean"``; a fresh draw when no scene of the batch is healthy),
   not from a fresh random draw: a collapsed fit is
   transparent (peak opacity 0.3 against 0.8-1.0), and from a fresh small initialisation the refit with the
   batch's trained MLP fell into the same collapse (19.02 -> 19.03 dB, 21.39 -> 20.35 dB), while from the mean it
   reached 26.28 and 26.44 dB (docs/fidelity.md, fifth session). The new fit replaces the old one only where its
   train-view latent PSNR is higher: a refit can only help, so a false alarm costs time, not quality.

Every decision is recorded in the batch manifest (``stages.exploit_refit``) and the refit's time counts in the
batch's fit time (the benchmark's t_scene).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from typing import Any, Callable

import torch

from latentscenes.metrics import psnr_per_image
from latentscenes.scenes.bank import SceneBank
from latentscenes.training.config import StageConfig, fit_for_min_steps
from latentscenes.training.data import ViewTable, step_generator
from latentscenes.training.stages import LatentSystem, run_stage
from latentscenes.utils.phases import PeakMemory

#: Seed tag of the refits' initialisations and batch orders (with the scene id).
REFIT_STAGE = "exploit_refit"


@torch.no_grad()
def fit_latent_psnr(
    system: LatentSystem, table: ViewTable, latents: torch.Tensor, *, max_views: int = 8, batch_size: int = 32,
    scene_ids: list[str] | None = None,
) -> dict[str, float]:
    """Latent PSNR of each scene on its own train views (the fit's targets), after a fit.

    Uses copy 0 of the first ``max_views`` source views of each scene (the views at their own offsets), rendered
    with deterministic sampling (as evaluation renders), the rendering clamped to [-1, 1].

    Args:
        system: the batch's system (bank rows of every scene of ``table``).
        table: the stage's view table; latents: ``[len(table), C, h, w]`` its cached normalised latents.
        max_views: views per scene (> 0); batch_size: views rendered at once.
        scene_ids: only these scenes of ``table`` (default: all).
    Returns:
        ``{scene_id: PSNR in dB}`` with peak-to-peak 2 (latents in [-1, 1]); ``inf`` for an exact fit.
    Raises:
        ValueError: ``max_views < 1``, or a scene of ``scene_ids`` has no view in ``table``.
    """
    rows_of = _measured_rows(table, max_views, scene_ids)
    ids = list(rows_of)
    all_rows = torch.cat([rows_of[s] for s in ids])
    H, W = table.resolution
    ds = system.downsample
    saved = system.render
    system.render = dataclasses.replace(saved, deterministic=True)
    per_view: list[torch.Tensor] = []
    try:
        for start in range(0, all_rows.numel(), batch_size):
            rows = all_rows[start : start + batch_size]
            bank_rows = system.bank.rows([table.scene_ids[int(i)] for i in table.scene_rows[rows]])
            out = system.render_latents(bank_rows, table.c2w[rows], table.K[rows], H // ds, W // ds)
            pred = out["image"].clamp(-1.0, 1.0)
            target = latents[rows].to(pred)
            per_view.append(psnr_per_image(pred, target, data_range=2.0).cpu())
    finally:
        system.render = saved
    psnr = torch.cat(per_view).tolist()
    result: dict[str, float] = {}
    pos = 0
    for s in ids:
        k = rows_of[s].numel()
        result[s] = sum(psnr[pos : pos + k]) / k  # PSNR per view, then the scene's mean (as eval averages views)
        pos += k
    return result


def _measured_rows(table: ViewTable, max_views: int, scene_ids: list[str] | None) -> dict[str, torch.Tensor]:
    """``{scene_id: rows}``: copy 0 of the first ``max_views`` source views of each scene (table order), the views
    :func:`fit_latent_psnr` and :func:`flat_latent_psnr` measure. Raises ValueError as they do."""
    if max_views < 1:
        raise ValueError(f"max_views must be >= 1, got {max_views}")
    ids = list(table.scene_ids if scene_ids is None else scene_ids)
    index = {s: i for i, s in enumerate(table.scene_ids)}
    src_scene = table.scene_rows[: table.n_source_views]
    rows_of: dict[str, torch.Tensor] = {}
    for s in ids:
        r = (src_scene == index[s]).nonzero().flatten()[:max_views]
        if r.numel() == 0:
            raise ValueError(f"scene {s!r} has no train view in the table")
        rows_of[s] = r
    return rows_of


def flat_latent_psnr(table: ViewTable, latents: torch.Tensor, *, max_views: int = 8,
                     scene_ids: list[str] | None = None) -> dict[str, float]:
    """Latent PSNR of the best *flat* prediction of each scene: its per-channel mean latent over the same views
    :func:`fit_latent_psnr` measures, at every pixel of every view. A fit no better than this learned nothing
    of the scene's shape or colours (a collapsed fit renders a near-uniform latent). Not in the paper: the reference
    of ``exploit.collapse_margin_db`` (docs/fidelity.md, nineteenth session).

    Args:
        table: the fit's view table; latents: ``[len(table), C, h, w]`` its cached normalised latents (in [-1, 1]).
        max_views: views per scene (> 0); scene_ids: only these scenes of ``table`` (default: all).
    Returns:
        ``{scene_id: PSNR in dB}`` (peak-to-peak 2, per view then the scene's mean, as :func:`fit_latent_psnr`).
    Raises:
        ValueError: ``max_views < 1``, or a scene of ``scene_ids`` has no view in ``table``.
    """
    result: dict[str, float] = {}
    for s, rows in _measured_rows(table, max_views, scene_ids).items():
        x = latents[rows].float()
        flat = x.mean(dim=(0, 2, 3), keepdim=True).expand_as(x)
        result[s] = float(psnr_per_image(flat, x, data_range=2.0).mean())
    return result


def scenes_to_refit(psnr: dict[str, float], margin_db: float) -> tuple[float | None, list[str]]:
    """The scenes whose fit PSNR lies more than ``margin_db`` below the batch's median.

    Args:
        psnr: ``{scene_id: dB}`` of the whole batch (:func:`fit_latent_psnr`, every rank's scenes).
        margin_db: > 0.
    Returns:
        ``(median or None, ids worst first)``; nothing for batches of fewer than 4 scenes (no meaningful median).
    Raises:
        ValueError: ``margin_db <= 0``.
    """
    if not margin_db > 0:
        raise ValueError(f"exploit.refit_margin_db must be > 0 (or null: off), got {margin_db}")
    finite = {s: v for s, v in psnr.items() if math.isfinite(v)}
    if len(psnr) < 4:
        return None, []
    med = statistics.median(finite.values()) if finite else math.inf
    low = [s for s, v in psnr.items() if math.isfinite(med) and med - v > margin_db]
    return med, sorted(low, key=lambda s: psnr[s])


def refit_config(fit: StageConfig, n_views_batch: int) -> StageConfig:
    """The fit stage's recipe for one scene at a time: the same per-scene budget (``epochs``; a fit given in
    ``steps`` gets its budget per source view of the batch), the shared MLP and global planes B frozen, no
    checkpoints (a refit of one scene takes seconds and is repeated exactly on ``--resume``)."""
    epochs = fit.epochs if fit.epochs is not None else fit.steps * fit.batch_size / max(1, n_views_batch)
    return dataclasses.replace(fit, epochs=epochs, lr_global=0.0, lr_mlp=0.0, checkpoint_every=0, eval_every=0,
                               freeze_mlp_fraction=None)


def refit_scenes(
    system: LatentSystem,
    table: ViewTable,
    latents: torch.Tensor,
    fit: StageConfig,
    margin_db: float,
    *,
    seed: int,
    n_views_batch: int | None = None,
    gather: Callable[[Any], list[Any]] | None = None,
    logger: Any = None,
    max_views: int = 8,
    init: str = "mean",
    min_steps: int | None = None,
    collapse_margin_db: float | None = None,
) -> dict[str, Any]:
    """Find the batch's collapsed fits and learn each again; keep, per scene, the fit with the higher PSNR.

    Args:
        system: the batch after its fit stage (changed in place: the per-scene rows of replaced scenes).
        table / latents: the fit's view table and cached latents (this process's scenes).
        fit: the fit stage's effective config (:func:`refit_config` derives the refit's).
        margin_db: how far below the batch's median a scene's fit PSNR must be (``exploit.refit_margin_db``).
        seed: the batch's seed. n_views_batch: source views of the whole batch (default: the table's).
        gather: several processes: returns every process's object (a list by rank; collective), so that the
            median is the whole batch's and every process returns every refit's record; None with one process.
        logger: a metrics logger (``log(dict)``) or None. max_views: views per scene of :func:`fit_latent_psnr`.
        init: where a refit starts (``exploit.refit_init``): ``"fresh"``, a new random draw (the fit's own
            initialisation scales, seeded by the scene id); ``"mean"``, the mean T_mic and W of the batch's scenes
            that were not flagged (every process's), i.e. the average learned object of the batch.
        collapse_margin_db: ``exploit.collapse_margin_db``: also refit every scene less than this many dB above its
            flat prediction (:func:`flat_latent_psnr`); ``None``: only the median rule.
        min_steps: ``exploit.fit_min_steps``: a refit is a batch of one scene, so its mini-batch shrinks as the
            fit's does (:func:`~latentscenes.training.config.fit_for_min_steps`); ``None``: the fit's batch size.
    Returns:
        the record stored in the manifest as ``stages.exploit_refit``: ``margin_db``, ``median_db``, ``checked``
        (scenes), ``scenes``: ``[{"scene", "before_db", "after_db", "kept": "refit" | "first", "flat_db",
        "collapsed"}]`` worst first (``flat_db``: the flat prediction's PSNR; ``collapsed``: the better fit still within
        ``collapse_margin_db`` of it), ``collapse_margin_db``, ``flat_gap_min_db`` (the batch's smallest fit-minus-flat
        margin, before any refit), ``still_collapsed`` (scene ids); dB figures that are not finite (an exact fit) are
        ``None``, so that the record is strict JSON,
        ``refitted``, ``replaced``, ``refit_s`` (the refits' optimisation loops), and the stage-result keys
        ``steps``, ``train_s`` (the whole phase: the check of every scene and the refits; the slowest process's),
        ``cpu_s`` (its process CPU time, summed over the processes),
        ``step_ms_median``, ``peak_rss_mb``, ``final_losses``, ``view_copies``.
    """
    t_start, c_start = time.perf_counter(), time.process_time()
    with PeakMemory(system.device) as peak:  # this phase's own peak (utils/phases.py)
        psnr = fit_latent_psnr(system, table, latents, max_views=max_views)
        flat = flat_latent_psnr(table, latents, max_views=max_views)
        everyone = psnr if gather is None else {k: v for part in gather(psnr) for k, v in part.items()}
        median, low = scenes_to_refit(everyone, margin_db)
        # The median cannot see a batch that collapsed as a whole (or a batch of < 4 scenes): the flat
        # prediction is an absolute reference for every scene.
        flat_all = flat if gather is None else {k: v for part in gather(flat) for k, v in part.items()}
        collapsed = ([] if collapse_margin_db is None else
                     [s for s, v in everyone.items() if v < flat_all[s] + collapse_margin_db])
        low = sorted(set(low) | set(collapsed), key=lambda s: everyone[s])
        mine = [s for s in low if s in psnr]
        if init not in ("fresh", "mean"):
            raise ValueError(f"exploit.refit_init must be 'fresh' or 'mean', got {init!r}")
        # decided from every process's scenes, so that every process takes part in _healthy_mean's gather or none;
        # no healthy scene (the whole batch collapsed): a fresh draw
        healthy = [s for s in everyone if s not in low]
        mean_start = init == "mean" and bool(low) and bool(healthy)
        start = _healthy_mean(system, [s for s in psnr if s not in low], gather) if mean_start else None
        rcfg = refit_config(fit, n_views_batch if n_views_batch is not None else table.n_source_views)
        records: list[dict[str, Any]] = []
        steps, train_s, step_ms = 0, 0.0, []
        for sid in mine:
            one = _one_scene(system, table, latents, sid, seed)
            if start is not None:
                one["system"].bank.assign([sid], start)
            # one scene at the fit's batch size gets a few dozen updates, too few to leave a fresh start (the
            # fifth session's refits from a fresh draw stayed collapsed; docs/fidelity.md, nineteenth session)
            one_cfg = fit_for_min_steps(rcfg, one["table"].n_source_views, min_steps)
            res = run_stage(one["system"], one["table"], f"{REFIT_STAGE}/{sid}", one_cfg, seed=seed,
                            latents=one["latents"])
            after = fit_latent_psnr(one["system"], one["table"], one["latents"], max_views=max_views)[sid]
            kept = "refit" if after > psnr[sid] else "first"
            if kept == "refit":
                system.bank.assign([sid], one["system"].bank.per_scene_state([sid]))
            records.append({"scene": sid, "before_db": _json_db(psnr[sid]), "after_db": _json_db(after), "kept": kept,
                            "flat_db": _json_db(flat[sid]),
                            "collapsed": collapse_margin_db is not None
                            and max(after, psnr[sid]) < flat[sid] + collapse_margin_db})
            steps += res.steps
            train_s += res.train_s
            step_ms.append(res.step_ms_median)
            if logger is not None:
                logger.log({"event": "refit", "scene": sid, "before_db": psnr[sid], "after_db": after, "kept": kept,
                            "median_db": median, "flat_db": flat[sid]})
    rss, cuda = peak.rss_peak_bytes / 2**20, (peak.gpu_peak_bytes or 0) / 2**20
    mine_rec = {"records": records, "steps": steps, "refit_s": train_s, "wall_s": time.perf_counter() - t_start,
                "cpu_s": time.process_time() - c_start, "step_ms": step_ms, "rss": rss, "cuda": cuda}
    parts = [mine_rec] if gather is None else gather(mine_rec)
    # worst first; None is an exact fit (_json_db), the best there is
    records = sorted((r for p in parts for r in p["records"]),
                     key=lambda r: math.inf if r["before_db"] is None else r["before_db"])
    step_ms = [m for p in parts for m in p["step_ms"]]
    return {
        "stage": REFIT_STAGE, "margin_db": margin_db, "init": init, "median_db": _json_db(median), "checked": len(everyone),
        "collapse_margin_db": collapse_margin_db,
        # how close the batch's healthiest margin came: each scene's fit minus its flat prediction, the smallest
        "flat_gap_min_db": _json_db(min(everyone[s] - flat_all[s] for s in everyone)) if everyone else None,
        "still_collapsed": sorted(r["scene"] for r in records if r["collapsed"]),
        "scenes": records, "refitted": len(records), "replaced": sum(r["kept"] == "refit" for r in records),
        "steps": sum(p["steps"] for p in parts), "refit_s": max(p["refit_s"] for p in parts),
        "train_s": max(p["wall_s"] for p in parts), "cpu_s": sum(p["cpu_s"] for p in parts),
        "step_ms_median": statistics.median(step_ms) if step_ms else 0.0,
        "peak_rss_mb": max(p["rss"] for p in parts), "cuda_peak_mb": max(p["cuda"] for p in parts),
        "final_losses": {}, "view_copies": int(table.copies),
    }


def _json_db(x: float | None) -> float | None:
    """A dB figure for the manifest: rounded to 4 decimals, ``None`` where it is not finite (an exact fit gives
    ``inf``, exact fit minus exact flat prediction ``nan``), so that the record is strict JSON."""
    return round(x, 4) if x is not None and math.isfinite(x) else None


def _healthy_mean(system: LatentSystem, healthy: list[str], gather: Callable[[Any], list[Any]] | None) -> dict:
    """Mean per-scene tensors (``{"local": [1, 3, F_mic, T, T], "coefs": [1, M]}``) of the ``healthy`` scenes of
    every process (collective with ``gather``)."""
    st = system.bank.per_scene_state(healthy) if healthy else {}
    part = ({k: v.double().sum(0) for k, v in st.items()}, len(healthy))
    parts = [part] if gather is None else gather(part)
    n = sum(c for _, c in parts)
    keys = next((p.keys() for p, c in parts if c), ())
    return {k: (sum(p[k] for p, c in parts if c) / max(1, n)).float().unsqueeze(0) for k in keys}


def _one_scene(system: LatentSystem, table: ViewTable, latents: torch.Tensor, sid: str, seed: int) -> dict[str, Any]:
    """A one-scene system (fresh T_mic and W drawn from (seed, scene id); the batch's MLP, global planes and
    autoencoder shared, not copied), its view table and latents."""
    k = table.scene_ids.index(sid)
    sel = (table.scene_rows == k).nonzero().flatten()  # every copy of the scene's views, table order
    n = table.n_source_views
    src = sel[sel < n]
    # source view j of the sub-table is src[j]; copy c of it sits at row c * len(src) + j
    sub = ViewTable(
        scene_ids=[sid], codes=table.codes[src], scale=table.scale[src],
        c2w=torch.cat([table.c2w[c * n + src] for c in range(table.copies)]),
        K=torch.cat([table.K[c * n + src] for c in range(table.copies)]),
        scene_rows=torch.zeros(table.copies * src.numel(), dtype=torch.long),
        copies=table.copies, shift_grid=table.shift_grid, downsample=table.downsample,
    )
    sub_latents = torch.cat([latents[c * n + src] for c in range(table.copies)])
    g = torch.Generator().manual_seed(step_generator(seed, f"{REFIT_STAGE}/init/{sid}", 0))
    bank = SceneBank(system.bank.cfg, [sid], sparse_grad=system.bank.sparse_grad, generator=g).to(system.device)
    bank.global_planes = system.bank.global_planes  # shared and frozen (lr_global 0)
    one = LatentSystem(ae=system.ae, bank=bank, mlp=system.mlp, render=system.render)
    return {"system": one, "table": sub, "latents": sub_latents}
