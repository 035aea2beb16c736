"""Datasets: loaders (SRN, EG3D dataset.json, transforms.json), the FlightGear builder, validation.

Public API: :class:`SceneViews`, :class:`DatasetError`, :func:`load_scene`, :class:`MultiSceneDataset`;
the builder is :func:`latentscenes.data.flightgear.build_flightgear` (imported lazily: it needs pybullet).
"""

from latentscenes.data.dataset import MultiSceneDataset
from latentscenes.data.loaders import detect_layout, load_scene
from latentscenes.data.types import DatasetError, SceneViews

__all__ = ["DatasetError", "MultiSceneDataset", "SceneViews", "detect_layout", "load_scene"]
