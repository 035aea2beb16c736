"""The autoencoder ceiling D(E(x)) on held-out views when the image is upsampled 2x before encoding and the decode
area-averaged back (what `ae.upscale = 2` does; bilinear and bicubic), next to the plain 8x one.

Usage: python scripts/experiments/ceiling_upscaled.py RUN DATA OUT.json [N_SCENES]
  RUN: an exploit batch (its scenes' decoder is used), or `base` (the shipped base autoencoder, on the first
  N_SCENES exploit-split scenes of DATA, default 10); DATA: the dataset; PSNR per view, mean per scene, then over
  scenes. `*_noae` is the upsample-then-pool round trip alone (the floor the resampling sets). docs/fidelity.md,
  twenty-ninth session.
"""
import json
import sys

import torch
import torch.nn.functional as F

from latentscenes.api import load
from latentscenes.autoencoder.model import AEConfig, load_autoencoder
from latentscenes.data.dataset import MultiSceneDataset

torch.set_num_threads(1)
run_dir, data, out = sys.argv[1:4]
ds = MultiSceneDataset(data)
if run_dir == "base":
    ae = load_autoencoder(AEConfig(source="shipped"))
    scene_ids = ds.split_scene_ids("exploit")[: int(sys.argv[4]) if len(sys.argv) > 4 else 10]
else:
    ae = load(run_dir, scenes="exploit").model.autoencoder
    scene_ids = load(run_dir, scenes="exploit").groups["exploit"]
encode = getattr(ae, "encode_mean", None) or ae.encode  # the run's evaluation view, or a LatentAutoencoder (mean)


def psnr(a, b):
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


def mean_psnr(y, x):
    return sum(psnr(y[i:i + 1], x[i:i + 1]) for i in range(len(x))) / len(x)


res = {}
with torch.no_grad():
    for sid in scene_ids:
        v = ds.load(sid)
        x = v.images[[i for i, s in enumerate(v.split) if s == "test"]]  # [V,3,H,W] in [0,1]
        r = {"plain": mean_psnr((ae.decode(encode(x * 2 - 1)).clamp(-1, 1) + 1) / 2, x)}
        for mode in ("bilinear", "bicubic"):
            u = F.interpolate(x, scale_factor=2, mode=mode, align_corners=False).clamp(0, 1)
            y = (ae.decode(encode(u * 2 - 1)).clamp(-1, 1) + 1) / 2
            r[mode] = mean_psnr(F.avg_pool2d(y, 2), x)
            r[mode + "_noae"] = mean_psnr(F.avg_pool2d(u, 2), x)
        res[sid] = r
        print(sid, {k: round(val, 2) for k, val in r.items()}, flush=True)
m = {k: sum(r[k] for r in res.values()) / len(res) for k in next(iter(res.values()))}
print("mean", {k: round(val, 2) for k, val in m.items()})
json.dump({"run": run_dir, "data": data, "scenes": res, "mean": m}, open(out, "w"), indent=1)
