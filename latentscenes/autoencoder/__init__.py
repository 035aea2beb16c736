"""Image autoencoder (diffusers AutoencoderKL) of 3Da-AE: latent normalisation, latent background,
pre-training and the shipped base weights (docs/autoencoder.md)."""

from latentscenes.autoencoder.model import (
    AEConfig,
    AutoencoderError,
    LatentAutoencoder,
    SHIPPED_AUTOENCODERS,
    SHIPPED_WEIGHTS,
    load_autoencoder,
)

__all__ = ["AEConfig", "AutoencoderError", "LatentAutoencoder", "SHIPPED_AUTOENCODERS", "SHIPPED_WEIGHTS",
           "load_autoencoder"]
