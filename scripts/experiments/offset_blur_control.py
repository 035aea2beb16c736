"""Control for the offset ensemble (docs/fidelity.md, sixth session): is its gain just a blur?

For every held-out view of an exploit batch: PSNR of the one decode, of that decode blurred with a 3x3
Gaussian (sigma 0.5 and 0.8), and of the offset ensemble (`render.offset_ensemble` 2). Writes a JSON of
per-scene means. Usage: python scripts/experiments/offset_blur_control.py BATCH OUT.json [DATA]
(DATA: the dataset folder, when the batch does not record it)
"""

from __future__ import annotations

import json
import math
import sys

import torch
import torch.nn.functional as F

from latentscenes.metrics import psnr_per_image, to_unit_range
from latentscenes.evaluation.model import render_decoded, render_resolution, set_offset_ensemble
from latentscenes.evaluation.runs import load_ground_truth, load_run


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    w = torch.tensor([math.exp(-1 / (2 * sigma * sigma)), 1.0, math.exp(-1 / (2 * sigma * sigma))])
    k = (w[:, None] * w[None, :] / w.sum() ** 2).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=x.shape[1])


def main(batch: str, out: str, data: str | None = None) -> None:
    torch.set_num_threads(1)
    run = load_run(batch, scenes="exploit", device="cpu")
    ids = run.groups["exploit"]
    gts, _ = load_ground_truth(data or run.data_root, ids, run.resolution)
    res = {}
    for sid in ids:
        sc = gts[sid]
        hw = render_resolution(run.model, sc.resolution)
        rows = {"one": [], "blur0.5": [], "blur0.8": [], "ensemble": []}
        for i in sc.view_indices("test"):
            gt = sc.images[i : i + 1].float()
            c2w, K = sc.c2w[i : i + 1].float(), sc.K[i : i + 1].float()
            set_offset_ensemble(run.model, 1)
            one = render_decoded(run.model, sid, c2w, K, hw).rgb
            set_offset_ensemble(run.model, 2)
            ens = render_decoded(run.model, sid, c2w, K, hw).rgb
            for name, img in (("one", one), ("blur0.5", gaussian_blur(one, 0.5)), ("blur0.8", gaussian_blur(one, 0.8)),
                              ("ensemble", ens)):
                rows[name].append(float(psnr_per_image(to_unit_range(img), gt)[0]))
        res[sid] = {k: sum(v) / len(v) for k, v in rows.items()}
    mean = {k: sum(r[k] for r in res.values()) / len(res) for k in next(iter(res.values()))}
    print(json.dumps(mean))
    with open(out, "w") as f:
        json.dump({"batch": batch, "mean": mean, "scenes": res}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
