"""Scenes as tri-planes: Micro-Macro composition (paper Sec. 3.4) and the per-scene parameter bank."""

from latentscenes.scenes.bank import LazySceneAdam, SceneBank, SceneOptimizer, TriplaneConfig, make_scene_optimizer
from latentscenes.scenes.micro_macro import compose_micro_macro

__all__ = ["LazySceneAdam", "SceneBank", "SceneOptimizer", "TriplaneConfig", "compose_micro_macro", "make_scene_optimizer"]
