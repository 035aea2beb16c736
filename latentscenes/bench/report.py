"""Turn a benchmark results dict (``results.json``) into a Markdown summary and PNG plots.

Only formatting happens here: every number comes from the results dict written by
:func:`latentscenes.experiments.bench.run_benchmark` (nothing is recomputed or hard-coded, except the paper's own
published figures, which are printed in a separate, labelled column for reference).

Files written next to ``results.json``:
  * ``summary.md``: machine, command, Table 1 (costs), Table 2 (quality), time to quality, Fig. 7 numbers;
  * ``fig6_time_to_quality.png``: held-out PSNR vs training wall time per scene, ours vs Tri-Planes (RGB);
  * ``fig7_total_time.png``: total training time vs N_exploit (Eq. 8 with measured parts);
  * ``table1_costs.png``: per-scene time, memory and render time, ours vs Tri-Planes (RGB), as bars.
"""

from __future__ import annotations

import math
from pathlib import Path

from latentscenes.bench.accounting import relative_change as acc_rel
from latentscenes.utils.io import atomic_write, atomic_write_text

# Paper Table 1 / Table 2 (arXiv 2403.11678), for reference columns only.
PAPER_TABLE1 = {
    "ours": {"t_scene_min": 2.0, "t_scene_eff_min": 4.5, "m_scene_mb": 0.48, "m_scene_eff_mb": 0.84, "render_ms": 11.0},
    "rgb": {"t_scene_min": 32.0, "t_scene_eff_min": 32.0, "m_scene_mb": 1.5, "m_scene_eff_mb": 1.5, "render_ms": 23.3},
}
PAPER_TABLE2 = {
    "ours-micro": (26.52, 26.95),
    "ours-macro": (25.67, 26.10),
    "rgb-macro": (27.84, 28.00),
    "rgb": (28.24, 28.40),
    "ours-no-prior": (27.72, 28.13),
    "ours": (28.05, 28.48),
}


def _f(x, fmt: str = "{:.2f}", none: str = "n/a") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return none
    return fmt.format(x)


def _mb(b) -> str:
    return _f(None if b is None else b / 1e6, "{:.4g}")


def _min(s) -> str:
    return _f(None if s is None else s / 60.0, "{:.3f}")


def _pct(x) -> str:
    return _f(None if x is None else 100.0 * x, "{:+.0f} %")


def _machine_lines(m: dict) -> list[str]:
    gpu = m.get("gpu")
    ram = m.get("ram_bytes")
    lines = [
        f"- CPU: {m.get('cpu_model')} ({m.get('usable_cores')} usable cores, torch threads {m.get('torch_threads')})",
        f"- RAM: {_f(None if ram is None else ram / 2**30, '{:.1f}')} GiB; GPU: "
        + (f"{gpu['name']} ({gpu['memory_bytes'] / 2**30:.0f} GiB)" if gpu else "none"),
        f"- Device used: {m.get('device')}; OS: {m.get('os')}; Python {m.get('python')}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items() if v),
        f"- git: {m.get('git_commit')}",
    ]
    la0 = m.get("load_average_at_start")
    if la0:
        lines.append(f"- Load average at start (1/5/15 min): {la0[0]:.2f} / {la0[1]:.2f} / {la0[2]:.2f}")
    return lines


