"""L_ae on a latent window against the whole image (docs/fidelity.md, thirtieth session, `exploit.finetune.ae_crop`).

Usage: python scripts/experiments/window_decode_check.py [DATA] [SCENE_INDEX]   (default data/fg128-rgb4, 3)
The `shipped-128` 3Da-AE at `ae.upscale = 2` on the scene's first 2 views: the whole decode's L_ae (MSE), and for a
few 16 x 16 and 24 x 24 windows of the 32 x 32 latents the window decode's MSE to the image, the same pixels of the
whole decode's MSE to the image, and the MSE between the two decodes (the decoder's mid-block attention sees only
the window), on all the window's pixels and on its interior (2 latent pixels in from each side).
"""
import sys

import torch

from latentscenes.data.dataset import MultiSceneDataset
from latentscenes.training.pipeline import load_run_autoencoder

torch.set_num_threads(1)
data = sys.argv[1] if len(sys.argv) > 1 else "data/fg128-rgb4"
index = int(sys.argv[2]) if len(sys.argv) > 2 else 3
ds = MultiSceneDataset(data)
ae = load_run_autoencoder("shipped-128", "cpu")
ae.upscale = 2
ae.eval()
sid = ds.split_scene_ids("exploit")[index]
x = ds.load(sid).images[:2] * 2 - 1  # [2, 3, H, W] in [-1, 1]
f = ae.downsample_factor  # image pixels per latent pixel (4)


def mse(a, b):
    return float(((a - b) ** 2).mean())


with torch.no_grad():
    z = ae.encode(x)
    full = ae.decode(z)
    print(sid, "latents", tuple(z.shape), "whole-image L_ae", round(mse(full, x), 5))
    for c in (16, 24):
        for i, j in ((0, 0), (8, 8), (16, 4)):
            if i + c > z.shape[-2] or j + c > z.shape[-1]:
                continue
            y = ae.decode(z[..., i:i + c, j:j + c])
            xw = x[..., f * i:f * (i + c), f * j:f * (j + c)]
            fw = full[..., f * i:f * (i + c), f * j:f * (j + c)]
            m = 2 * f
            print(f"window {c} at ({i},{j}): L_ae {mse(y, xw):.5f}, whole decode there {mse(fw, xw):.5f}, "
                  f"window vs whole decode {mse(y, fw):.5f} (interior {mse(y[..., m:-m, m:-m], fw[..., m:-m, m:-m]):.6f})")
