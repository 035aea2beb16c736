"""Fig. 6's time-to-quality figure of a benchmark recomputed against another Tri-Planes (RGB) fit of the same scenes.

Usage: python scripts/experiments/ttq_rgb_swap.py REPORT/results.json FIT/results.json [--metrics RGB.metrics.json]

FIT is a `latentscenes fit-rgb` output fitted with curves (`eval_every` > 0) on the benchmark's RGB curve scenes (the
twentieth session: the `tiny-cpu` planes at T = 64 instead of the benchmark's T = 32). Ours' curve is the
benchmark's own (per-scene time, mean held-out PSNR of the curve scenes); the crossing uses the benchmark's code
(`bench/tables.py` `build_time_to_quality`). Prints the old and the new ratio "time for RGB to reach ours' final PSNR
/ ours' time" (issue "Fidelity first": target >= 5). With --metrics (an `eval` of another RGB fit, e.g. more scenes)
also the benchmark's Ours minus its own RGB and minus that fit, 95 % paired bootstrap over the scenes both hold
(the benchmark's RGB exploit scenes, then every scene of the file). Reads only the given files.
"""

from __future__ import annotations

import argparse
import json

from latentscenes.bench.tables import build_time_to_quality
from latentscenes.evaluation.stats import paired_bootstrap, scene_values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report")
    ap.add_argument("fit")
    ap.add_argument("--metrics", help="an `eval` JSON of another RGB fit: quality differences against it")
    a = ap.parse_args()
    r = json.load(open(a.report))
    fit = json.load(open(a.fit))
    old = r["time_to_quality"]
    names = {c.get("scene_id") for c in old["rgb_scene_curves"]} - {None}
    curves = [{"t_s": [t for t, _ in s["curve"]], "psnr": [p for _, p in s["curve"]], "scene_id": s["scene_id"]}
              for s in fit["scenes"] if not names or s["scene_id"] in names]
    if not curves or any(len(c["t_s"]) < 2 for c in curves):
        raise SystemExit(f"{a.fit}: no curves for the benchmark's curve scenes (fit with eval_every > 0)")
    new = build_time_to_quality(old["ours_curve"], 1, 0.0, curves, old["n_ref"])
    t_ours = old["ours_final_time_s"]
    for label, t in (("benchmark's RGB", old), ("this RGB fit", new)):
        rt = t["rgb_time_to_ours_final_s"]
        ratio = "never" if rt is None else f"{rt / t_ours:.2f}x"
        print(f"{label:16s}: final {t['rgb_final_psnr']:.2f} dB after {t['rgb_final_time_s']:.1f} s; reaches ours' "
              f"final {old['ours_final_psnr']:.2f} dB after {rt if rt is None else round(rt, 1)} s = {ratio} ours' "
              f"{t_ours:.1f} s per scene")
    print(f"scenes: {sorted(c['scene_id'] for c in curves)}")
    if a.metrics:
        ev = r["evaluations"]
        ours, rgb = scene_values(ev["ours"]), scene_values(ev["rgb"])
        other = scene_values(json.load(open(a.metrics)))
        four = set(r["data"]["rgb_scene_ids"]["exploit"])
        for label, base, keep in (("benchmark's RGB, its exploit scenes", rgb, four),
                                  (f"{a.metrics}, the benchmark's RGB exploit scenes", other, four),
                                  (f"{a.metrics}, every scene it holds", other, set(other))):
            b = paired_bootstrap({k: v for k, v in ours.items() if k in keep}, base)
            print(f"Ours minus {label}: {b['diff']:+.2f} dB [{b['lo']:+.2f}, {b['hi']:+.2f}] ({b['n_scenes']} scenes)")


if __name__ == "__main__":
    main()
