"""Multi-process training on ``torch.distributed`` (issue 12; docs/scale.md "Many processes: torchrun").

Launched with ``torchrun`` (one process per GPU, or several CPU processes; ``--nnodes`` for several machines). The
CLI (``latentscenes exploit`` / ``train``) initialises the process group from the environment torchrun sets
(:func:`init_from_env`: ``gloo`` on the CPU, ``nccl`` on GPUs); library functions never do, and with no process
group (or a group of one) every code path is the single-process one, unchanged.

Design:

* **Sharded by scene**: scene ``k`` of the run's sorted scene list belongs to rank ``k % world_size``. A rank loads,
  encodes (latent cache) and holds only its own scenes' views, local planes T_mic, coefficients W and their
  sparse Adam moments (:class:`~latentscenes.scenes.bank.LazySceneAdam`).
* **Replicated**: the autoencoder, the MLP and the global planes B, with their dense Adam states. After each
  backward pass their gradients are summed over the ranks (:meth:`Shard.all_reduce_grads`, one flat
  ``all_reduce``), so every rank applies the same update and holds the same shared parameters.
* **The global batch is the single-process batch**: step ``k`` draws the rows a one-process run would draw
  (``training.data.batch_indices`` over every view of every scene) and each rank takes those of its own scenes.
  Each rank weights its mean loss terms by its share of the batch (and its summed TV term by 1), so the summed
  gradients are those of the one-process batch: a K-process run performs the one-process run's updates, up to the
  order of floating-point sums (and the renderer's sampling noise, drawn per rank: equal only with
  ``render.deterministic``). ``batch_size`` is therefore the *global* batch; to keep K GPUs busy raise it with K
  (a stage given in ``epochs`` then takes K times fewer steps).
* **Files**: rank 0 writes the config, manifest, metrics, the shared weights and every scene shard, after gathering
  the per-scene tensors (and, in checkpoints, their Adam moments) from the other ranks, so the run folder has the
  layout of a single-process run's and ``eval`` / ``render`` / the bench read it unchanged. Each rank writes its own
  latent cache (``cache/latents-<split>-rank<r>of<K>.safetensors``). ``--resume`` needs the world size the folder
  started with (:func:`check_resume_world`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
from safetensors import safe_open

from latentscenes.data.types import DatasetError
from latentscenes.training import run_format as rf
from latentscenes.training.checkpoint import existing_checkpoint_dir
from latentscenes.utils.device import pick_device


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the current process group; ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def env_world_size() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when unset)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(device: str) -> str:
    """Initialise the default process group from torchrun's environment (CLI layer only).

    Does nothing (returns ``device`` unchanged) unless ``WORLD_SIZE`` > 1 and no group exists yet. Backend: ``nccl``
    when ``device`` resolves to CUDA (each process then uses ``cuda:LOCAL_RANK``), else ``gloo``.

    Returns:
        the device this process should use (``cuda:LOCAL_RANK`` on GPUs).
    """
    if env_world_size() <= 1 or (dist.is_available() and dist.is_initialized()):
        return device
    dev = pick_device(device)
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group(backend="nccl")
        return f"cuda:{local}"
    dist.init_process_group(backend="gloo")
    return device


def shutdown() -> None:
    """Destroy the default process group if one exists (end of a CLI command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def cpu_threads_per_process() -> int | None:
    """Torch threads for one of several CPU processes on this machine: the cores divided among
    ``LOCAL_WORLD_SIZE`` processes; None when not launched with several local processes or OMP_NUM_THREADS is set."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    if local <= 1 or "OMP_NUM_THREADS" in os.environ:
        return None
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    return max(1, n // local)


def owned(n: int, rank: int, world_size: int) -> list[int]:
    """Indices (into the run's sorted scene list of ``n`` scenes) of the scenes rank ``rank`` owns."""
    return list(range(rank, n, world_size))


def check_enough_scenes(n: int, world_size: int, where: str) -> None:
    """Every process needs a scene. Raises DatasetError (on every rank alike) otherwise."""
    if n < world_size:
        raise DatasetError(f"{where}: {n} scene(s) for {world_size} processes; every process needs at least one "
                           "scene: start fewer processes (torchrun --nproc_per_node) or learn more scenes")


def check_resume_world(out: Path, stages: Sequence[str], world_size: int) -> None:
    """``--resume`` of a folder whose stages have begun must use the world size it started with.

    Raises:
        RunError: one line naming both world sizes (on every rank alike), before anything is written.
    """
    # imported here: training.pipeline imports training.distributed (cycle)
    from latentscenes.training.pipeline import RunError

    if not rf.has_manifest(out) or not any(existing_checkpoint_dir(rf.ckpt_dir(out, s)) is not None for s in stages):
        return
    m = rf.read_manifest(out)
    if rf.is_done(m):
        return  # a finished folder: nothing will be computed or written
    started = rf.recorded_world_size(m)
    if started != world_size:
        raise RunError(f"{out}: --resume with {world_size} process(es) where it started with {started}; its "
                       f"checkpoints and batches follow the world size: resume with torchrun --nproc_per_node "
                       f"(x --nnodes) = {started}" + (" (or without torchrun)" if started == 1 else ""))


def _cpu_group():
    if dist.get_backend() == "gloo":
        return None
    return dist.new_group(backend="gloo")


@dataclass
class Shard:
    """This rank's part of a multi-process stage: which scenes it owns and how the global batch maps to its rows.

    Attributes:
        rank, world_size: the process group's.
        scene_ids: every scene of the run, in the run's order (a single-process run's ``table.scene_ids``).
        owned: indices into ``scene_ids`` of this rank's scenes (its table's and bank's scenes, in order).
        views: source views of every scene (``len(scene_ids)``).
        copies: view copies (``data.shift_grid ** 2``), the same on every rank.
    """

    rank: int
    world_size: int
    scene_ids: list[str]
    owned: list[int]
    views: list[int]
    copies: int
    local_of_source: torch.Tensor = field(repr=False, default=None)  # [n global source views] -> local, -1
    n_local_source: int = 0
    group: Any = field(repr=False, default=None)  # CPU (gloo) group for object gathers

    @classmethod
    def from_table(cls, table: Any) -> "Shard":
        """Build the shard from this rank's view table (its own scenes, ``owned`` order): gathers every rank's
        scene ids and view counts (collective)."""
        rank, ws = world()
        n_src = table.n_source_views
        counts = torch.bincount(table.scene_rows[:n_src], minlength=len(table.scene_ids)).tolist()
        group = _cpu_group()
        got: list[Any] = [None] * ws
        dist.all_gather_object(got, (list(table.scene_ids), counts, int(table.copies)), group=group)
        n = sum(len(g[0]) for g in got)
        ids: list[str] = [""] * n
        views = [0] * n
        for r, (rid, rc, _) in enumerate(got):
            for j, k in enumerate(owned(n, r, ws)):
                ids[k], views[k] = rid[j], rc[j]
        copies = {g[2] for g in got}
        if len(copies) != 1:
            raise ValueError(f"the ranks' view tables have different copies per view: {sorted(copies)}")
        shard = cls.build(rank, ws, ids, views, copies.pop(), group)
        if shard.n_local_source != n_src:
            raise ValueError(f"rank {rank}: {n_src} source views in its table, {shard.n_local_source} expected")
        return shard

    @classmethod
    def build(cls, rank: int, world_size: int, scene_ids: list[str], views: list[int], copies: int,
              group: Any = None) -> "Shard":
        """The shard of rank ``rank`` from every scene's id and source-view count (no communication)."""
        mine = owned(len(scene_ids), rank, world_size)
        starts = [0]
        for v in views:
            starts.append(starts[-1] + v)
        local = torch.full((starts[-1],), -1, dtype=torch.long)
        pos = 0
        for k in mine:
            local[starts[k] : starts[k + 1]] = torch.arange(pos, pos + views[k])
            pos += views[k]
        return cls(rank, world_size, list(scene_ids), mine, list(views), int(copies), local, pos, group)

    # ------------------------------------------------------------------------------------- sizes and batches
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def n_source_views(self) -> int:
        """Source views of every scene of the run (what a stage's ``epochs`` count)."""
        return int(self.local_of_source.shape[0])

    def __len__(self) -> int:
        """Rows of the run's whole view table (copies included): what the global batches index."""
        return self.copies * self.n_source_views

    def local_rows(self, global_rows: torch.Tensor) -> torch.Tensor:
        """This rank's rows (of its own table) among ``global_rows`` of the run's table, in batch order."""
        n = self.n_source_views
        src = self.local_of_source[global_rows % n]
        keep = src >= 0
        return (global_rows[keep] // n) * self.n_local_source + src[keep]

    # ------------------------------------------------------------------------------------- collectives
    def barrier(self) -> None:
        dist.barrier(group=self.group)

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over the ranks, in place (on ``t``'s device); returns ``t``."""
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when ``flag`` is True on some rank."""
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        return bool(self.all_reduce_sum(t).item() > 0)

    def all_reduce_grads(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Sum the gradients of the replicated ``params`` over the ranks (one flat all-reduce).

        A parameter without a gradient on every rank keeps ``grad = None`` (as in a single-process step: Adam skips
        it); one with a gradient on some rank gets a zero gradient where it had none before the sum.
        """
        if not params:
            return
        dev = params[0].device
        has = torch.tensor([0.0 if p.grad is None else 1.0 for p in params], device=dev)
        self.all_reduce_sum(has)
        live = [p for p, h in zip(params, has.tolist()) if h > 0]
        for p in live:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        if not live:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in live])
        self.all_reduce_sum(flat)
        pos = 0
        for p in live:
            n = p.grad.numel()
            p.grad.copy_(flat[pos : pos + n].view_as(p.grad))
            pos += n

    def all_gather_objects(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, on every rank (a list by rank; CPU group; collective)."""
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def gather_objects(self, obj: Any) -> list[Any] | None:
        """``obj`` of every rank on rank 0 (a list by rank), None elsewhere (CPU group; collective)."""
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0, group=self.group)
        return out

    # ------------------------------------------------------------------------------------- scenes and states
    def gather_bank(self, bank: Any, lazy: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any] | None]:
        """Every rank's scenes assembled on rank 0 as one bank in the run's scene order (collective).

        Args:
            bank: this rank's :class:`~latentscenes.scenes.bank.SceneBank` (its scenes, ``owned`` order).
            lazy: optional ``{name: LazySceneAdam.state_dict()}`` of this rank's per-scene optimisers (rows in
                bank order), assembled the same way (rows of a rank that has no state yet are zeros).
        Returns:
            on rank 0 ``(bank of every scene, the assembled lazy states or None)``; elsewhere ``(None, None)``.
        """
        mine = {k: v.detach().cpu() for k, v in bank.per_scene_state().items()}
        states = None if lazy is None else {k: {kk: vv.detach().cpu() for kk, vv in v.items()} for k, v in lazy.items()}
        got = self.gather_objects((list(bank.scene_ids), mine, states))
        if got is None:
            return None, None
        n = len(self.scene_ids)
        full = bank.select([])  # an empty bank sharing the shared planes
        with torch.no_grad():
            tensors: dict[str, torch.Tensor] = {}
            for r, (rid, t, _) in enumerate(got):
                idx = torch.tensor(owned(n, r, self.world_size), dtype=torch.long)
                if [self.scene_ids[k] for k in idx.tolist()] != list(rid):
                    raise ValueError(f"rank {r} holds scenes {rid[:3]}..., not its share of the run's scenes")
                for key, v in t.items():
                    if key not in tensors:
                        tensors[key] = v.new_zeros((n, *v.shape[1:]))
                    tensors[key][idx] = v
        full.set_scenes(self.scene_ids, tensors)
        merged = None
        if lazy is not None:
            merged = {}
            for name in lazy:
                parts = [(torch.tensor(owned(n, r, self.world_size), dtype=torch.long), g[2][name])
                         for r, g in enumerate(got)]
                keys = sorted({k for _, st in parts for k in st})
                out: dict[str, torch.Tensor] = {}
                for key in keys:
                    proto = next(st[key] for _, st in parts if key in st)
                    t = proto.new_zeros((n, *proto.shape[1:]))
                    for idx, st in parts:
                        if key in st:
                            t[idx] = st[key]
                    out[key] = t
                merged[name] = out
        return full, merged

    def own_rows_of_states(self, lazy_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A whole run's ``LazySceneAdam.state_dict()`` (rows = every scene) cut to this rank's scenes."""
        idx = torch.tensor(self.owned, dtype=torch.long)
        return {k: v[idx].clone() for k, v in lazy_state.items()}

    def load_own_scenes(self, bank: Any, folder: Path) -> list[str]:
        """Load this rank's scenes from the shards of ``folder`` (a run's layout) into ``bank``; others are skipped.

        Returns the scene ids loaded. Raises ValueError when a scene of this rank is missing from the shards.
        """
        mine = set(bank.scene_ids)
        loaded: list[str] = []
        for p in sorted(Path(folder).glob(rf.SCENE_SHARD_GLOB)):
            with safe_open(str(p), framework="pt") as f:
                ids = json.loads((f.metadata() or {}).get("scene_ids", "[]"))
                pick = [j for j, s in enumerate(ids) if s in mine]
                if not pick:
                    continue
                t = {k: f.get_tensor(k)[pick] for k in f.keys()}
            bank.assign([ids[j] for j in pick], t)
            loaded += [ids[j] for j in pick]
        missing = mine - set(loaded)
        if missing:
            raise ValueError(f"{folder}: scenes of rank {self.rank} missing from the shards: {sorted(missing)[:3]}")
        return loaded
