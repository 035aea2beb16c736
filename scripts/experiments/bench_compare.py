"""Compare two benchmark runs (``latentscenes bench``'s results.json) method by method, scene by scene.

Usage: python scripts/experiments/bench_compare.py NEW OLD [--metric psnr] [--scenes ID,ID,...]

For each method both runs evaluated: the mean per-scene difference NEW - OLD over the exploit scenes both hold, with
its paired bootstrap interval (``latentscenes.evaluation.stats``), and how many scenes are bit-identical (a method
that did not change between the runs, e.g. Tri-Planes (RGB) or the plain-AE ablation, should be). Then within NEW:
ours minus each other method, on the scenes both hold; and OLD's ours minus NEW's other methods (where the baseline
is the same in both, what OLD's model would have measured in NEW). ``--scenes``: only these exploit scenes (a subset,
e.g. those no recipe was chosen on). Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latentscenes.evaluation.stats import format_interval, paired_bootstrap, scene_values


def exploit_values(results: dict, method: str, metric: str, only: set[str] | None = None) -> dict[str, float]:
    ids = set(results["data"]["exploit_scene_ids"])
    ids = ids & only if only is not None else ids
    return {s: v for s, v in scene_values(results["evaluations"][method], metric).items() if s in ids}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("new", type=Path)
    ap.add_argument("old", type=Path)
    ap.add_argument("--metric", default="psnr")
    ap.add_argument("--scenes", default=None, help="comma-separated exploit scene ids to restrict to")
    a = ap.parse_args()
    only = set(a.scenes.split(",")) if a.scenes else None
    new, old = (json.loads(Path(p).read_text()) for p in (a.new, a.old))
    print(f"NEW {a.new}  OLD {a.old}  ({a.metric}, exploit scenes{': ' + a.scenes if a.scenes else ''})")
    for m in [m for m in new["evaluations"] if m in old["evaluations"]]:
        n, o = exploit_values(new, m, a.metric, only), exploit_values(old, m, a.metric, only)
        same = sum(1 for s in n if s in o and n[s] == o[s])
        common = [s for s in n if s in o]
        mean = sum(n[s] for s in common) / max(len(common), 1)
        print(f"  {m:10s} NEW - OLD {format_interval(paired_bootstrap(n, o))}  (NEW mean {mean:.2f} on "
              f"{len(common)} scenes; {same} bit-identical)")
    for label, res in (("NEW", new), ("OLD", old)):
        if "ours" not in res["evaluations"]:
            continue
        ours = exploit_values(res, "ours", a.metric, only)
        for m in [m for m in new["evaluations"] if m != "ours"]:
            other = exploit_values(new, m, a.metric, only)
            print(f"  {label} ours - NEW {m:10s} {format_interval(paired_bootstrap(ours, other))} on "
                  f"{len(set(ours) & set(other))} scenes")


if __name__ == "__main__":
    main()
