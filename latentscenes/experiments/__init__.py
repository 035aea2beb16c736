"""The methods the benchmark and the demo compare, and the one step that runs any of them.

* the methods they run come from the registry :mod:`latentscenes.methods` (each method a named, complete config,
  ``get_method(name)``; on the configs' floor, light, so that the bench's config and tables read it too);
* :mod:`latentscenes.experiments.step`: :func:`run_method`, training or reusing a method's 3Da-AE and learning its
  scene batches (or fitting them in RGB), and :func:`load_batches`, reloading what it saved as scene models.

* the two drivers built on them: :mod:`latentscenes.experiments.bench` (:func:`run_benchmark`, ``latentscenes
  bench``; its tables and measurements live in :mod:`latentscenes.bench`) and :mod:`latentscenes.experiments.demo`
  (:func:`run_demo`, ``latentscenes demo``; its report in :mod:`latentscenes.evaluation.reporting`).

Submodules are imported on use.
"""
