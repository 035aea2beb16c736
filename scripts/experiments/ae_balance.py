"""Balance the latent channels of a finished autoencoder file (autoencoder/balance.py), re-derive its tanh scale.

    python scripts/experiments/ae_balance.py IN.safetensors OUT.safetensors --data DATA [--scenes 32 --views 4]
        [--mode std|sensitivity] [--resolution 64] [--report-only]

The same operation as ``PretrainConfig.balance_channels`` at the end of ``ae pretrain`` / ``ae finetune``, for a
file trained without it (the stds come from DATA's train-split train views at the dataset's resolution).
Prints the per-channel stds before/after and the reconstruction difference on those views (should be ~1e-5).
"""

from __future__ import annotations

import argparse
import json

import torch

from latentscenes.autoencoder.balance import balance_latent_channels, channel_std, decoder_sensitivity
from latentscenes.autoencoder.data import load_dataset_views, to_model_space
from latentscenes.autoencoder.model import LatentAutoencoder, tanh_scale_for_std
from latentscenes.autoencoder.pretrain import latent_std

ap = argparse.ArgumentParser()
ap.add_argument("src"); ap.add_argument("dst"); ap.add_argument("--data", required=True)
ap.add_argument("--scenes", type=int, default=32); ap.add_argument("--views", type=int, default=4)
ap.add_argument("--mode", default="std", choices=["std", "sensitivity"])
ap.add_argument("--resolution", type=int, default=None, help="load the views at this size (default: the dataset's)")
ap.add_argument("--report-only", action="store_true", help="print per-channel std and decoder sensitivity (DST unused)")
a = ap.parse_args()
ae = LatentAutoencoder.load(a.src).eval()
imgs, _ = load_dataset_views(a.data, "train", "train", max_scenes=a.scenes, views_per_scene=a.views, resolution=a.resolution, progress=False)
x = to_model_space(imgs)
if a.report_only:
    std = channel_std(ae, x)
    sens = decoder_sensitivity(ae, x, std=std)
    print(json.dumps({"ae": a.src, "data": a.data, "images": int(len(x)), "std": [round(v, 4) for v in std.tolist()],
                      "sensitivity": [round(v, 4) for v in sens.tolist()],
                      "std_x_sensitivity": [round(v, 4) for v in (std * sens).tolist()]}))
    raise SystemExit(0)
with torch.no_grad():
    y0 = torch.cat([ae.reconstruct(x[i:i + 16]) for i in range(0, len(x), 16)])
rep = balance_latent_channels(ae, x, mode=a.mode)
with torch.no_grad():
    y1 = torch.cat([ae.reconstruct(x[i:i + 16]) for i in range(0, len(x), 16)])
old_s = ae.tanh_scale
ae.tanh_scale = tanh_scale_for_std(latent_std(ae, imgs))
ae.info = {**ae.info, "channel_balance": {**rep, "data": a.data, "images": int(len(x)), "tanh_scale_before": old_s}}
ae.save(a.dst)
print(json.dumps({"std_before": [round(v, 3) for v in rep["std_before"]], "std_after": [round(v, 3) for v in rep["std_after"]],
                  "tanh_scale": [old_s, ae.tanh_scale], "max_recon_diff": float((y1 - y0).abs().max())}))
