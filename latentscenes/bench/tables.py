"""Assemble the benchmark's tables from measured parts (pure functions, no measuring).

The runner measures phase times, saved bytes, render latencies, PSNR curves and evaluation results, and
passes them here; these functions apply :mod:`latentscenes.bench.accounting` (Eq. 8-11) and arrange the
results dict that ``results.json``, ``summary.md`` and the plots are made from. Keeping this pure lets the tests
recompute every derived figure from the measured parts stored in the same file.
"""

from __future__ import annotations

from typing import Sequence

from latentscenes.bench import accounting as acc
from latentscenes.evaluation.stats import paired_bootstrap
from latentscenes.methods import get_method

#: Table 2's rows in the paper's order.
TABLE2_ORDER = ("ours-micro", "ours-macro", "rgb-macro", "rgb", "ours-no-prior", "plain-ae", "ours")
# Table 2 rows: key -> (label, latent space, micro planes, macro planes), from the method registry.
TABLE2_ROWS = {k: (m.label, m.kind == "latent", m.micro, m.macro) for k in TABLE2_ORDER for m in [get_method(k)]}


def build_table1(ours: dict, rgb: dict, n_ref: int, render_resolution: int) -> dict:
    """Table 1 (paper Eq. 8-11) for ours vs Tri-Planes (RGB).

    Args:
        ours: ``{"t_warmup_s", "t_train_s", "t_exploit_s", "t_exploit_ft_s", "n_exploit",
            "bytes": {"m_e", "m_d", "m_b", "m_shared_other", "m_t", "m_w"}, "render": latency dict,
            "peak_rss_bytes", "peak_gpu_bytes"}`` (seconds, bytes; ``m_t``/``m_w`` over all N_exploit scenes).
        rgb: ``{"fit_s", "n_scenes", "bytes_total", "render": latency dict, "peak_rss_bytes",
            "peak_gpu_bytes"}``; ``fit_s`` and ``bytes_total`` cover all ``n_scenes`` fitted scenes.
        n_ref: N_exploit of the extrapolation (paper: 1000).
        render_resolution: side (px) of the views the render latencies were measured on.
    Returns:
        ``{"ours": {...}, "rgb": {...}, "relative": {...}, "break_even_n_exploit", "render_resolution"}``.
    """
    n = int(ours["n_exploit"])
    tc = acc.time_costs(ours["t_warmup_s"], ours["t_train_s"], ours["t_exploit_s"], ours["t_exploit_ft_s"], n)
    tc_ref = acc.extrapolate_time_costs(tc, n_ref)
    b = ours["bytes"]
    mc = acc.memory_costs(b["m_e"], b["m_d"], b["m_b"], b["m_t"], b["m_w"], n, b.get("m_shared_other", 0))
    mc_ref = acc.extrapolate_memory_costs(mc, n_ref)
    t_rgb = float(rgb["fit_s"]) / int(rgb["n_scenes"])
    m_rgb = float(rgb["bytes_total"]) / int(rgb["n_scenes"])
    rel = {
        "t_scene": acc.relative_change(tc.t_scene, t_rgb),
        "t_scene_eff": acc.relative_change(tc.t_scene_eff, t_rgb),
        "t_scene_eff_ref": acc.relative_change(tc_ref.t_scene_eff, t_rgb),
        "m_scene": acc.relative_change(mc.m_scene, m_rgb),
        "m_scene_eff": acc.relative_change(mc.m_scene_eff, m_rgb),
        "m_scene_eff_ref": acc.relative_change(mc_ref.m_scene_eff, m_rgb),
        "render_ms": acc.relative_change(ours["render"]["median_ms"], rgb["render"]["median_ms"]),
        "peak_rss": acc.relative_change(ours.get("peak_rss_bytes"), rgb.get("peak_rss_bytes")),
    }
    return {
        "render_resolution": [render_resolution, render_resolution],
        "ours": {
            "time": tc.to_dict(),
            "time_ref": tc_ref.to_dict(),
            "memory": mc.to_dict(),
            "memory_ref": mc_ref.to_dict(),
            "render": ours["render"],
            "peak_rss_bytes": ours.get("peak_rss_bytes"),
            "peak_gpu_bytes": ours.get("peak_gpu_bytes"),
        },
        "rgb": {
            "fit_s": float(rgb["fit_s"]),
            "n_scenes": int(rgb["n_scenes"]),
            "bytes_total": int(rgb["bytes_total"]),
            "t_scene_s": t_rgb,
            "t_scene_eff_s": t_rgb,
            "m_scene_bytes": m_rgb,
            "m_scene_eff_bytes": m_rgb,
            "render": rgb["render"],
            "peak_rss_bytes": rgb.get("peak_rss_bytes"),
            "peak_gpu_bytes": rgb.get("peak_gpu_bytes"),
        },
        "relative": rel,
        "break_even_n_exploit": acc.break_even_scenes(tc.t_ec, tc.t_scene, t_rgb),
    }


