"""Where ours' per-scene time goes, against the time-to-quality target (issue "Fidelity first": Tri-Planes (RGB)
needs >= 5x ours' per-scene time to reach ours' final PSNR), from a benchmark's results.json.

Usage: python scripts/experiments/ttq_budget.py REPORT/results.json [--target 5]

Prints ours' t_scene split into its measured parts (latent encoding, Encode-Scene fit, refit of collapsed fits,
decoder fine-tune; each stage's own clock / N_exploit), the time Tri-Planes (RGB) takes to reach ours' final PSNR
(Fig. 6, its mean curve), the per-scene time the target allows (that time / target) and how much each part would
have to shrink. Reads only the file; computes nothing that the benchmark did not measure.
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results")
    ap.add_argument("--target", type=float, default=5.0, help="required ratio RGB time-to-ours-quality / ours t_scene")
    a = ap.parse_args()
    r = json.load(open(a.results))
    ex = r["stage_results"]["ours/exploit"]
    n = len(ex["scene_ids"])
    parts = {"latent encoding (cache)": ex["latent_cache_s"]}
    for st in ("exploit_fit", "exploit_refit", "exploit_finetune"):
        rec = ex["stages"].get(st)
        if rec:
            parts[st] = rec["train_s"]
    per = {k: v / n for k, v in parts.items()}
    t_scene = sum(per.values())
    ttq = r["time_to_quality"]
    rgb_t = ttq.get("rgb_time_to_ours_final_s")
    print(f"{a.results}: N_exploit = {n}; ours' final PSNR on the curve scenes {ttq['ours_final_psnr']:.2f} dB, "
          f"Tri-Planes (RGB) final {ttq['rgb_final_psnr']:.2f} dB")
    print(f"{'part':28s} {'s / scene':>10s} {'share':>6s}")
    for k, v in per.items():
        print(f"{k:28s} {v:10.1f} {100 * v / t_scene:5.0f}%")
    print(f"{'t_scene (sum)':28s} {t_scene:10.1f}")
    fts = ex["stages"].get("exploit_finetune", {})
    if fts.get("steps"):
        print(f"fine-tune: {fts['steps']} steps, {fts['train_s'] / fts['steps']:.2f} s per step")
    if rgb_t is None:
        print("Tri-Planes (RGB) never reaches ours' final PSNR on its curve: the ratio is unbounded")
        return
    allowed = rgb_t / a.target
    print(f"Tri-Planes (RGB) reaches ours' final PSNR after {rgb_t:.1f} s per scene: ratio {rgb_t / t_scene:.2f}x; "
          f"the {a.target:g}x target allows {allowed:.1f} s per scene ({allowed / t_scene:.2f} of today's)")
    no_ft = t_scene - per.get("exploit_finetune", 0.0)
    print(f"without any fine-tune time, ours would take {no_ft:.1f} s per scene: "
          + ("within the target" if no_ft <= allowed else f"still {no_ft / allowed:.1f}x the allowed time"))


if __name__ == "__main__":
    main()
