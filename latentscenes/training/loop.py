"""The optimisation loop every fit runs: the 3Da-AE stages (paper Alg. 1-2) and the Tri-Planes (RGB) baselines.

One loop, one optimiser wrapper, one result record, so that a time, a curve or a guard means the same thing in
every method the benchmark compares:

* :class:`GroupOptimizers`: one Adam per named parameter group (tri-plane rows use the bank's
  :class:`~latentscenes.scenes.bank.LazySceneAdam` in ``sparse`` mode, so only the batch's scenes move);
* :func:`optimise`: the update loop. The caller gives the forward pass of step ``k`` (its loss, logged terms,
  bank rows and frozen groups); the loop owns learning-rate factors, the finite-loss guard, backward, the
  optimiser step, clocks (``train_s`` / ``cpu_s`` exclude evaluation and checkpoints), the eval curve, logging,
  the progress bar and the checkpoint schedule (a due checkpoint is written one step late, once its parameters
  gave a finite loss on the next batch);
* :class:`StageResult`: what a fit reports (also the run manifest's per-stage record).

What is specific to a method (how a batch is drawn, which loss, what a checkpoint holds) stays with its caller:
``training/stages.py`` for the latent stages, ``baselines/rgb/fit.py`` for the RGB baselines.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from latentscenes.scenes.bank import LazySceneAdam, SceneBank
from latentscenes.training.losses import NonFiniteLossError
from latentscenes.training.metrics_log import MetricsLogger
from latentscenes.utils.crash import crash_point
from latentscenes.utils.phases import PeakMemory


@dataclass
class StageResult:
    """What a stage returns (also stored in the run manifest; the benchmark reads it).

    Attributes:
        stage: name. steps: optimiser updates done in total (including before a resume).
        train_s: wall time of the optimisation loop, summed over sessions, **excluding** evaluation callbacks
            and checkpoint writes. eval_s / checkpoint_s: time spent in those. latent_cache_s: encoding time.
        cpu_s: process CPU time (all threads) of the same update steps, summed over sessions like ``train_s``
            (less sensitive than wall time to other jobs on a shared machine; the benchmark's CPU-time columns).
        step_ms_mean / step_ms_median: per-step wall time of this session (ms).
        peak_rss_mb: peak resident memory (MiB) of the process during this session of the stage, memory held
            from before it included (:class:`latentscenes.utils.phases.PeakMemory`: exact on Linux, also inside a
            benchmark phase); cuda_peak_mb: peak CUDA allocation (MiB), 0 off CUDA.
        final_losses: mean of each loss term over the last ``log_every`` steps.
        curve: ``[{"train_s": t, "step": k, **metrics}]`` from the evaluation callback (PSNR-vs-time).
        resumed_from: step the session started at (0 = fresh).
        view_copies: copies of every source view in the stage's view table (``data.shift_grid ** 2``,
            ``training.data.shift_views``; 1 = each view at one offset). Recorded with the result because a run
            continued with another ``data.shift_grid`` (scripts/ship_3daae.sh) runs its stages with different
            views, and the benchmark's plain-AE ablation repeats the warm-up as it ran.
    """

    stage: str
    steps: int = 0
    train_s: float = 0.0
    cpu_s: float = 0.0
    eval_s: float = 0.0
    checkpoint_s: float = 0.0
    latent_cache_s: float = 0.0
    step_ms_mean: float = 0.0
    step_ms_median: float = 0.0
    peak_rss_mb: float = 0.0
    cuda_peak_mb: float = 0.0
    final_losses: dict[str, float] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0
    view_copies: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ParamGroup:
    """One optimiser group: a name (``local``, ``coefs``, ``global``, ``mlp``, ``encoder``, ``decoder``), its
    parameters, its Adam learning rate (0 = frozen) and whether its rows are per scene (bank rows)."""

    name: str
    params: list[nn.Parameter]
    lr: float
    per_scene: bool = False


def bank_groups(bank: SceneBank, sparse: bool, lr_local: float, lr_coefs: float, lr_global: float) -> list[ParamGroup]:
    """The scene bank's three groups: T_mic (``local``) and W (``coefs``) per scene, B (``global``) shared
    (paper Eq. 6-7). Sets ``bank.sparse_grad`` to ``sparse`` so that the per-scene gradients are sparse exactly
    when the lazy per-scene Adam reads them. Groups of parts the bank lacks (F_mic = 0, F_mac = 0) are empty."""
    bank.sparse_grad = sparse
    return [ParamGroup("local", [bank.local] if bank.local is not None else [], lr_local, per_scene=True),
            ParamGroup("coefs", [bank.coefs] if bank.coefs is not None else [], lr_coefs, per_scene=True),
            ParamGroup("global", list(bank.shared_parameters()), lr_global)]


class GroupOptimizers:
    """The Adam optimisers of one fit, one per parameter group (as the authors' ``ae/trainers.py``; docs/training.md).

    Per-scene groups (T_mic, W) use :class:`LazySceneAdam` when ``sparse`` (only the scenes of the batch move)
    or one dense ``torch.optim.Adam`` (the authors' behaviour: absent scenes still move by momentum). Shared
    groups use ``torch.optim.Adam``. A group whose learning rate is 0 gets no optimiser and its parameters get
    ``requires_grad=False`` (gradients still flow *through* a frozen module to the planes).

    Args:
        groups: the parameter groups, in the order their states are saved.
        sparse: lazy per-scene Adam for ``per_scene`` groups.
    """

    def __init__(self, groups: Iterable[ParamGroup], sparse: bool) -> None:
        self.base_lr: dict[str, float] = {}
        self.dense: dict[str, torch.optim.Adam] = {}
        self.lazy: dict[str, LazySceneAdam] = {}
        for g in groups:
            for p in g.params:
                p.requires_grad_(g.lr > 0)
            if g.lr <= 0 or not g.params:
                continue
            if g.name in self.base_lr:
                raise ValueError(f"parameter group {g.name!r} given twice")
            self.base_lr[g.name] = g.lr
            if g.per_scene and sparse:
                self.lazy[g.name] = LazySceneAdam(g.params, lr=g.lr)
            else:
                self.dense[g.name] = torch.optim.Adam(g.params, lr=g.lr)

    def set_lr_factor(self, factor: float) -> None:
        """Scale every group's learning rate to ``factor`` times its base value (schedules)."""
        for name, opt in self.dense.items():
            for g in opt.param_groups:
                g["lr"] = self.base_lr[name] * factor
        for name, opt in self.lazy.items():
            opt.lr = self.base_lr[name] * factor

    def zero_grad(self) -> None:
        for opt in self.dense.values():
            opt.zero_grad(set_to_none=True)
        for opt in self.lazy.values():
            opt.zero_grad()

    def step(self, bank_rows: torch.Tensor, skip: set[str] = frozenset()) -> None:
        """One Adam step of every group not in ``skip``; lazy groups update the rows ``bank_rows [B]`` only."""
        for name, opt in self.dense.items():
            if name not in skip:
                opt.step()
        for name, opt in self.lazy.items():
            if name not in skip:
                opt.step(bank_rows)

    def state(self) -> dict[str, Any]:
        st: dict[str, Any] = {f"dense.{k}": o.state_dict() for k, o in self.dense.items()}
        st.update({f"lazy.{k}": o.state_dict() for k, o in self.lazy.items()})
        return st

    def load(self, states: dict[str, Any]) -> None:
        """Restore :meth:`state`. Raises ValueError if the groups differ (the stage config changed)."""
        want = set(self.state())
        if set(states) != want:
            raise ValueError(f"optimiser groups differ from the checkpoint: have {sorted(want)}, saved {sorted(states)}")
        for k, o in self.dense.items():
            o.load_state_dict(states[f"dense.{k}"])
        for k, o in self.lazy.items():
            o.load_state_dict(states[f"lazy.{k}"])
            for st in o.state.values():  # saved on the CPU; live next to the parameters
                for kk in st:
                    st[kk] = st[kk].to(o.params[0].device)


@dataclass
class StepOutput:
    """The forward pass of one update, as the loop needs it.

    Attributes:
        total: the scalar loss to back-propagate. terms: logged values (``total`` included), floats.
        bank_rows: ``[B]`` bank rows of the batch (the lazy groups' rows to update).
        skip: groups that must not step this time (e.g. a rank without scenes in the batch).
    """

    total: torch.Tensor
    terms: dict[str, float]
    bank_rows: torch.Tensor
    skip: set[str] = field(default_factory=set)


def optimise(
    *,
    stage: str,
    n_steps: int,
    start: int,
    result: StageResult,
    opts: GroupOptimizers,
    forward: Callable[[int], StepOutput],
    device: torch.device,
    lr_factor: Callable[[int], float] = lambda step: 1.0,
    frozen_from: Sequence[tuple[str, int]] = (),
    after_backward: Callable[[], None] | None = None,
    run_eval: Callable[[int], dict[str, float]] | None = None,
    eval_every: int = 0,
    eval_at_start: bool = False,
    write_checkpoint: Callable[[int, bool], float] | None = None,
    checkpoint_every: int = 0,
    last_good: Callable[[], str | None] = lambda: None,
    probe: Callable[[], dict[str, float]] | None = None,
    logger: MetricsLogger | None = None,
    log_every: int = 25,
    progress: str | None = None,
) -> StageResult:
    """Run updates ``start .. n_steps - 1`` of one fit and fill ``result`` in place.

    Args:
        stage: name for logs, errors and the crash points of tests/training/test_crash_resume.py.
        n_steps: updates in total; start: the first update of this session (a resumed checkpoint's step).
        result: the record to add clocks, losses and curve points to (a resumed one keeps its earlier sessions').
        opts: the optimisers; forward: ``forward(k)`` computes update ``k``'s loss (gradients enabled).
        device: where the fit runs (CUDA steps are synchronised so that their clocks are honest).
        lr_factor: ``lr_factor(k)`` multiplies every base learning rate at update ``k``.
        frozen_from: ``(group, k0)`` pairs: the group stops stepping from update ``k0`` on.
        after_backward: called after ``backward`` (multi-process runs sum gradients there).
        run_eval: ``run_eval(k) -> {metric: value}`` without gradients; its time goes to ``eval_s`` and its
            values, with ``train_s`` and ``step``, to ``result.curve``. Called every ``eval_every`` updates (0 =
            never in between), at the start of a fresh fit when ``eval_at_start`` and at the end.
        write_checkpoint: ``write_checkpoint(k, done) -> seconds``: save the state after ``k`` updates; due every
            ``checkpoint_every`` updates (written after the next step's loss proved finite) and at the end.
        last_good: the newest checkpoint on disk, for error messages.
        probe: loss terms of the final state on one more batch without gradients (the final checkpoint is
            written only when they are finite); its time counts as checkpointing.
        logger: JSON-lines ``train`` / ``eval`` / ``stage_done`` events every ``log_every`` updates.
        progress: title of a progress bar (None = no bar).
    Returns:
        ``result``.
    Raises:
        NonFiniteLossError: a logged term is NaN/inf, at update ``k`` (parameters as after ``k`` updates) or in
            the final probe; nothing of that state is checkpointed.
    """

    def eval_at(step: int) -> None:
        if run_eval is None:
            return
        t0 = time.perf_counter()
        with torch.no_grad():
            metrics = run_eval(step)
        result.eval_s += time.perf_counter() - t0
        rec = {"train_s": result.train_s, "step": step, **{k: float(v) for k, v in metrics.items()}}
        result.curve.append(rec)
        if logger is not None:
            logger.log({"event": "eval", "stage": stage, **rec, "train_s": round(result.train_s, 4)})

    # The stage's own peak memory (nested in a benchmark phase without hiding the phase's earlier peak).
    with PeakMemory(device) as peak:
        step_times: list[float] = []
        window: dict[str, list[float]] = {}
        if eval_at_start and start == 0:
            eval_at(0)
        bar = _Bar(progress, n_steps, start)
        pending: int | None = None
        try:
            for step in range(start, n_steps):
                t0, c0 = time.perf_counter(), time.process_time()
                factor = lr_factor(step)
                opts.set_lr_factor(factor)
                opts.zero_grad()
                out = forward(step)
                vals = out.terms
                if not all(math.isfinite(v) for v in vals.values()):
                    opts.zero_grad()
                    raise NonFiniteLossError(stage, step, vals, last_good())
                out.total.backward()
                if after_backward is not None:
                    after_backward()
                ckpt_s = ckpt_cpu = 0.0
                if pending is not None and write_checkpoint is not None:
                    c1 = time.process_time()
                    ckpt_s, pending = write_checkpoint(pending, False), None
                    ckpt_cpu = time.process_time() - c1
                skip = set(out.skip) | {g for g, k0 in frozen_from if step >= k0}
                opts.step(out.bank_rows, skip)
                crash_point("stage.step", f"{stage}:{step + 1}")
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                dt = time.perf_counter() - t0 - ckpt_s
                step_times.append(dt)
                result.train_s += dt
                result.cpu_s += time.process_time() - c0 - ckpt_cpu
                for k, v in vals.items():
                    window.setdefault(k, []).append(v)
                done_steps = step + 1
                if done_steps % max(1, log_every) == 0 or done_steps == n_steps:
                    rec = {k: sum(v) / len(v) for k, v in window.items()}
                    result.final_losses = rec
                    if logger is not None:
                        # eta_s: this stage's remaining steps at this session's mean step time (runs without a bar).
                        eta = (n_steps - done_steps) * sum(step_times) / len(step_times)
                        logger.log({"event": "train", "stage": stage, "step": done_steps,
                                    "train_s": round(result.train_s, 4), "lr_factor": factor,
                                    "step_ms": round(1000 * dt, 3), "eta_s": round(eta, 1), **rec})
                    window = {}
                bar.update(done_steps, vals.get("total", float(out.total.detach())))
                if eval_every > 0 and done_steps % eval_every == 0 and done_steps < n_steps:
                    eval_at(done_steps)
                if checkpoint_every > 0 and done_steps % checkpoint_every == 0 and done_steps < n_steps:
                    pending = done_steps
        finally:
            bar.close()
        if step_times and probe is not None:
            # The final state has no next step to vouch for it: one forward pass on the batch that step would use.
            t0 = time.perf_counter()
            vals = probe()
            result.checkpoint_s += time.perf_counter() - t0
            if not all(math.isfinite(v) for v in vals.values()):
                raise NonFiniteLossError(stage, n_steps, vals, last_good())
        eval_at(n_steps)
        result.steps = n_steps
        if step_times:
            st = sorted(step_times)
            result.step_ms_mean = 1000 * sum(st) / len(st)
            result.step_ms_median = 1000 * st[len(st) // 2]
    result.peak_rss_mb = peak.rss_peak_bytes / 2**20
    result.cuda_peak_mb = (peak.gpu_peak_bytes or 0) / 2**20
    if write_checkpoint is not None:
        write_checkpoint(n_steps, True)
    if logger is not None:
        logger.log({"event": "stage_done", **{k: v for k, v in result.to_dict().items() if k != "curve"}})
    return result


class _Bar:
    """A rich progress bar with ETA (or nothing when ``title`` is None)."""

    def __init__(self, title: str | None, total: int, start: int) -> None:
        self._cm = None
        if title is not None:
            # rich is imported only when a bar is shown (start-up time of library use and tests).
            from latentscenes.utils.progress import progress_bar

            self._cm = progress_bar(title, total)
            self.progress, self.task = self._cm.__enter__()
            self.progress.update(self.task, completed=start)

    def update(self, completed: int, loss: float) -> None:
        if self._cm is not None:
            self.progress.update(self.task, completed=completed, info=f"loss {loss:.4g}")

    def close(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
            self._cm = None
