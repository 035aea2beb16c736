"""Weight-space blend of the shipped base autoencoder and one continued from it (twelfth session, issue 15; not
kept: docs/autoencoder.md). Writes ``OUT-a<alpha>.safetensors`` = (1 - alpha) * shipped + alpha * OTHER, the tanh
scale blended the same way.

Usage: python scripts/experiments/ae_blend.py OTHER.safetensors OUT ALPHA [ALPHA ...]
"""

import sys

from latentscenes.autoencoder.model import AEConfig, LatentAutoencoder, load_autoencoder

a = load_autoencoder(AEConfig())
b = LatentAutoencoder.load(sys.argv[1])
sa, sb = a.vae.state_dict(), b.vae.state_dict()
for alpha in map(float, sys.argv[3:]):
    c = LatentAutoencoder(b.vae_config, tanh_scale=(1 - alpha) * a.tanh_scale + alpha * b.tanh_scale,
                          use_mean=b.use_mean, info={"source": "blend", "alpha": alpha, "of": ["shipped", sys.argv[1]]})
    c.vae.load_state_dict({k: (1 - alpha) * sa[k].float() + alpha * sb[k].float() if sb[k].is_floating_point() else sb[k]
                           for k in sb})
    c.save(f"{sys.argv[2]}-a{alpha}.safetensors")
