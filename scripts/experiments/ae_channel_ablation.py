"""How much of a base autoencoder's reconstruction each group of latent channels carries (issue 15, docs/autoencoder.md).

    python scripts/experiments/ae_channel_ablation.py AE --data DATA [--scenes 10 --views 8 --resolution 128]
        [--group 0-3 --group 4-15 ...]

Encodes DATA's exploit scenes' test views (posterior mean), then decodes (a) the full latent and (b) for each
--group, the latent with those channels replaced by their mean over all encoded views (a constant, so the decoder
keeps its operating point; zeroing would move it off the data). Prints one JSON line: PSNR (dB, images in [0, 1])
of each decode against the images. A group whose replacement costs ~0 dB carries nothing the decoder uses,
whatever its std; std x decoder sensitivity (scripts/experiments/ae_balance.py --report-only) is the linear proxy.
"""

from __future__ import annotations

import argparse
import json

import torch

from latentscenes.autoencoder.data import load_dataset_views, to_model_space
from latentscenes.autoencoder.model import LatentAutoencoder
from latentscenes.metrics import psnr_per_image, to_unit_range

ap = argparse.ArgumentParser()
ap.add_argument("ae"); ap.add_argument("--data", required=True)
ap.add_argument("--scenes", type=int, default=10); ap.add_argument("--views", type=int, default=8)
ap.add_argument("--resolution", type=int, default=128)
ap.add_argument("--group", action="append", default=[], help="channels a-b (inclusive) replaced by their mean")
a = ap.parse_args()
ae = LatentAutoencoder.load(a.ae).eval()
imgs, _ = load_dataset_views(a.data, "exploit", "test", max_scenes=a.scenes, views_per_scene=a.views,
                             resolution=a.resolution, progress=False)
x = to_model_space(imgs)
C = ae.latent_channels
groups = a.group or (["0-3", f"4-{C - 1}"] if C > 4 else [f"{c}-{c}" for c in range(C)])


def psnr(y: torch.Tensor) -> float:
    """Mean over images of the per-image PSNR, images in [0, 1] (the evaluation's metric, latentscenes/metrics.py)."""
    return float(psnr_per_image(to_unit_range(y), to_unit_range(x)).mean())


with torch.no_grad():
    z = torch.cat([ae.encode(x[i:i + 16]) for i in range(0, len(x), 16)])
    mean = z.mean(dim=(0, 2, 3), keepdim=True)
    dec = lambda zz: torch.cat([ae.decode(zz[i:i + 16]) for i in range(0, len(zz), 16)])  # noqa: E731
    out = {"ae": a.ae, "data": a.data, "images": len(x), "resolution": a.resolution, "full": round(psnr(dec(z)), 3)}
    for g in groups:
        lo, hi = (int(v) for v in g.split("-"))
        zz = z.clone()
        zz[:, lo:hi + 1] = mean[:, lo:hi + 1]
        out[f"without {g}"] = round(psnr(dec(zz)), 3)
print(json.dumps(out))
