"""latentscenes: learn numerous 3D scenes as Tri-Planes in a 3D-aware latent space (arXiv 2403.11678).

Layout: ``data`` (datasets, loaders, FlightGear builder) -> ``rendering`` (rays, sampling, tri-planes,
volume rendering) -> ``scenes`` (Micro-Macro scene bank, per-scene optimizers) -> ``autoencoder``
(AutoencoderKL, latent normalisation) -> ``training`` (RGB baseline, 3Da-AE training, exploitation) ->
``evaluation`` (metrics, renders, reports) -> ``bench`` -> ``cli``.

Python API (:mod:`latentscenes.api`, README "Python API")::

    import latentscenes as ls
    run = ls.load("RUN")                                   # run.scenes, run.render(...), run.evaluate(...)
    out = run.render(run.scenes[0], ls.look_at([1.3, 0, 0.5]), ls.intrinsics(50.0), 128, 128)
    out["rgb"]                                             # [128, 128, 3] float32 numpy in [0, 1]
"""

__version__ = "0.1.0"

#: Names of :mod:`latentscenes.api` offered here; imported on first use (``import latentscenes`` stays light).
_API_NAMES = ("load", "Run", "look_at", "intrinsics", "NotARunError", "SceneNotFoundError")
__all__ = ["__version__", *_API_NAMES]


def __getattr__(name: str):
    if name in _API_NAMES:
        from latentscenes import api  # imported on use: keeps `import latentscenes` fast

        return getattr(api, name)
    raise AttributeError(f"module 'latentscenes' has no attribute {name!r}")
