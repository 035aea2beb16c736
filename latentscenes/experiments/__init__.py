"""The methods the benchmark and the demo compare, and the one step that runs any of them.

* :mod:`latentscenes.experiments.methods`: the registry: each method as a named, complete config (:class:`Method`),
  ``get_method(name)`` (light: no torch);
* :mod:`latentscenes.experiments.step`: :func:`run_method`, training or reusing a method's 3Da-AE and learning its
  scene batches (or fitting them in RGB), and :func:`load_batches`, reloading what it saved as scene models.

The two drivers on top: :func:`latentscenes.bench.runner.run_benchmark` (``latentscenes bench``) and
:func:`latentscenes.evaluation.demo.run_demo` (``latentscenes demo``). Submodules are imported on use.
"""
