"""Fortieth session: the 128 px package's autoencoder file with its decoder taken from an exploit run.

An exploit run stores only the decoder it fine-tuned (ae_parts ["decoder"]); `latentscenes export --ae` wants a whole
autoencoder, so the package's shared.safetensors is written again with every vae.* tensor the exploit run holds
(decoder, post_quant_conv) swapped in; the encoder, MLP and B stay the package's. With --all, every tensor the
exploit run holds is swapped (its MLP and B too, as its fit and fine-tune left them).
Usage: python s40_swap_decoder.py PACKAGE_SHARED EXPLOIT_SHARED OUT [--all]
"""

import sys

from safetensors import safe_open
from safetensors.torch import save_file

package, exploit, out = sys.argv[1:4]
swap_all = "--all" in sys.argv[4:]
with safe_open(package, "pt") as f:
    meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
with safe_open(exploit, "pt") as f:
    swapped = [k for k in f.keys() if swap_all or k.startswith("vae.")]
    for k in swapped:
        assert k in tensors and tensors[k].shape == f.get_tensor(k).shape, k
        tensors[k] = f.get_tensor(k)
save_file(tensors, out, metadata=meta)
print(f"{len(swapped)} tensors swapped -> {out}")
