"""3Da-AE training (paper Alg. 1), exploitation (Alg. 2), run folders and checkpoints.

Public entry points (see docs/training.md):
  * :class:`PipelineConfig` (presets ``test``, ``tiny-cpu``, ``paper``) and :class:`StageConfig`;
  * :func:`train_3daae`, :func:`exploit_3daae`: whole stages into run folders, results dicts for the benchmark;
  * :func:`run_stage`: one stage on an in-memory :class:`LatentSystem` (functional core);
  * :func:`load_trained`, :func:`load_exploited`, :func:`load_model`: learned scenes ready to render;
  * :mod:`latentscenes.training.run_format`: the run / exploit batch / pre-trained folder format (file names,
    manifests), which imports nothing heavy.

  * :mod:`latentscenes.training.loop`: the optimisation loop and optimiser wrapper every fit runs, the latent
    stages and the RGB baselines (``latentscenes/baselines/rgb``) alike.

Submodules are imported lazily by the names above so that ``import latentscenes.training`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PipelineConfig": "latentscenes.training.config",
    "StageConfig": "latentscenes.training.config",
    "ExploitConfig": "latentscenes.training.config",
    "DataSelection": "latentscenes.training.config",
    "LatentSystem": "latentscenes.training.stages",
    "StageResult": "latentscenes.training.loop",
    "run_stage": "latentscenes.training.stages",
    "NonFiniteLossError": "latentscenes.training.losses",
    "NonFiniteStateError": "latentscenes.training.losses",
    "train_3daae": "latentscenes.training.pipeline",
    "exploit_3daae": "latentscenes.training.pipeline",
    "exploit_config": "latentscenes.training.pipeline",
    "load_trained": "latentscenes.training.pipeline",
    "load_exploited": "latentscenes.training.pipeline",
    "load_model": "latentscenes.training.pipeline",
    "load_run_config": "latentscenes.training.pipeline",
    "RunError": "latentscenes.training.pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'latentscenes.training' has no attribute {name!r}")
