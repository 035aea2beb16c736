"""Cost of a larger base autoencoder on this machine (issue 15: decide the size from measurements).

For the shipped autoencoder and grown copies of it (`latentscenes ae grow`: x2 channels, +1 layer per block),
measures on the current torch thread count:
  * decode time of one 16 x 16 latent to a 128 x 128 image (no autograd; what a rendered view costs per decode);
  * one pre-training step (encode + decode + L1 backward + Adam) of 8 crops of 64 x 64.
and puts the decode next to the view render times of a benchmark results file (`latentscenes bench`), where
ours decodes each view `g^2` times (`render.offset_ensemble = g`).

Usage: OMP_NUM_THREADS=1 taskset -c 0 python scripts/experiments/ae_size_timing.py \
           [--bench docs/bench-cpu-s10/results.json] [--out docs/ae-runs/size_timing.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

import torch

from latentscenes.autoencoder.grow import grow_autoencoder
from latentscenes.autoencoder.model import AEConfig, load_autoencoder
from latentscenes.utils.machine import machine_brief


def _median_s(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", type=Path, default=Path("docs/bench-cpu-s10/results.json"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.manual_seed(0)
    base = load_autoencoder(AEConfig())
    variants = [("shipped", 1, 0), ("+1 layer per block", 1, 1), ("x2 channels", 2, 0)]
    # grown before any timing step changes the shipped weights
    models = {n: base if (w, e) == (1, 0) else grow_autoencoder(base, w, e) for n, w, e in variants}
    rows = []
    for name, width, extra in variants:
        ae = models[name]
        z = torch.randn(1, 4, 16, 16)
        with torch.no_grad():
            dec = _median_s(lambda: ae.decode(z), args.repeats)
        ae.train()
        opt = torch.optim.Adam(ae.parameters(), lr=1e-6)
        x = torch.rand(8, 3, 64, 64) * 2 - 1

        def step() -> None:
            y = ae.vae.decode(ae.vae.encode(x).latent_dist.mean).sample
            (y - x).abs().mean().backward()
            opt.step()
            opt.zero_grad()

        st = _median_s(step, max(3, args.repeats // 2))
        rows.append({"model": name, "width_factor": width, "extra_layers": extra,
                     "params_encoder": ae.num_parameters("encoder"), "params_decoder": ae.num_parameters("decoder"),
                     "decode_128_ms": round(1000 * dec, 1), "train_step_b8_64_s": round(st, 3)})
        print(json.dumps(rows[-1]), flush=True)
    out = {"threads": torch.get_num_threads(), "machine": machine_brief(), "rows": rows}
    if args.bench.is_file():
        t1 = json.loads(args.bench.read_text())["table1"]
        ours, rgb = t1["ours"]["render"], t1["rgb"]["render"]
        ens = re.findall(r'"offset_ensemble": (\d+)', args.bench.read_text())
        g2 = int(ens[0]) ** 2 if ens else 1  # the bench's render.offset_ensemble g: g^2 decodes per view
        out["bench"] = {"file": str(args.bench), "rgb_render_128_ms": rgb["median_ms"],
                        "ours_latent_render_ms": ours["render_median_ms"], "ours_decode_ms": ours["decode_median_ms"],
                        "decodes_per_view": g2}
        for r in rows:  # ours' view time with this decoder: the latent render + g^2 decodes
            r["ours_view_128_ms_estimated"] = round(ours["render_median_ms"] + g2 * r["decode_128_ms"], 1)
            r["below_rgb_render"] = r["ours_view_128_ms_estimated"] < rgb["median_ms"]
        print(json.dumps(out["bench"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
