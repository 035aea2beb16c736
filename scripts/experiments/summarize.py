"""Table of held-out metrics for several evaluation JSONs, each minus the first with a 95 % paired-bootstrap
interval over scenes. Usage: python scripts/experiments/summarize.py BASE.metrics.json OTHER.metrics.json ...
(an argument NAME=PATH labels a row; default label: the file stem)."""

import json
import sys
from pathlib import Path

from latentscenes.evaluation.stats import paired_bootstrap, scene_values


def load(arg):
    name, _, path = arg.rpartition("=") if "=" in arg else (Path(arg).name.split(".")[0], "", arg)
    return name, json.loads(Path(path).read_text())


rows = [load(a) for a in sys.argv[1:]]
base_name, base = rows[0]
print(f"| variant | scenes | PSNR (dB) | SSIM | latent PSNR | AE D(E(x)) | minus {base_name} [95 % CI] |")
print("|---|---:|---:|---:|---:|---:|---|")
for name, r in rows:
    m = r["overall"]["mean"]
    d = "-"
    if r is not base:
        b = paired_bootstrap(scene_values(r), scene_values(base))
        d = f"{b['diff']:+.2f} [{b['lo']:+.2f}, {b['hi']:+.2f}]"
    print(f"| {name} | {r['overall']['n_scenes']} | {m['psnr']:.2f} | {m['ssim']:.3f} | "
          f"{m.get('latent_psnr', float('nan')):.2f} | {m.get('ae_psnr', float('nan')):.2f} | {d} |")
