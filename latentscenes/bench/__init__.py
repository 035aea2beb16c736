"""The paper's cost and quality tables (arXiv 2403.11678, Tables 1-2, Fig. 6-7), measured in one run.

* :mod:`latentscenes.bench.accounting`: Eq. 8-11, byte counting from saved safetensors files, curve
  interpolation, break-even (pure functions);
* :mod:`latentscenes.bench.tables`: Table 1 / Table 2 / Fig. 6 / Fig. 7 assembled from measured parts (pure);
* :mod:`latentscenes.bench.config`: :class:`BenchConfig` and its presets ``test``, ``cpu``, ``paper``;
* :mod:`latentscenes.bench.measure`: render latency, bytes on disk, Table 1's costs, the fidelity diagnosis;
* :mod:`latentscenes.bench.report`: ``summary.md`` and the PNG plots from ``results.json``.

The run itself, every method through :func:`latentscenes.experiments.step.run_method`, is on the top floor:
:func:`latentscenes.experiments.bench.run_benchmark` (``latentscenes bench``).

Each phase is measured with :mod:`latentscenes.utils.phases` (wall / CPU time, peak memory), what the machine is
with :mod:`latentscenes.utils.machine`. Protocol: docs/benchmark.md.
"""
