"""Each scene's train-view latent PSNR minus its flat prediction's (training/refit.py) in finished exploit folders:
how far from collapse every fit is (docs/fidelity.md, nineteenth session). On a fit-only batch
(`--set exploit.finetune_decoder=false`) the planes are the fit's, as the refit sees them; after a decoder
fine-tune, the fine-tuned planes'.
Usage: python scripts/experiments/flat_gap.py EXPLOIT_DIR ..."""

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from latentscenes.training.data import shift_views
from latentscenes.training.pipeline import load_exploited, load_run_config, load_view_table
from latentscenes.training.refit import fit_latent_psnr, flat_latent_psnr

torch.set_num_threads(1)
for d in map(Path, sys.argv[1:]):
    cfg = load_run_config(d)
    system = load_exploited(d, "cpu")
    table, _, _, _ = load_view_table(cfg, cfg.data.exploit_split, cfg.data.n_exploit_scenes, cfg.data.path)
    table = shift_views(table, cfg.data.shift_grid, int(system.ae.downsample_factor))
    latents = load_file(str(d / "cache" / "latents-exploit.safetensors"))["latents"]  # the batch's cached targets
    if latents.shape[0] != len(table):
        sys.exit(f"{d}: its latent cache holds {latents.shape[0]} views, the table {len(table)}")
    fit, flat = fit_latent_psnr(system, table, latents), flat_latent_psnr(table, latents)
    gaps = {s: fit[s] - flat[s] for s in fit}
    print(f"{d}: fit minus flat {min(gaps.values()):.2f} to {max(gaps.values()):.2f} dB;",
          ", ".join(f"{s} {v:.2f}" for s, v in gaps.items()))
