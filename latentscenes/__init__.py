"""latentscenes: learn numerous 3D scenes as Tri-Planes in a 3D-aware latent space (arXiv 2403.11678).

Layout: ``data`` (datasets, loaders, FlightGear builder) -> ``rendering`` (rays, sampling, tri-planes,
volume rendering) -> ``scenes`` (Micro-Macro scene bank, per-scene optimizers) -> ``autoencoder``
(AutoencoderKL, latent normalisation) -> ``training`` (RGB baseline, 3Da-AE training, exploitation) ->
``evaluation`` (metrics, renders, reports) -> ``bench`` -> ``cli``.
"""

__version__ = "0.1.0"
