"""Per scene: ours' held-out PSNR minus Tri-Planes (RGB)'s, next to the autoencoder's reconstruction D(E(x)) of the
same views after ours' exploit, and the correlation of the two over the scenes both learned (docs/fidelity.md,
twenty-third session).
Usage: python scripts/experiments/gap_vs_ae.py OURS RGB
OURS / RGB: a `latentscenes eval` metrics file, or `RESULTS.json:METHOD` for one evaluation of a benchmark's
results.json (`ours`, `rgb`, `plain-ae`), e.g. `docs/bench-cpu-128/results.json:rgb`."""

import json
import sys

import numpy as np

from latentscenes.evaluation.stats import scene_values


def load(arg: str) -> dict:
    path, _, method = arg.partition(":")
    data = json.loads(open(path).read())
    if method:
        if "evaluations" not in data or method not in data["evaluations"]:
            sys.exit(f"{path}: no evaluation {method!r} (a benchmark's results.json has evaluations.<method>)")
        data = data["evaluations"][method]
    return data


if len(sys.argv) != 3:
    sys.exit(__doc__)
ours, rgb = load(sys.argv[1]), load(sys.argv[2])
o, r, ae = scene_values(ours), scene_values(rgb), scene_values(ours, "ae_psnr")
lat = scene_values(ours, "latent_psnr")  # the planes' render against E(x) of the same held-out view
common = [k for k in o if k in r]
if len(common) < 3:
    sys.exit(f"only {len(common)} scenes in both files: a correlation needs 3 or more")
print("| scene | ours | RGB | ours - RGB | AE ceiling | latent PSNR |\n|---|---:|---:|---:|---:|---:|")
for k in common:
    print(f"| {k} | {o[k]:.2f} | {r[k]:.2f} | {o[k] - r[k]:+.2f} | {ae[k]:.2f} | {lat[k]:.2f} |")
gap = np.array([o[k] - r[k] for k in common])
ceiling = np.array([ae[k] for k in common])
latent = np.array([lat[k] for k in common])
print(f"\n{len(common)} scenes: mean gap {gap.mean():+.2f} dB; correlation of the gap with the AE ceiling "
      f"r = {np.corrcoef(gap, ceiling)[0, 1]:.2f}, with the latent PSNR r = {np.corrcoef(gap, latent)[0, 1]:.2f}")
