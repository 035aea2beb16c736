"""The registry of methods: each one a named, complete config (paper Sec. 4.3, docs/benchmark.md "Methods").

A :class:`Method` says everything that defines it -- latent or RGB, the plane layout, whether its 3Da-AE has a
joint stage, whether exploitation keeps the trained global planes B, which training run it exploits from -- so
that the benchmark (``latentscenes bench``) and the demo (``latentscenes demo``) run every method through the same
step (:func:`latentscenes.experiments.step.run_method`) instead of branching on its name.

Light on purpose (no torch) and on the configs' floor (beside ``config.py``, as nerfstudio's ``method_configs.py``
sits with its configs): the drivers in ``experiments/`` run the methods, and the bench's config and tables read
the names and labels from here without importing the floor above them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from latentscenes.config import ConfigError


@dataclass(frozen=True)
class Method:
    """One method, complete.

    Attributes:
        name: its key (``BenchConfig.methods``, ``results.json``, ``runs/<name>/``).
        label: its row label in the tables (Table 2).
        kind: ``latent`` (tri-planes in a 3Da-AE's latent space) or ``rgb`` (Tri-Planes fitted in RGB).
        layout: ``micro+macro`` (local planes + global planes B), ``micro`` (F_mac = 0, F_mic = F) or ``macro``
            (F_mic = 0, F_mac = F), with the same F = F_mic + F_mac as Ours.
        training: a latent method's 3Da-AE training run: its own name (it trains one) or another method's
            (whose run it exploits from); None for RGB methods.
        joint: the 3Da-AE has its joint stage; False: warm-up only, the base autoencoder without 3D
            regularisation (the plain-AE ablation).
        no_prior: exploitation re-initialises the global planes B at random (``exploit.no_prior``).
    """

    name: str
    label: str
    kind: str
    layout: str = "micro+macro"
    training: str | None = None
    joint: bool = True
    no_prior: bool = False

    @property
    def micro(self) -> bool:
        """Uses per-scene local planes (Table 2's "micro" column)."""
        return "micro" in self.layout

    @property
    def macro(self) -> bool:
        """Uses shared global planes with per-scene coefficients (Table 2's "macro" column)."""
        return "macro" in self.layout

    @property
    def trains(self) -> bool:
        """A latent method that trains its own 3Da-AE (False: it exploits another method's run)."""
        return self.kind == "latent" and self.training == self.name

    @property
    def rgb_variant(self) -> str | None:
        """The RGB baseline's ``RGBFitConfig.variant`` (``micro`` | ``macro``); None for latent methods."""
        return None if self.kind != "rgb" else ("macro" if self.layout == "macro" else "micro")

    def pipeline_config(self, pcfg: Any) -> Any:
        """Ours' :class:`~latentscenes.training.config.PipelineConfig` turned into this latent method's: its plane
        layout (same F) and, for the plain AE, no joint stage."""
        tp = pcfg.triplane
        F = tp.f_mic + tp.f_mac
        if self.layout == "micro":
            pcfg = dataclasses.replace(pcfg, triplane=dataclasses.replace(tp, f_mic=F, f_mac=0))
        elif self.layout == "macro":
            pcfg = dataclasses.replace(pcfg, triplane=dataclasses.replace(tp, f_mic=0, f_mac=F,
                                                                          n_global=max(1, tp.n_global)))
        if not self.joint:
            # No 3D regularisation of the autoencoder: warm-up only (planes fitted to its latents), no joint stage.
            pcfg = dataclasses.replace(pcfg, joint=dataclasses.replace(pcfg.joint, steps=0, epochs=None))
        return pcfg


_METHODS = (
    Method("ours", "Ours", "latent", training="ours"),
    Method("ours-micro", "Ours-Micro", "latent", layout="micro", training="ours-micro"),
    Method("ours-macro", "Ours-Macro", "latent", layout="macro", training="ours-macro"),
    Method("ours-no-prior", "Ours-No-Prior", "latent", training="ours", no_prior=True),
    Method("plain-ae", "Ours in a plain AE's latent space (no 3D regularisation)", "latent", training="plain-ae",
           joint=False),
    Method("rgb", "Tri-Planes (RGB)", "rgb", layout="micro"),
    Method("rgb-macro", "Tri-Planes-Macro (RGB)", "rgb", layout="macro"),
)

#: Every method by name, in the benchmark's catalogue order (``BenchConfig.methods``' default).
METHODS: dict[str, Method] = {m.name: m for m in _METHODS}

#: The methods the demo compares: Ours against Tri-Planes (RGB).
DEMO_METHODS = ("ours", "rgb")


def method_names(kind: str | None = None) -> tuple[str, ...]:
    """The registered names (of one ``kind``, ``latent`` | ``rgb``, when given), in catalogue order."""
    return tuple(n for n, m in METHODS.items() if kind is None or m.kind == kind)


#: The order the benchmark runs them in: the RGB baselines first (a fresh process: memory that later phases still
#: hold counts against ours), then the latent methods in catalogue order (Ours before Ours-No-Prior, which
#: exploits Ours' run).
RUN_ORDER = method_names("rgb") + method_names("latent")


def get_method(name: str) -> Method:
    """The method called ``name``.

    Raises:
        ConfigError: no such method (the message lists the known names).
    """
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None