def build_fig7(t_ec: float, t_scene_ours: float, t_scene_rgb: float, n_values: Sequence[int]) -> dict:
    """Fig. 7 series: t_tot(N) = t_EC + N t_scene (ours) and N t_scene (RGB), seconds."""
    return {
        "n_exploit": [int(n) for n in n_values],
        "ours_s": acc.total_time_curve(t_ec, t_scene_ours, n_values),
        "rgb_s": acc.total_time_curve(0.0, t_scene_rgb, n_values),
        "t_ec_s": float(t_ec),
        "t_scene_ours_s": float(t_scene_ours),
        "t_scene_rgb_s": float(t_scene_rgb),
    }


def build_time_to_quality(
    ours_curve: dict, n_exploit: int, t_ec: float, rgb_curves: Sequence[dict], n_ref: int, n_grid: int = 40
) -> dict:
    """Fig. 6: held-out PSNR against training wall time per scene.

    Args:
        ours_curve: ``{"t_s": [...], "psnr": [...]}``: elapsed wall time of the exploit phase (fit, then
            fine-tune, evaluations excluded) for all N_exploit scenes, and mean PSNR of the curve scenes.
        n_exploit: scenes trained together in that phase (time per scene = t / N_exploit).
        t_ec: entry cost (s), for the effective curve shifted by t_EC / n_ref.
        rgb_curves: one ``{"t_s", "psnr"}`` per RGB scene (elapsed fitting time of that scene).
    Returns:
        the curves (per scene time), the RGB mean curve on a common grid, final PSNRs and the crossing times.
    """
    ot = [t / n_exploit for t in ours_curve["t_s"]]
    op = list(ours_curve["psnr"])
    oet = [t + t_ec / n_ref for t in ot]
    t_max = max([c["t_s"][-1] for c in rgb_curves if c["t_s"]] or [0.0])
    grid = [t_max * i / n_grid for i in range(n_grid + 1)] if t_max > 0 else []
    rgb_mean = acc.mean_curve([(c["t_s"], c["psnr"]) for c in rgb_curves if c["t_s"]], grid)
    rg = [(t, p) for t, p in zip(grid, rgb_mean) if p is not None]
    rgb_t = [t for t, _ in rg]
    rgb_p = [p for _, p in rg]
    rgb_final = rgb_p[-1] if rgb_p else None
    ours_final = op[-1] if op else None
    return {
        "n_ref": n_ref,
        "ours_curve": {"t_s": ot, "psnr": op},
        "ours_eff_curve": {"t_s": oet, "psnr": op},
        "rgb_curve": {"t_s": rgb_t, "psnr": rgb_p},
        "rgb_scene_curves": list(rgb_curves),
        "rgb_final_psnr": rgb_final,
        "rgb_final_time_s": rgb_t[-1] if rgb_t else None,
        "ours_final_psnr": ours_final,
        "ours_final_time_s": ot[-1] if ot else None,
        "ours_time_to_rgb_final_s": None if rgb_final is None else acc.time_to_reach(ot, op, rgb_final),
        "ours_eff_time_to_rgb_final_s": None if rgb_final is None else acc.time_to_reach(oet, op, rgb_final),
        "rgb_time_to_ours_final_s": None if ours_final is None else acc.time_to_reach(rgb_t, rgb_p, ours_final),
    }


def _group_mean(evaluation: dict | None, group: str) -> dict | None:
    if not evaluation:
        return None
    g = evaluation.get("groups", {}).get(group)
    if not g:
        return None
    return {"psnr": g["mean"].get("psnr"), "ssim": g["mean"].get("ssim"), "n_scenes": g["n_scenes"], "n_views": g["n_views"]}