def table1_markdown(r: dict) -> str:
    t1 = r["table1"]
    ours, rgb, rel = t1["ours"], t1["rgb"], t1["relative"]
    n = ours["time"]["n_exploit"]
    n_ref = ours["time_ref"]["n_exploit"]
    res = t1.get("render_resolution", [128, 128])
    rows = [
        "| per scene | Tri-Planes (RGB) | Ours | change | paper RGB | paper ours |",
        "|---|---:|---:|---:|---:|---:|",
        f"| t_scene (min) | {_min(rgb['t_scene_s'])} | {_min(ours['time']['t_scene'])} | {_pct(rel['t_scene'])} | 32 | 2 |",
        f"| t_scene_eff at N_exploit={n} (min) | {_min(rgb['t_scene_s'])} | {_min(ours['time']['t_scene_eff'])} | {_pct(rel['t_scene_eff'])} | | |",
        f"| t_scene_eff at N_exploit={n_ref} (min, Eq. 9) | {_min(rgb['t_scene_s'])} | {_min(ours['time_ref']['t_scene_eff'])} | {_pct(rel['t_scene_eff_ref'])} | 32 | 4.5 |",
        f"| m_scene (MB) | {_mb(rgb['m_scene_bytes'])} | {_mb(ours['memory']['m_scene'])} | {_pct(rel['m_scene'])} | 1.5 | 0.48 |",
        f"| m_scene_eff at N_exploit={n} (MB) | {_mb(rgb['m_scene_bytes'])} | {_mb(ours['memory']['m_scene_eff'])} | {_pct(rel['m_scene_eff'])} | | |",
        f"| m_scene_eff at N_exploit={n_ref} (MB, Eq. 11) | {_mb(rgb['m_scene_bytes'])} | {_mb(ours['memory_ref']['m_scene_eff'])} | {_pct(rel['m_scene_eff_ref'])} | 1.5 | 0.84 |",
        f"| render ms per {res[0]}x{res[1]} view (median) | {_f(rgb['render']['median_ms'])} | {_f(ours['render']['median_ms'])} | {_pct(rel['render_ms'])} | 23.3 | 11.0 |",
        f"| peak RSS while training (MB) | {_mb(rgb.get('peak_rss_bytes'))} | {_mb(ours.get('peak_rss_bytes'))} | {_pct(rel.get('peak_rss'))} | | |",
    ]
    if ours.get("peak_gpu_bytes") is not None or rgb.get("peak_gpu_bytes") is not None:
        rows.append(
            f"| peak GPU memory while training (MB) | {_mb(rgb.get('peak_gpu_bytes'))} | {_mb(ours.get('peak_gpu_bytes'))} | | | |"
        )
    cpu = t1.get("cpu_time") or {}
    if cpu.get("rgb_t_scene_cpu_s"):
        rows.append(
            f"| t_scene from process CPU time (min) | {_min(cpu['rgb_t_scene_cpu_s'])} | {_min(cpu['ours_t_scene_cpu_s'])} | "
            f"{_pct(acc_rel(cpu['ours_t_scene_cpu_s'], cpu['rgb_t_scene_cpu_s']))} | | |"
        )
        rows.append(
            f"| t_scene_eff at N_exploit={n_ref} from CPU time (min) | {_min(cpu['rgb_t_scene_cpu_s'])} | "
            f"{_min(cpu.get('ours_t_scene_eff_ref_cpu_s'))} | {_pct(cpu.get('t_scene_eff_ref_change'))} | | |"
        )
    tm, mm = ours["time"], ours["memory"]
    parts = [
        "\n".join(rows),
        "",
        f"Entry costs: t_EC = t_warmup + t_train = {_min(tm['t_warmup'])} + {_min(tm['t_train'])} = "
        f"**{_min(tm['t_ec'])} min**; t_exploit + t_exploit_ft = {_min(tm['t_exploit'])} + {_min(tm['t_exploit_ft'])} min "
        f"for N_exploit = {n}.",
        *_entry_cost_lines(ours.get("entry_cost")),
        f"m_EC = m_E + m_D + m_B (+ shared MLP etc.) = {_mb(mm['m_e'])} + {_mb(mm['m_d'])} + {_mb(mm['m_b'])} "
        f"(+ {_mb(mm['m_shared_other'])}) = **{_mb(mm['m_ec'])} MB**; per scene m_T + m_W = "
        f"{_mb(mm['m_t'] / n)} + {_mb(mm['m_w'] / n)} MB.",
        f"Render: ours = latent render {_f(ours['render'].get('render_median_ms'))} ms + decode "
        f"{_f(ours['render'].get('decode_median_ms'))} ms (medians, {ours['render']['n']} views, no autograd).",
    ]
    be = t1.get("break_even_n_exploit")
    parts.append(
        f"Break-even: ours is cheaper in total time from N_exploit = {_f(be, '{:.1f}')} scenes on."
        if be is not None
        else "Break-even: never (the measured t_scene of ours is not below the baseline's)."
    )
    return "\n".join(parts)


