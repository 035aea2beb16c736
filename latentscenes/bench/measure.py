"""What the benchmark measures besides quality: render latency, bytes on disk, Table 1's costs (Eq. 8-11) and the
fidelity diagnosis (autoencoder ceiling through the stages, consistency probe).

Split from :mod:`latentscenes.experiments.bench` (which runs the methods and assembles the results): these functions
read what the runs left (stage results, run folders, loaded scene models) and measure; they train nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import torch

from latentscenes.autoencoder.model import load_autoencoder
from latentscenes.bench import accounting as acc
from latentscenes.bench.config import BenchConfig
from latentscenes.bench.pretrained import BenchPackage
from latentscenes.bench.tables import build_table1
from latentscenes.data.types import SceneViews
from latentscenes.evaluation.evaluate import autoencoder_ceiling
from latentscenes.evaluation.model import render_decoded
from latentscenes.evaluation.probe import ProbeConfig, consistency_probe
from latentscenes.evaluation.runs import autoencoder_view
from latentscenes.evaluation.stats import paired_bootstrap
from latentscenes.baselines.rgb import fit_format as rgb_format
from latentscenes.training import run_format as rf
from latentscenes.training.pipeline import load_exploited, load_trained


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_renders(model, scenes: Sequence[SceneViews], resolution: int, n_views: int, repeats: int, device: torch.device) -> dict:
    """Render latency of one ``resolution``-square view without autograd (paper Tab. 1 "Rendering Time").

    Ours: latent render at ``resolution / 8`` + decoding to ``resolution`` (g^2 of each with
    ``render.offset_ensemble = g``, :func:`~latentscenes.evaluation.model.render_decoded`); RGB: render at
    ``resolution``.
    The held-out cameras of ``scenes`` are used (normalised intrinsics serve any resolution); per view one
    untimed warm-up render, then ``repeats`` timed ones.

    Returns:
        :func:`accounting.latency_summary` of the total, plus ``render_median_ms`` / ``decode_median_ms``.
    """
    totals, renders, decodes = [], [], []
    ae = model.autoencoder if model.kind == "latent" else None
    hw = (resolution // ae.downsample, resolution // ae.downsample) if ae is not None else (resolution, resolution)
    views = [(s, i) for s in scenes if s.scene_id in model.scene_ids for i in s.view_indices("test")]
    views = views[: max(1, n_views)]
    if not views:
        raise ValueError(f"no held-out views of the model's scenes to time ({model.name})")
    with torch.no_grad():
        for s, i in views:
            c2w, K = s.c2w[i : i + 1].float(), s.K[i : i + 1].float()
            for rep in range(repeats + 1):
                if ae is not None:  # the same path as evaluation (render.offset_ensemble included)
                    dec = render_decoded(model, s.scene_id, c2w, K, hw, sync=lambda: _sync(device))
                    r_s, d_s = dec.render_s, dec.decode_s
                else:
                    _sync(device)
                    t0 = time.perf_counter()
                    model.render(s.scene_id, c2w, K, hw)
                    _sync(device)
                    r_s, d_s = time.perf_counter() - t0, 0.0
                if rep == 0:
                    continue  # warm-up (also composes and caches the scene's planes)
                renders.append(r_s)
                decodes.append(d_s)
                totals.append(r_s + d_s)
    out = acc.latency_summary(totals)
    out["render_median_ms"] = acc.latency_summary(renders)["median_ms"]
    out["decode_median_ms"] = acc.latency_summary(decodes)["median_ms"] if ae is not None else 0.0
    out["resolution"] = [resolution, resolution]
    out["latent_resolution"] = list(hw) if ae is not None else None
    return out


# ============================================================================================ bytes
def _is_encoder(name: str) -> bool:
    return name.startswith(("vae.encoder.", "vae.quant_conv."))


def _is_decoder(name: str) -> bool:
    return name.startswith(("vae.decoder.", "vae.post_quant_conv."))


def latent_bytes(run_dir: Path, exploit_dir: Path) -> dict[str, Any]:
    """m_E, m_D, m_B, other shared bytes, m_T, m_W of an exploit batch, from the files it needs on disk.

    An exploit batch is rendered from: the source run's encoder (``RUN/model/shared.safetensors``, ``vae.encoder``
    and ``vae.quant_conv``; needed to learn more scenes), the batch's ``model/shared.safetensors`` (fine-tuned
    decoder + post-quant conv, MLP, global planes B, latent background) and its scene shards (local planes
    ``local``, coefficients ``coefs``). Every tensor of those files is counted in exactly one category.
    """
    run_shared = acc.safetensors_entries(rf.shared_path(run_dir))
    ex_shared = acc.safetensors_entries(rf.shared_path(exploit_dir))
    m_e = sum(e.nbytes for e in run_shared if _is_encoder(e.name))
    cats = acc.bytes_by_category(
        {e.name: e.nbytes for e in ex_shared},
        {
            "m_d": _is_decoder,
            "m_b": lambda n: n == "global_planes",
            "mlp": lambda n: n.startswith("mlp."),
            "latent_background": lambda n: n == "latent_background",
        },
    )
    shards = rf.scene_files(exploit_dir)
    per = {"m_t": 0, "m_w": 0}
    for p in shards:
        c = acc.bytes_by_category(
            {e.name: e.nbytes for e in acc.safetensors_entries(p)},
            {"m_t": lambda n: n == "local", "m_w": lambda n: n == "coefs"},
        )
        per["m_t"] += c["m_t"]
        per["m_w"] += c["m_w"]
    return {
        "m_e": m_e,
        "m_d": cats["m_d"],
        "m_b": cats["m_b"],
        "m_shared_other": cats["mlp"] + cats["latent_background"],
        "mlp": cats["mlp"],
        "latent_background": cats["latent_background"],
        "m_t": per["m_t"],
        "m_w": per["m_w"],
        "files": [str(rf.shared_path(run_dir)), str(rf.shared_path(exploit_dir))] + [str(p) for p in shards],
    }


def rgb_bytes(fit_dir: Path, results: dict) -> dict[str, Any]:
    """Bytes of every tensor the RGB fit saved: per scene planes + its own MLP (micro), or coefficients plus the
    shared global planes and MLP (macro)."""
    files = rgb_format.fit_files(fit_dir)
    total = sum(acc.safetensors_payload_bytes(p) for p in files)
    return {"bytes_total": total, "n_scenes": len(results["scenes"]), "files": [str(p) for p in files]}


# ============================================================================================ the run
def ae_ceiling(ae, scenes: Sequence[SceneViews], split: str = "test") -> dict[str, float]:
    """Per-scene mean PSNR (dB) of the autoencoder's own reconstruction D(E_mean(x)) of the ``split`` views, by the
    evaluation protocol (``evaluation.evaluate.autoencoder_ceiling``: the ``ae_psnr`` that ``eval`` reports)."""
    view = autoencoder_view(ae)
    return {s.scene_id: autoencoder_ceiling(view, s, split)["mean"]["psnr"] for s in scenes}


def fidelity_diagnosis(cfg: BenchConfig, pcfg, ours_run: Path, ours_exploit: Path,
                       exploit_scenes: Sequence[SceneViews], device: torch.device) -> dict:
    """What caps Ours' held-out quality (issue "Fidelity first", docs/fidelity.md), on the exploit scenes:

    * ``ae_ceiling``: D(E(x)) PSNR of the held-out views with the base autoencoder, after joint training (Ours'
      run) and after the exploit decoder fine-tune (Ours' exploit batch), per scene and mean, with the paired
      bootstrap interval of each drop;
    * ``probe``: the latent consistency probe of the base autoencoder (the plain-AE ablation's) and of Ours'
      trained 3Da-AE (``evaluation.probe``), on the first ``cfg.probe_scenes`` exploit scenes.
    """
    base_ae = load_autoencoder(pcfg.ae, device)
    ours_ae = load_trained(ours_run, device).ae
    ours_ae.apply_runtime(pcfg.ae)  # every stage on the exploit's latent grid (a package's run records 1)
    stages = {
        "base": ae_ceiling(base_ae, exploit_scenes),
        "after_joint": ae_ceiling(ours_ae, exploit_scenes),
        "after_exploit_finetune": ae_ceiling(load_exploited(ours_exploit, device).ae, exploit_scenes),
    }
    ceiling = {k: {"mean_psnr": sum(v.values()) / len(v), "scenes": v} for k, v in stages.items()}
    if len(exploit_scenes) >= 2:
        for k in ("after_joint", "after_exploit_finetune"):
            ceiling[k]["minus_base"] = paired_bootstrap(stages[k], stages["base"])
    probes: dict[str, dict] = {}
    n = min(cfg.probe_scenes, len(exploit_scenes))
    if n >= 2:
        pc = ProbeConfig(view_updates_per_scene=cfg.probe_view_updates)
        sc = list(exploit_scenes[:n])
        for name, ae in (("base (plain AE)", base_ae), ("ours (3Da-AE)", ours_ae)):
            r = consistency_probe(ae, sc, pcfg, pc)
            probes[name] = {**r["summary"], "steps": r["steps"], "fit_s": r["fit_s"], "n_scenes": n,
                            "scenes": {s: v["mean"] for s, v in r["heldout"]["scenes"].items()}}
    return {"ae_ceiling": ceiling, "probe": probes}


# ============================================================================================ Table 1
def measure_costs(
    cfg: BenchConfig, *, pkg: BenchPackage | None, entry: dict | None, phases: dict, stage_results: dict,
    rgb_results: dict, ours_run: Path, ours_exploit: Path, rgb_dir: Path, ours_model: Any, rgb_model: Any,
    timing_scenes: Sequence[SceneViews], n_exploit: int, device: torch.device,
) -> tuple[dict, list[str]]:
    """Table 1 of the benchmark (paper Tab. 1, Eq. 8-11) from what the runs measured and saved.

    Times: the stages' own clocks (Ours' entry cost from its training run, or from a package's manifest via
    ``entry``; t_exploit = latent encoding + fit + refit; the fine-tune apart), the RGB fits' per-scene clocks;
    bytes: read back from the saved files and cross-checked against the live tensors the exploit reported;
    render latency: :func:`time_renders` on ``timing_scenes`` at ``cfg.render_resolution``; memory: the phases'
    peak RSS (and a package's recorded stage peaks); CPU time per scene.

    Args:
        phases: :class:`~latentscenes.utils.phases.PhaseLog` phases (``ours/exploit``, ``rgb/fit``, ...).
        stage_results: ``{"ours/exploit": ..., "ours/train": ...}`` results of the latent runs.
        rgb_results: ``{"rgb": fit results}``; ``rgb_dir``: the Tri-Planes (RGB) fit's folder.
        ours_run, ours_exploit: Ours' training run (or package) and exploit batch folders.
        ours_model, rgb_model: the reloaded scene models whose render latency is timed.
    Returns:
        ``(table1, notes)``: :func:`~latentscenes.bench.tables.build_table1`'s dict with ``cpu_time``,
        ``bytes_check`` and the files counted; notes for the report (a failed byte cross-check).
    """
    ex = stage_results["ours/exploit"]
    notes: list[str] = []
    if pkg is None:
        tr = stage_results["ours/train"]
        t_warm = tr["latent_cache_s"] + tr["stages"]["warmup"]["train_s"]
        t_joint = tr["stages"]["joint"]["train_s"]
        ec_bytes, ec_stages = tr["bytes"], tr["stages"]
    else:
        # Eq. 9's t_EC as the package's manifest records it (measured when it was made; package_entry_cost)
        t_warm, t_joint = entry["t_warmup_s"], entry["t_train_s"]
        ec_bytes = rf.recorded_bytes(pkg.manifest) or {}
        ec_stages = {k: v for k, v in rf.stage_results(pkg.manifest).items() if isinstance(v, dict)}
    # the refit of collapsed fits (training/refit.py) is part of fitting the scenes
    t_fit = (ex["latent_cache_s"] + ex["stages"]["exploit_fit"]["train_s"]
             + ex["stages"].get("exploit_refit", {}).get("train_s", 0.0))
    t_ft = ex["stages"].get("exploit_finetune", {}).get("train_s", 0.0)
    ours_bytes = latent_bytes(ours_run, ours_exploit)
    # cross-check: the bytes read from the files equal what the pipeline reports for the live tensors
    mb = ex["bytes"]
    n_ex = n_exploit
    checks = {
        "decoder_bytes_match": ours_bytes["m_d"] == mb["decoder"],
        "global_planes_bytes_match": ours_bytes["m_b"] == mb["global_planes"],
        "mlp_bytes_match": ours_bytes["mlp"] == mb["mlp"],
        "per_scene_bytes_match": ours_bytes["m_t"] + ours_bytes["m_w"] == n_ex * mb["per_scene"],
        "encoder_bytes_match": ours_bytes["m_e"] == ec_bytes.get("encoder"),
    }
    if not all(checks.values()):
        notes.append(f"byte cross-check failed (files vs live tensors): {checks}")
    render_ours = time_renders(ours_model, timing_scenes, cfg.render_resolution, cfg.render_views, cfg.render_repeats, device)
    render_rgb = time_renders(rgb_model, timing_scenes, cfg.render_resolution, cfg.render_views, cfg.render_repeats, device)
    ours_phases = [k for k in ("ours/train", "ours/exploit") if k in phases]
    ours_peak = max(phases[k]["rss_peak_bytes"] for k in ours_phases)
    if pkg is not None:
        # the package's training needed memory too: its stages' recorded peak RSS (ru_maxrss of the run that made it)
        pkg_rss = [int(float(s_.get("peak_rss_mb") or 0.0) * 2**20) for s_ in ec_stages.values()]
        ours_peak = max([ours_peak] + pkg_rss)
    # run_stage resets the CUDA peak at each stage start: take the stages' own peaks too
    ours_gpu = [phases[k]["gpu_peak_bytes"] for k in ours_phases if phases[k]["gpu_peak_bytes"] is not None]
    if ours_gpu:
        ours_gpu += [int((s_.get("cuda_peak_mb") or 0.0) * 2**20)
                     for s_ in list(ec_stages.values()) + list(ex["stages"].values())]
    rgb_res = rgb_results["rgb"]
    rb = rgb_bytes(rgb_dir, rgb_res)
    table1 = build_table1(
        {
            "t_warmup_s": t_warm, "t_train_s": t_joint, "t_exploit_s": t_fit, "t_exploit_ft_s": t_ft, "n_exploit": n_ex,
            "bytes": ours_bytes, "render": render_ours, "peak_rss_bytes": ours_peak,
            "peak_gpu_bytes": max(ours_gpu) if ours_gpu else None,
        },
        {
            "fit_s": sum(r["time_s"] for r in rgb_res["scenes"]), "n_scenes": len(rgb_res["scenes"]),
            "bytes_total": rb["bytes_total"], "render": render_rgb,
            "peak_rss_bytes": phases["rgb/fit"]["rss_peak_bytes"], "peak_gpu_bytes": phases["rgb/fit"]["gpu_peak_bytes"],
        },
        cfg.n_ref,
        cfg.render_resolution,
    )
    # Process CPU time per scene (all threads): less sensitive than wall time to other jobs on a shared machine.
    # Ours: the exploit stages' own CPU clocks of their update steps (and the refit phase), summed over sessions
    # like their wall clocks, so a resumed benchmark counts every session; when a batch predates those clocks, the
    # exploit phase's CPU time minus its PSNR-curve evaluations (set-up and checkpoint writes included: an upper
    # bound, and of this session only). RGB: the fits' own CPU clocks of the update steps.
    ex_ph = phases["ours/exploit"]
    stage_cpu = [st.get("cpu_s") for st in ex["stages"].values() if isinstance(st, dict)]
    if stage_cpu and None not in stage_cpu:
        ours_cpu, cpu_from = sum(stage_cpu), "the exploit stages' update steps (latent encoding excluded)"
    else:
        ours_cpu = ex_ph["cpu_s"] - ex_ph["extra"].get("eval_cpu_s", 0.0)
        cpu_from = "the exploit phase minus its curve evaluations (set-up and checkpoint writes included)"
        if ours_cpu <= 0:  # a resumed benchmark that reused batches written before the stages kept CPU clocks
            ours_cpu, cpu_from = None, "nothing: the exploit batches were reused and record no CPU time"
    rgb_cpu = [r_.get("cpu_time_s") for r_ in rgb_res["scenes"]]
    table1["cpu_time"] = {
        "ours_t_scene_cpu_s": None if ours_cpu is None else ours_cpu / n_ex,
        "ours_t_scene_cpu_from": cpu_from,
        # a package records the wall time of its training only
        "ours_t_ec_cpu_s": phases["ours/train"]["cpu_s"] if "ours/train" in phases else None,
        "rgb_t_scene_cpu_s": (sum(rgb_cpu) / len(rgb_cpu)) if rgb_cpu and None not in rgb_cpu else None,
        "note": f"process CPU seconds (all threads); ours' t_scene from {cpu_from}"
                + ("; the pre-trained 3Da-AE's CPU time is not recorded, so no CPU-time t_scene_eff" if pkg else ""),
    }
    if (table1["cpu_time"]["rgb_t_scene_cpu_s"] and table1["cpu_time"]["ours_t_ec_cpu_s"] is not None
            and ours_cpu is not None):
        c = table1["cpu_time"]
        c["ours_t_scene_eff_ref_cpu_s"] = acc.effective_time_per_scene(c["ours_t_ec_cpu_s"], c["ours_t_scene_cpu_s"], cfg.n_ref)
        c["t_scene_eff_ref_change"] = acc.relative_change(c["ours_t_scene_eff_ref_cpu_s"], c["rgb_t_scene_cpu_s"])
    table1["bytes_check"] = checks
    table1["ours"]["bytes_files"] = ours_bytes["files"]
    table1["rgb"]["bytes_files"] = rb["files"]
    table1["ours"]["peak_rss_delta_bytes"] = max(phases[k]["rss_peak_delta_bytes"] for k in ours_phases)
    if pkg is not None:
        table1["ours"]["entry_cost"] = {**entry, "package": str(pkg.path), "pretrained": cfg.pretrained}
        table1["ours"]["peak_rss_note"] = ("max of the exploit phase's peak and the pre-trained 3Da-AE's stages' "
                                           "recorded peak RSS (manifest stages.*.peak_rss_mb)")
    table1["rgb"]["peak_rss_delta_bytes"] = phases["rgb/fit"]["rss_peak_delta_bytes"]
    return table1, notes