def _subset_mean(evaluation: dict | None, ids: Sequence[str]) -> dict | None:
    """Mean PSNR/SSIM of an evaluation restricted to scenes ``ids`` (each scene weighs the same)."""
    if not evaluation:
        return None
    rows = [evaluation["scenes"][s]["mean"] for s in ids if s in evaluation.get("scenes", {})]
    if not rows:
        return None
    return {
        "psnr": sum(r["psnr"] for r in rows) / len(rows),
        "ssim": sum(r["ssim"] for r in rows) / len(rows),
        "n_scenes": len(rows),
    }


def build_table2(evaluations: dict[str, dict], rgb_ids: dict[str, list[str]], split: str = "test") -> dict:
    """Table 2 rows from ``evaluate_model`` results.

    Args:
        evaluations: method key -> evaluation dict with groups ``train`` and ``exploit``.
        rgb_ids: ``{"train": [...], "exploit": [...]}``, the scenes the RGB baselines fitted; every latent
            method is also averaged on exactly these scenes (``*_on_rgb_scenes``) for a like-for-like view.
    """
    rows = []
    for key, (label, latent, micro, macro) in TABLE2_ROWS.items():
        ev = evaluations.get(key)
        if ev is None:
            continue
        row = {
            "key": key,
            "method": label,
            "latent": latent,
            "micro": micro,
            "macro": macro,
            "train": _group_mean(ev, "train"),
            "exploit": _group_mean(ev, "exploit"),
        }
        if latent:
            row["train_on_rgb_scenes"] = _subset_mean(ev, rgb_ids.get("train", []))
            row["exploit_on_rgb_scenes"] = _subset_mean(ev, rgb_ids.get("exploit", []))
        rows.append(row)
    # scene counts of the latent methods (they all learn the same scenes); the RGB rows' subset is counted apart
    latent_keys = [k for k, (_, latent, _, _) in TABLE2_ROWS.items() if latent and k in evaluations]
    first = evaluations[latent_keys[0]] if latent_keys else (next(iter(evaluations.values()), None) or {})
    ae = {}
    for key, ev in evaluations.items():
        for g in ("train", "exploit"):
            m = (ev.get("groups", {}).get(g) or {}).get("mean", {})
            if "ae_psnr" in m and key in ("ours", "plain-ae"):
                ae[f"{key} {g}"] = {"psnr": m["ae_psnr"], "ssim": m.get("ae_ssim")}
    n = {
        "train": (first.get("groups", {}).get("train") or {}).get("n_scenes"),
        "exploit": (first.get("groups", {}).get("exploit") or {}).get("n_scenes"),
        "rgb_train": len(rgb_ids.get("train", [])),
        "rgb_exploit": len(rgb_ids.get("exploit", [])),
    }
    return {"split": split, "rows": rows, "n_scenes": n, "ae_upper_bound": ae,
            "differences": table2_differences(evaluations, rgb_ids)}


def table2_differences(evaluations: dict[str, dict], rgb_ids: dict[str, list[str]]) -> list[dict]:
    """Ours minus every other method, per group, with a 95 % paired-bootstrap interval over scenes.

    Latent methods are compared on all the scenes both learned; the RGB rows on the scenes they fitted (the
    same scenes for ours). A pair with fewer than 2 common scenes is left out (no interval exists).
    """
    ours = evaluations.get("ours")
    if not ours:
        return []
    out = []
    for key, (label, latent, _, _) in TABLE2_ROWS.items():
        ev = evaluations.get(key)
        if key == "ours" or not ev:
            continue
        for g in ("train", "exploit"):
            ids = [s for s, rec in ev.get("scenes", {}).items() if rec.get("group") == g]
            if not latent:
                fitted = set(rgb_ids.get(g, []))
                ids = [s for s in ids if s in fitted]
            a = {s: ours["scenes"][s]["mean"]["psnr"] for s in ids if s in ours.get("scenes", {})}
            b = {s: ev["scenes"][s]["mean"]["psnr"] for s in a}
            if len(a) < 2:
                continue
            out.append({"vs": key, "method": label, "group": g, **paired_bootstrap(a, b)})
    return out
