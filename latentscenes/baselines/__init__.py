"""Baselines the latent scenes are compared with (paper Sec. 4): each on the shared training loop
(``training/loop.py``) with its own folder format. ``rgb``: Tri-Planes (RGB) and Tri-Planes-Macro (RGB)."""
