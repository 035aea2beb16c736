"""Tri-Planes (RGB) baselines: :mod:`.fit` (``RGBFitConfig``, ``fit_rgb_scenes``) and their folder format
:mod:`.fit_format` (the one reader and writer of ``latentscenes fit-rgb`` folders)."""