def _entry_cost_lines(ec: dict | None) -> list[str]:
    """Where t_EC came from when Ours is a pre-trained 3Da-AE (``table1.ours.entry_cost``); none otherwise."""
    if not ec:
        return []
    parts = ", ".join(f"{k} from {v}" for k, v in (ec.get("from") or {}).items())
    where = "" if str(ec.get("pretrained")) == str(ec.get("package")) else f" ({ec.get('package')})"
    return [f"t_EC is the pre-trained 3Da-AE `{ec.get('pretrained')}`'s{where} entry cost, "
            f"{ec.get('note')}: {parts}."]


def table2_markdown(r: dict) -> str:
    rows = [
        "| method | latent space | micro | macro | train scenes PSNR | train SSIM | exploit scenes PSNR | exploit SSIM | "
        "paper train / exploit PSNR |",
        "|---|:-:|:-:|:-:|---:|---:|---:|---:|---:|",
    ]
    for row in r["table2"]["rows"]:
        tr, ex = row.get("train") or {}, row.get("exploit") or {}
        paper = PAPER_TABLE2.get(row["key"])
        rows.append(
            f"| {row['method']} | {'yes' if row['latent'] else 'no'} | {'yes' if row['micro'] else 'no'} | "
            f"{'yes' if row['macro'] else 'no'} | {_f(tr.get('psnr'))} | {_f(tr.get('ssim'), '{:.4f}')} | "
            f"{_f(ex.get('psnr'))} | {_f(ex.get('ssim'), '{:.4f}')} | "
            + (f"{paper[0]:.2f} / {paper[1]:.2f}" if paper else "—")
            + " |"
        )
    n = r["table2"].get("n_scenes", {})
    note = (
        f"Held-out ({r['table2'].get('split', 'test')}) views; train-scene columns re-learn "
        f"{n.get('train', 'n/a')} scenes of the 3Da-AE training set in the exploit phase, exploit columns "
        f"{n.get('exploit', 'n/a')} never-seen scenes. Tri-Planes rows use {n.get('rgb_train', 'n/a')} / "
        f"{n.get('rgb_exploit', 'n/a')} of those scenes (as the paper, a subset for compute)."
    )
    ae = r["table2"].get("ae_upper_bound")
    lines = ["\n".join(rows), "", note]
    skipped = r.get("skipped_methods") or {}
    if skipped:  # one line: the same reason for every method left out
        lines.append(f"Not run: {', '.join(skipped)}: {next(iter(skipped.values()))}.")
    by_key = {row["key"]: row for row in r["table2"]["rows"]}
    ours, rgb = by_key.get("ours"), by_key.get("rgb")
    if ours and rgb:
        same = []
        for g in ("train", "exploit"):
            o, b = ours.get(f"{g}_on_rgb_scenes"), rgb.get(g)
            if o and b:
                same.append(f"{g} {_f(o['psnr'])} vs {_f(b['psnr'])} dB ({o['n_scenes']} scenes)")
        if same:
            lines.append("On exactly the Tri-Planes (RGB) scenes, Ours vs Tri-Planes (RGB): " + "; ".join(same) + ".")
    diffs = r["table2"].get("differences") or []
    if diffs:
        lines += ["", "PSNR of Ours minus each method on the scenes both learned, mean over scenes with a 95 % "
                  "paired-bootstrap interval over scenes (an interval that excludes 0 is a real difference):", "",
                  "| Ours minus | scenes | group | difference (dB) | 95 % interval (dB) |", "|---|---:|---|---:|---|"]
        for d in diffs:
            lines.append(f"| {d['method']} | {d['n_scenes']} | {d['group']} | {d['diff']:+.2f} | "
                         f"[{d['lo']:+.2f}, {d['hi']:+.2f}] |")
        lines.append("")
    if ae:
        lines.append(
            "Autoencoder reconstruction D(E(x)) of the same views (upper bound for the latent methods): "
            + ", ".join(f"{k} {_f(v.get('psnr'))} dB" for k, v in ae.items())
            + "."
        )
    return "\n".join(lines)


