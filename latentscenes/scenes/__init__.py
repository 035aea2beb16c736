"""Scenes as tri-planes: Micro-Macro composition (paper Sec. 3.4) and the per-scene parameter bank.

The optimisers that train a bank (dense or lazy per-scene Adam) are built per fit by
:class:`latentscenes.training.loop.GroupOptimizers`."""

from latentscenes.scenes.bank import LazySceneAdam, SceneBank, TriplaneConfig
from latentscenes.scenes.micro_macro import compose_micro_macro

__all__ = ["LazySceneAdam", "SceneBank", "TriplaneConfig", "compose_micro_macro"]
