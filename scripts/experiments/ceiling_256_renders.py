"""The autoencoder ceiling of true 256 px renders, decoded and area-averaged to 128 px, against the 128 px ground
truth of the same cameras (two builds of one dataset: `data build flightgear --resolution 128` and `256`, same seed).

Usage: python scripts/experiments/ceiling_256_renders.py RUN DATA128 DATA256 OUT.json
  `p128`: D(E(x128)) vs x128; `p256`: pool(D(E(x256))) vs x128; `p256at256`: D(E(x256)) vs x256; `gt_ds`: pool(x256)
  vs x128 (the two renders' own difference). docs/fidelity.md, twenty-ninth session.
"""
import json
import sys

import torch
import torch.nn.functional as F

from latentscenes.api import load
from latentscenes.data.dataset import MultiSceneDataset

torch.set_num_threads(1)
run_dir, data128, data256, out = sys.argv[1:5]
run = load(run_dir, scenes="exploit")
ae = run.model.autoencoder
d128, d256 = MultiSceneDataset(data128), MultiSceneDataset(data256)


def psnr(a, b):
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


def rec(x):
    return (ae.decode(ae.encode_mean(x * 2 - 1)).clamp(-1, 1) + 1) / 2


res = {}
with torch.no_grad():
    for sid in run.groups["exploit"]:
        a, b = d128.load(sid), d256.load(sid)
        if not torch.allclose(a.c2w, b.c2w, atol=1e-5):
            raise SystemExit(f"{sid}: the two builds' cameras differ (another seed or view count?)")
        r = {"p128": [], "p256": [], "p256at256": [], "gt_ds": []}
        for i in [i for i, s in enumerate(a.split) if s == "test"]:
            x1, x2 = a.images[i:i + 1], b.images[i:i + 1]
            y2 = rec(x2)
            r["p128"].append(psnr(rec(x1), x1))
            r["p256"].append(psnr(F.avg_pool2d(y2, 2), x1))
            r["p256at256"].append(psnr(y2, x2))
            r["gt_ds"].append(psnr(F.avg_pool2d(x2, 2), x1))
        res[sid] = {k: sum(v) / len(v) for k, v in r.items()}
        print(sid, {k: round(v, 2) for k, v in res[sid].items()}, flush=True)
m = {k: sum(r[k] for r in res.values()) / len(res) for k in next(iter(res.values()))}
print("mean", {k: round(v, 2) for k, v in m.items()})
json.dump({"run": run_dir, "scenes": res, "mean": m}, open(out, "w"), indent=1)
