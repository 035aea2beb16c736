"""Merge evaluation JSONs of disjoint scene sets (the same protocol and views per scene) into one, so that
summarize.py can pair it with a run over their union. The overall mean is recomputed as `latentscenes eval` averages
(per image, then a scene's views, then the scenes). Usage: python scripts/experiments/merge_metrics.py OUT.json A.json B.json ..."""

import json
import sys
from pathlib import Path

out, parts = Path(sys.argv[1]), [json.loads(Path(p).read_text()) for p in sys.argv[2:]]
scenes: dict = {}
for p in parts:
    dup = set(scenes) & set(p["scenes"])
    if dup:
        sys.exit(f"scenes in more than one file: {sorted(dup)}")
    scenes.update(p["scenes"])
n_views = sum(p["overall"]["n_views"] for p in parts)
keys = set.intersection(*(set(p["overall"]["mean"]) for p in parts))
mean = {k: sum(p["overall"]["mean"][k] * p["overall"]["n_scenes"] for p in parts) / len(scenes) for k in sorted(keys)}
merged = {"merged_from": sys.argv[2:], "protocol": parts[0].get("protocol"), "scenes": scenes,
          "overall": {"n_scenes": len(scenes), "n_views": n_views, "mean": mean}}
out.write_text(json.dumps(merged, indent=1))
print(f"{out}: {len(scenes)} scenes, {n_views} views, PSNR {mean.get('psnr', float('nan')):.2f}")