def diagnosis_markdown(r: dict) -> str:
    d = r.get("diagnosis") or {}
    if not d:
        return "Not measured in this run."
    lines = ["Autoencoder ceiling D(E(x)) on the exploit scenes' held-out views, through the stages:", "",
             "| autoencoder | PSNR (dB) | minus base [95 % interval] |", "|---|---:|---|"]
    for k, v in d.get("ae_ceiling", {}).items():
        mb = v.get("minus_base")
        iv = f"{mb['diff']:+.2f} [{mb['lo']:+.2f}, {mb['hi']:+.2f}]" if mb else "-"
        lines.append(f"| {k.replace('_', ' ')} | {_f(v.get('mean_psnr'))} | {iv} |")
    probes = d.get("probe") or {}
    if probes:
        lines += ["", "Latent consistency probe (latent tri-planes fitted on *all* views, held-out ones included, "
                  "frozen autoencoder; PSNR on the held-out views): the gap to the autoencoder's own "
                  "reconstruction is what 3D-inconsistent latents cost even with plentiful views.", "",
                  "| autoencoder | scenes | probe PSNR (dB) | probe latent PSNR | AE D(E(x)) | consistency gap (dB) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for k, v in probes.items():
            lines.append(f"| {k} | {v.get('n_scenes')} | {_f(v.get('probe_psnr'))} | {_f(v.get('probe_latent_psnr'))} | "
                         f"{_f(v.get('ae_psnr'))} | {_f(v.get('consistency_gap_db'))} |")
    return "\n".join(lines)


def time_to_quality_markdown(r: dict) -> str:
    q = r["time_to_quality"]
    if q.get("ours_time_to_rgb_final_s") is None:  # its curve never gets there: say so, not "n/a"
        ours = "Ours does not reach it within its curve"
    else:
        ours = (f"Ours reaches it after {_min(q.get('ours_time_to_rgb_final_s'))} min per scene (exploit only) / "
                f"{_min(q.get('ours_eff_time_to_rgb_final_s'))} min including the entry cost at N_exploit = "
                f"{q.get('n_ref')}")
    if q.get("rgb_time_to_ours_final_s") is None:
        rgb = (f"Tri-Planes (RGB) does not reach ours' final PSNR within its curve ({_min(q.get('rgb_final_time_s'))} "
               "min per scene): the time-to-quality ratio is not measured by this run.")
    else:
        rgb = f"Tri-Planes (RGB) reaches ours' final PSNR after {_min(q.get('rgb_time_to_ours_final_s'))} min per scene."
    lines = [
        f"Tri-Planes (RGB) final held-out PSNR: **{_f(q.get('rgb_final_psnr'))} dB** after "
        f"{_min(q.get('rgb_final_time_s'))} min per scene.",
        f"{ours}; final PSNR {_f(q.get('ours_final_psnr'))} dB after {_min(q.get('ours_final_time_s'))} min.",
        rgb,
    ]
    return "\n".join(lines)


def fig7_markdown(r: dict) -> str:
    f7 = r["fig7"]
    rows = ["| N_exploit | ours t_tot (h) | Tri-Planes (RGB) t_tot (h) |", "|---:|---:|---:|"]
    for n, a, b in zip(f7["n_exploit"], f7["ours_s"], f7["rgb_s"]):
        rows.append(f"| {n} | {a / 3600:.3f} | {b / 3600:.3f} |")
    return "\n".join(rows)


def _pretrained_lines(p: dict | None) -> list[str]:
    if not p:
        return []
    src = p.get("source") or {}
    where = "" if str(p.get("spec")) == str(p.get("path")) else f"{p.get('path')}; "
    return [f"- Ours = the pre-trained 3Da-AE `{p.get('spec')}` ({where}weights sha256 "
            f"{str(p.get('sha256_shared'))[:12]}, from stage `{src.get('stage')}` of `{src.get('run')}`), trained on "
            f"{len(p.get('train_scene_ids') or [])} scenes of the train split, not trained in this benchmark; the "
            f"plain-AE ablation repeats its warm-up ({(p.get('plain_ae_warmup') or {}).get('stage', {}).get('steps')} "
            f"steps, data.shift_grid {(p.get('plain_ae_warmup') or {}).get('shift_grid')}) on those scenes."]


def summary_markdown(r: dict) -> str:
    cfg = r.get("config", {})
    data = r.get("data", {})
    parts = [
        f"# Benchmark: {cfg.get('name', '?')} preset",
        "",
        f"Command: `{r.get('command', '')}`  ",
        f"Started {r.get('started_utc')} UTC, total wall time {_min(r.get('wall_s'))} min"
        + (" in this session (a resumed benchmark: the phases reused from earlier sessions are not in it)."
           if any((ph.get("extra") or {}).get("resumed") for ph in r.get("phases", {}).values()) else "."),
        "",
        "## Machine",
        *_machine_lines(r["machine"]),
        "",
        "## Data",
        f"- `{data.get('root')}` at {data.get('resolution')} px; train scenes {data.get('n_train')}, exploit scenes "
        f"{data.get('n_exploit')}, RGB baseline scenes {data.get('n_rgb')}; held-out views per scene "
        f"{data.get('test_views_per_scene')}.",
        *_pretrained_lines(r.get("pretrained")),
        "",
        "## Table 1: costs per scene (Eq. 8-11)",
        table1_markdown(r),
        "",
        "![costs](table1_costs.png)",
        "",
        "## Table 2: quality on held-out views",
        table2_markdown(r),
        "",
        "## What caps the latent methods (fidelity diagnosis, docs/fidelity.md)",
        diagnosis_markdown(r),
        "",
        "## Time to quality (Fig. 6)",
        time_to_quality_markdown(r),
        "",
        "![time to quality](fig6_time_to_quality.png)",
        "",
        "## Total time vs N_exploit (Fig. 7, Eq. 8 with measured t_EC and t_scene)",
        fig7_markdown(r),
        "",
        "![total time](fig7_total_time.png)",
        "",
        "## Phases (wall time, CPU time, peak RSS)",
        "| phase | wall (s) | CPU (s) | peak RSS (MB) | load avg at end |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, ph in r.get("phases", {}).items():
        la = ph.get("load_average_end")
        if (ph.get("extra") or {}).get("resumed"):
            # Reused from an earlier session of a resumed benchmark: this process neither timed nor held it (the
            # tables take its times from the saved results), so its zeros and this process's RSS would mislead.
            parts.append(f"| {name} | reused | reused | - | - |")
            continue
        parts.append(
            f"| {name} | {ph['wall_s']:.1f} | {ph['cpu_s']:.1f} | {ph['rss_peak_bytes'] / 1e6:.0f} | "
            f"{_f(la[0] if la else None)} |"
        )
    notes = r.get("notes") or []
    if notes:
        parts += ["", "## Notes", *[f"- {n}" for n in notes]]
    return "\n".join(parts) + "\n"


def _save_fig(fig, path: Path) -> None:
    atomic_write(path, lambda p: fig.savefig(p, dpi=120, bbox_inches="tight", format="png"))


def write_plots(r: dict, out_dir: Path) -> list[Path]:
    """Write the three PNG figures; returns their paths."""
    import matplotlib  # imported on use: matplotlib (~0.5 s) only for colour maps and plots

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # imported on use: matplotlib (~0.5 s) only for colour maps and plots

    out_dir = Path(out_dir)
    paths = []

    # Fig. 6: PSNR vs per-scene training time.
    q = r["time_to_quality"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    t_ours = max((q.get("ours_eff_curve") or {}).get("t_s") or [0.0])
    t_rgb = max((q.get("rgb_curve") or {}).get("t_s") or [0.0])
    log_x = t_ours > 0 and t_rgb > 0 and (t_ours < 0.2 * t_rgb or t_rgb < 0.2 * t_ours)
    for key, label, style in (
        ("ours_curve", "Ours (exploit time / N_exploit)", "-o"),
        ("ours_eff_curve", f"Ours incl. t_EC / {q.get('n_ref')}", "--"),
        ("rgb_curve", "Tri-Planes (RGB), mean over scenes", "-"),
    ):
        c = q.get(key)
        if c and c["t_s"]:
            pts = [(t / 60, p) for t, p in zip(c["t_s"], c["psnr"]) if not log_x or t > 0]
            ax.plot([t for t, _ in pts], [p for _, p in pts], style, label=label, markersize=3)
    if log_x:  # the two methods' times differ by more than 5x: a log axis shows both curves
        ax.set_xscale("log")
    if q.get("rgb_final_psnr") is not None:
        ax.axhline(q["rgb_final_psnr"], color="grey", lw=0.8, ls=":", label="Tri-Planes (RGB) final")
    ax.set_xlabel("training wall time per scene (min)")
    ax.set_ylabel("held-out PSNR (dB)")
    ax.set_title("Time to quality (cf. paper Fig. 6)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    p = out_dir / "fig6_time_to_quality.png"
    _save_fig(fig, p)
    plt.close(fig)
    paths.append(p)

    # Fig. 7: total time vs N_exploit.
    f7 = r["fig7"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(f7["n_exploit"], [s / 3600 for s in f7["ours_s"]], "-o", label="Ours: t_EC + N t_scene", markersize=3)
    ax.plot(f7["n_exploit"], [s / 3600 for s in f7["rgb_s"]], "-s", label="Tri-Planes (RGB): N t_scene", markersize=3)
    be = r["table1"].get("break_even_n_exploit")
    if be is not None:
        ax.axvline(be, color="grey", lw=0.8, ls=":", label=f"break-even N = {be:.0f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N_exploit (scenes)")
    ax.set_ylabel("total training time (h)")
    ax.set_title("Total time vs number of scenes (cf. paper Fig. 7)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    p = out_dir / "fig7_total_time.png"
    _save_fig(fig, p)
    plt.close(fig)
    paths.append(p)

    # Table 1 as bars.
    t1 = r["table1"]
    ours, rgb = t1["ours"], t1["rgb"]
    panels = [
        ("t_scene_eff (min)\nN_exploit=%d" % ours["time_ref"]["n_exploit"], rgb["t_scene_s"] / 60, ours["time_ref"]["t_scene_eff"] / 60),
        ("m_scene_eff (MB)\nN_exploit=%d" % ours["memory_ref"]["n_exploit"], rgb["m_scene_bytes"] / 1e6, ours["memory_ref"]["m_scene_eff"] / 1e6),
        ("render (ms / %dx%d view)" % tuple(t1.get("render_resolution", [128, 128])), rgb["render"]["median_ms"],
         ours["render"]["median_ms"]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, (title, b, o) in zip(axes, panels):
        ax.bar(["Tri-Planes\n(RGB)", "Ours"], [b, o], color=["tab:orange", "tab:blue"])
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    p = out_dir / "table1_costs.png"
    _save_fig(fig, p)
    plt.close(fig)
    paths.append(p)
    return paths


def write_report(r: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``summary.md`` and the PNG plots for results ``r`` into ``out_dir``."""
    out_dir = Path(out_dir)
    plots = write_plots(r, out_dir)
    md = out_dir / "summary.md"
    atomic_write_text(md, summary_markdown(r))
    return {"summary": md, **{p.stem: p for p in plots}}
