"""Datasets: loaders (SRN, EG3D dataset.json, transforms.json), the offline builders, validation.

Public API: :class:`SceneViews`, :class:`DatasetError`, :func:`load_scene`, :class:`MultiSceneDataset`;
the builders are :func:`latentscenes.data.flightgear.build_flightgear` (airliners) and
:func:`latentscenes.data.torcs.build_torcs` (cars), over :mod:`latentscenes.data.builder` (imported lazily:
they need pybullet).
"""

from latentscenes.data.dataset import MultiSceneDataset
from latentscenes.data.loaders import detect_layout, load_scene
from latentscenes.data.types import DatasetError, SceneViews

__all__ = ["DatasetError", "MultiSceneDataset", "SceneViews", "detect_layout", "load_scene"]
