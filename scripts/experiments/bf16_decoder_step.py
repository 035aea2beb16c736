"""Time one decoder forward + backward (the exploit fine-tune's costly part) in fp32, under bf16 autocast, and both
with channels-last memory, at one thread; then how far a bf16 decode is from the fp32 one (docs/fidelity.md,
thirty-third session). Writes nothing.

Usage: python scripts/experiments/bf16_decoder_step.py [PKG] [--upscale U] [--batch B] [--repeats N]
PKG: a pre-trained 3Da-AE folder (default runs/s32/pkg-decren-up2-300, the finer-grid candidate) or `shipped-128`.
bf16 is only fast where the CPU computes it natively (AVX512-bf16 / AMX; `utils.machine.bf16_is_fast`).
"""

from __future__ import annotations

import argparse
import time

import torch

from latentscenes.training.pipeline import load_trained
from latentscenes.utils.machine import bf16_is_fast


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pkg", nargs="?", default="runs/s32/pkg-decren-up2-300")
    ap.add_argument("--upscale", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    ae = load_trained(a.pkg, "cpu").ae
    ae.upscale, ae.amp = a.upscale, False  # autocast by hand below, to time both on the same module
    for p in ae.vae.parameters():
        p.requires_grad_(True)  # load_trained freezes them
    print(f"native bf16: {bf16_is_fast('cpu')}; latents {a.batch} x {ae.latent_channels} x 16u x 16u, u = {a.upscale}")
    torch.manual_seed(0)
    side = 16 * a.upscale
    z = torch.randn(a.batch, ae.latent_channels, side, side)
    target = torch.rand(a.batch, 3, 128, 128) * 2 - 1

    def step(amp: bool, channels_last: bool) -> float:
        ae.vae.zero_grad(set_to_none=True)
        zz = z.contiguous(memory_format=torch.channels_last) if channels_last else z
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            x = ae.decode(zz)
        loss = (x.float() - target).abs().mean()
        loss.backward()
        return loss.item()

    for name, amp, cl in [("fp32", False, False), ("bf16", True, False), ("fp32 channels-last", False, True),
                          ("bf16 channels-last", True, True)]:
        if cl:
            ae.vae.to(memory_format=torch.channels_last)
        step(amp, cl)  # warm-up
        t = time.perf_counter()
        for _ in range(a.repeats):
            loss = step(amp, cl)
        print(f"{name:20s} {(time.perf_counter() - t) / a.repeats:6.2f} s per forward + backward (loss {loss:.4f})")
    with torch.no_grad():
        full = ae.decode(z[:2])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = ae.decode(z[:2]).float()
    d = (full - half).abs()
    psnr = 10 * torch.log10(4 / ((full - half) ** 2).mean())
    print(f"bf16 decode vs fp32: max |diff| {d.max():.4f}, mean {d.mean():.5f}, PSNR {psnr:.1f} dB ([-1, 1] scale)")


if __name__ == "__main__":
    main()
