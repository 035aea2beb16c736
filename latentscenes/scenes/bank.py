"""Scene bank: per-scene tri-plane parameters addressed by scene id, kept apart from shared parameters.

Per scene s (paper Sec. 3.4): local planes T_s^mic ``[3, F_mic, T, T]`` and mixing weights W_s ``[M]``.
Shared by all scenes: the global planes B ``[M, 3, F_mac, T, T]`` (the MLP lives outside the bank, with the
renderer). Scenes can be added later without touching existing ones, saved/loaded as safetensors shards of
any subset of scenes, and optimised either with the paper's dense Adam or with a lazy per-scene Adam that
only updates the scenes present in a batch (docs/rendering.md explains the difference).

Storage: all scenes' local planes are one ``[N, 3*F_mic*T*T]`` parameter and all coefficients one ``[N, M]``
parameter (row r = scene ``scene_ids[r]``), so a batch of rows is one gather. With ``sparse_grad=True`` the
gather is an ``embedding`` lookup whose gradient is a sparse tensor holding only the rows of the batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import nn

from latentscenes.config import register_presets, to_dict
from latentscenes.scenes.micro_macro import compose_micro_macro
from latentscenes.utils.io import UnreadableFileError, atomic_save_safetensors


@dataclass
class TriplaneConfig:
    """Tri-plane sizes (paper Sec. 3.4 / 4: T = 64, F_mic = 10, F_mac = 22, M = 50).

    Attributes:
        resolution: T, plane side in texels.
        f_mic: local (per-scene) features; 0 = Macro only.
        f_mac: global (shared) features; 0 = plain Tri-Planes ("Micro").
        n_global: M, number of global tri-planes (needed when f_mac > 0).
        local_init_std, coef_init_std, global_init_std: N(0, std^2) initialisation; the authors use 1 for all
            three, so the global part starts with std ~ sqrt(M) (docs/rendering.md).
    """

    resolution: int = 64
    f_mic: int = 10
    f_mac: int = 22
    n_global: int = 50
    local_init_std: float = 1.0
    coef_init_std: float = 1.0
    global_init_std: float = 1.0

    @property
    def features(self) -> int:
        """F = F_mic + F_mac, the decoder's input size."""
        return self.f_mic + self.f_mac

    def validate(self) -> None:
        """Raises ValueError on impossible sizes."""
        if self.resolution < 2 or self.f_mic < 0 or self.f_mac < 0 or self.features < 1:
            raise ValueError(f"bad tri-plane sizes: {self}")
        if self.f_mac > 0 and self.n_global < 1:
            raise ValueError("f_mac > 0 needs n_global >= 1 global planes")


register_presets(
    TriplaneConfig,
    {
        "test": lambda: TriplaneConfig(resolution=16, f_mic=4, f_mac=4, n_global=4),
        "tiny-cpu": lambda: TriplaneConfig(resolution=32, f_mic=10, f_mac=22, n_global=10),
        "paper": lambda: TriplaneConfig(resolution=64, f_mic=10, f_mac=22, n_global=50),
    },
)


class SceneBank(nn.Module):
    """Per-scene tri-plane parameters (by scene id) plus the shared global planes (paper Eq. 6-7).

    Args:
        cfg: :class:`TriplaneConfig`.
        scene_ids: initial scenes (unique strings), rows 0..N-1 in this order.
        sparse_grad: gather per-scene rows with a sparse gradient (for :class:`LazySceneAdam`; the dense
            ``torch.optim.Adam`` cannot take sparse gradients).
        generator: RNG for the initialisation (reproducible banks).
    Raises:
        ValueError: on invalid sizes or duplicate ids.
    """

    def __init__(
        self,
        cfg: TriplaneConfig,
        scene_ids: Sequence[str] = (),
        sparse_grad: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.sparse_grad = sparse_grad
        self.scene_ids: list[str] = []
        self._rows: dict[str, int] = {}
        T = cfg.resolution
        self._local_shape = (3, cfg.f_mic, T, T)
        self.local = nn.Parameter(torch.empty(0, 3 * cfg.f_mic * T * T)) if cfg.f_mic > 0 else None
        if cfg.f_mac > 0:
            self.coefs = nn.Parameter(torch.empty(0, cfg.n_global))
            g = torch.randn(cfg.n_global, 3, cfg.f_mac, T, T, generator=generator) * cfg.global_init_std
            self.global_planes = nn.Parameter(g)
        else:
            self.coefs = None
            self.global_planes = None
        self.add_scenes(scene_ids, generator=generator)

    # ----------------------------------------------------------------------------------- scenes and rows
    @property
    def num_scenes(self) -> int:
        return len(self.scene_ids)

    def per_scene_parameters(self) -> list[nn.Parameter]:
        """The row-indexed parameters (row r belongs to scene ``scene_ids[r]``)."""
        return [p for p in (self.local, self.coefs) if p is not None]

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters shared by every scene (the global planes; empty when F_mac = 0)."""
        return [self.global_planes] if self.global_planes is not None else []

    def rows(self, ids: Iterable[str]) -> torch.Tensor:
        """Scene ids -> ``LongTensor [B]`` of rows.

        Raises:
            KeyError: for an unknown id (the message names it).
        """
        out = []
        for s in ids:
            if s not in self._rows:
                raise KeyError(f"scene {s!r} is not in the bank ({self.num_scenes} scenes)")
            out.append(self._rows[s])
        return torch.tensor(out, dtype=torch.long, device=self._device())

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def add_scenes(self, ids: Sequence[str], generator: torch.Generator | None = None) -> torch.Tensor:
        """Append new scenes with freshly initialised parameters; existing rows keep their values and rows.

        The per-scene ``nn.Parameter`` objects are replaced by larger ones (autograd caches a leaf's shape, so
        growing one in place is not possible). A :class:`SceneOptimizer` follows the swap by itself and extends
        its per-row state with zeros for the new rows; a hand-built ``torch.optim`` optimiser must be rebuilt.

        Returns:
            ``LongTensor`` rows of the new scenes.
        Raises:
            ValueError: if an id is already in the bank or repeated.
        """
        ids = list(ids)
        dup = [s for s in ids if s in self._rows]
        if dup or len(set(ids)) != len(ids):
            raise ValueError(f"scene ids already present or repeated: {dup or ids}")
        start = self.num_scenes
        n = len(ids)
        if n:
            with torch.no_grad():
                if self.local is not None:
                    new = torch.randn(n, self.local.shape[1], generator=generator) * self.cfg.local_init_std
                    self.local = nn.Parameter(torch.cat([self.local.detach(), new.to(self.local)], 0))
                if self.coefs is not None:
                    new = torch.randn(n, self.cfg.n_global, generator=generator) * self.cfg.coef_init_std
                    self.coefs = nn.Parameter(torch.cat([self.coefs.detach(), new.to(self.coefs)], 0))
        for i, s in enumerate(ids):
            self._rows[s] = start + i
        self.scene_ids.extend(ids)
        return torch.arange(start, start + n, dtype=torch.long, device=self._device())

    def select(self, ids: Sequence[str]) -> "SceneBank":
        """A new bank holding copies of the per-scene rows of ``ids`` (in that order) and **sharing** this bank's
        global planes (the same ``nn.Parameter``). Used to keep one rank's scenes of a multi-process run.

        Raises:
            KeyError: an id not in this bank.
        """
        ids = list(ids)
        rows = self.rows(ids)
        new = SceneBank(self.cfg, [], sparse_grad=self.sparse_grad, generator=torch.Generator().manual_seed(0))
        new.global_planes = self.global_planes
        with torch.no_grad():
            if self.local is not None:
                new.local = nn.Parameter(self.local.detach()[rows].clone())
            if self.coefs is not None:
                new.coefs = nn.Parameter(self.coefs.detach()[rows].clone())
        new.scene_ids = ids
        new._rows = {s: i for i, s in enumerate(ids)}
        return new.to(self._device())

    def set_scenes(self, ids: Sequence[str], tensors: dict[str, torch.Tensor]) -> None:
        """Replace every scene of the bank by ``ids`` with the per-scene tensors ``tensors`` (as
        :meth:`per_scene_state` returns them, rows in ``ids`` order)."""
        ids = list(ids)
        with torch.no_grad():
            if self.local is not None:
                self.local = nn.Parameter(tensors["local"].reshape(len(ids), -1).to(self.local))
            if self.coefs is not None:
                self.coefs = nn.Parameter(tensors["coefs"].to(self.coefs))
        self.scene_ids = ids
        self._rows = {s: i for i, s in enumerate(ids)}

    def assign(self, ids: Sequence[str], tensors: dict[str, torch.Tensor]) -> None:
        """Overwrite the per-scene rows of ``ids`` (scenes of this bank) with ``tensors`` (rows in ``ids`` order)."""
        rows = self.rows(ids)
        with torch.no_grad():
            if self.local is not None:
                self.local.data[rows] = tensors["local"].reshape(len(rows), -1).to(self.local)
            if self.coefs is not None:
                self.coefs.data[rows] = tensors["coefs"].to(self.coefs)

    # ----------------------------------------------------------------------------------- planes
    def _gather(self, p: nn.Parameter, rows: torch.Tensor) -> torch.Tensor:
        if self.sparse_grad:
            return F.embedding(rows, p, sparse=True)
        return p[rows]

    def planes(self, rows: torch.Tensor) -> torch.Tensor:
        """Composed tri-planes of a batch of scenes (paper Eq. 6-7).

        Args:
            rows: ``LongTensor [B]`` (see :meth:`rows`; may repeat a scene).
        Returns:
            ``[B, 3, F_mic + F_mac, T, T]``; gradients reach only the rows in ``rows`` (and the global planes).
        Raises:
            IndexError: for a row outside [0, N).
        """
        rows = rows.to(self._device())
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= self.num_scenes):
            raise IndexError(f"rows must lie in [0, {self.num_scenes}), got {rows.tolist()}")
        local = None
        if self.local is not None:
            local = self._gather(self.local, rows).reshape(rows.shape[0], *self._local_shape)
        coefs = self._gather(self.coefs, rows) if self.coefs is not None else None
        return compose_micro_macro(local, coefs, self.global_planes)

    # ----------------------------------------------------------------------------------- sizes and shards
    def per_scene_state(self, ids: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Per-scene tensors of ``ids`` (all scenes if None), detached copies on the CPU.

        Returns:
            ``{"local": [n, 3, F_mic, T, T], "coefs": [n, M]}`` (an entry is absent when its size is 0).
        """
        ids = list(self.scene_ids if ids is None else ids)
        rows = self.rows(ids).cpu()
        out: dict[str, torch.Tensor] = {}
        if self.local is not None:
            out["local"] = self.local.detach().cpu()[rows].reshape(len(ids), *self._local_shape).clone()
        if self.coefs is not None:
            out["coefs"] = self.coefs.detach().cpu()[rows].clone()
        return out

    def shared_state(self) -> dict[str, torch.Tensor]:
        """``{"global_planes": [M, 3, F_mac, T, T]}`` (empty when F_mac = 0)."""
        return {} if self.global_planes is None else {"global_planes": self.global_planes.detach().cpu().clone()}

    def per_scene_bytes(self) -> int:
        """Bytes of ONE scene's parameters as saved by :meth:`save_shard` ((3 F_mic T^2 + M) x 4 in fp32)."""
        total = 0
        for p in self.per_scene_parameters():
            total += p.shape[1] * p.element_size()
        return total

    def shared_bytes(self) -> int:
        """Bytes of the shared global planes as saved by :meth:`save_shared` (excludes the MLP)."""
        return sum(p.numel() * p.element_size() for p in self.shared_parameters())

    def _metadata(self, ids: list[str]) -> dict[str, str]:
        return {"scene_ids": json.dumps(ids), "triplane_config": json.dumps(to_dict(self.cfg))}

    def save_shard(self, path: str | Path, ids: Sequence[str] | None = None) -> None:
        """Write the per-scene tensors of ``ids`` (all if None) to a safetensors shard, atomically.

        The shard holds exactly :meth:`per_scene_state` (so its tensor bytes = n x :meth:`per_scene_bytes`) and
        the scene ids and tri-plane config as metadata.
        """
        ids = list(self.scene_ids if ids is None else ids)
        atomic_save_safetensors(self.per_scene_state(ids), path, metadata=self._metadata(ids))

    def save_shared(self, path: str | Path) -> None:
        """Write the shared global planes (safetensors, atomic)."""
        atomic_save_safetensors(self.shared_state(), path, metadata=self._metadata([]))

    def _check_meta(self, path: Path, meta: dict[str, str] | None) -> None:
        if not meta or "triplane_config" not in meta:
            raise ValueError(f"{path}: not a scene-bank file (no triplane_config metadata)")
        saved = json.loads(meta["triplane_config"])
        for key in ("resolution", "f_mic", "f_mac", "n_global"):
            if saved.get(key) != getattr(self.cfg, key):
                raise ValueError(f"{path}: saved {key}={saved.get(key)} but this bank has {getattr(self.cfg, key)}")

    def load_shard(self, path: str | Path) -> list[str]:
        """Load a shard written by :meth:`save_shard`: unknown scenes are added, known ones overwritten.

        Returns:
            the scene ids of the shard.
        Raises:
            FileNotFoundError: if the file is missing.
            UnreadableFileError: a truncated or damaged file (not readable as safetensors), naming it.
            ValueError: if the shard's tri-plane sizes differ from this bank's.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: shard not found")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata()
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except SafetensorError as e:
            raise UnreadableFileError(f"{path}: scene shard is truncated or damaged ({e})") from None
        self._check_meta(path, meta)
        ids = json.loads(meta["scene_ids"])
        new = [s for s in ids if s not in self._rows]
        if new:
            self.add_scenes(new)
        rows = self.rows(ids)
        with torch.no_grad():
            if self.local is not None:
                self.local.data[rows] = tensors["local"].reshape(len(ids), -1).to(self.local)
            if self.coefs is not None:
                self.coefs.data[rows] = tensors["coefs"].to(self.coefs)
        return ids

    def load_shared(self, path: str | Path) -> None:
        """Load global planes written by :meth:`save_shared`.

        Raises:
            FileNotFoundError, ValueError: missing file or different sizes.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: shared planes not found")
        with safe_open(str(path), framework="pt") as f:
            self._check_meta(path, f.metadata())
            if self.global_planes is not None:
                with torch.no_grad():
                    self.global_planes.copy_(f.get_tensor("global_planes"))


# ======================================================================================= optimisers
class LazySceneAdam:
    """Adam on row-indexed per-scene parameters that only updates (and only advances the moments of) the
    rows present in the batch.

    Each row keeps its own step count, so every scene follows exactly the Adam trajectory it would have with an
    optimiser of its own that only saw the batches containing it. Rows absent from a batch do not move at all
    (the paper's dense Adam keeps moving them with their momentum, and decays their moments).

    Gradients may be sparse (``SceneBank(sparse_grad=True)``: rows taken from the sparse indices) or dense (then
    pass ``rows`` to :meth:`step`; without it, rows with a non-zero gradient are taken).

    Args:
        params: parameters of shape ``[N, D]`` whose row r belongs to scene r (they may grow between steps).
        lr, betas, eps: Adam hyper-parameters (paper: lr 1e-2 for planes and coefficients).
    """

    def __init__(self, params: Sequence[nn.Parameter], lr: float = 1e-2, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    def _state(self, i: int, p: torch.Tensor) -> dict[str, torch.Tensor]:
        st = self.state.get(i)
        if st is None:
            st = {
                "exp_avg": torch.zeros_like(p.data),
                "exp_avg_sq": torch.zeros_like(p.data),
                "step": torch.zeros(p.shape[0], dtype=torch.long, device=p.device),
            }
            self.state[i] = st
        n_old = st["step"].shape[0]
        if p.shape[0] > n_old:  # scenes were added since the last step: extend with fresh state
            extra = p.shape[0] - n_old
            st["exp_avg"] = torch.cat([st["exp_avg"], p.data.new_zeros(extra, *p.shape[1:])])
            st["exp_avg_sq"] = torch.cat([st["exp_avg_sq"], p.data.new_zeros(extra, *p.shape[1:])])
            st["step"] = torch.cat([st["step"], st["step"].new_zeros(extra)])
        return st

    @torch.no_grad()
    def step(self, rows: torch.Tensor | None = None) -> None:
        """Update the rows of the batch. ``rows``: optional ``LongTensor`` (duplicates allowed)."""
        b1, b2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if g.is_sparse:
                g = g.coalesce()  # sums the gradients of a scene that appears several times in the batch
                idx, vals = g.indices()[0], g.values()
            else:
                idx = torch.unique(rows.to(p.device)) if rows is not None else torch.nonzero(g.flatten(1).abs().sum(1)).flatten()
                vals = g[idx]
            if idx.numel() == 0:
                continue
            st = self._state(i, p)
            st["step"][idx] += 1
            t = st["step"][idx].to(p.dtype).unsqueeze(1)
            m = st["exp_avg"][idx].mul_(b1).add_(vals, alpha=1 - b1)
            v = st["exp_avg_sq"][idx].mul_(b2).addcmul_(vals, vals, value=1 - b2)
            st["exp_avg"][idx] = m
            st["exp_avg_sq"][idx] = v
            denom = (v / (1 - b2**t)).sqrt_().add_(self.eps)
            p.data[idx] -= self.lr * (m / (1 - b1**t)) / denom

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat tensor dict (safetensors-friendly): ``{i}.exp_avg``, ``{i}.exp_avg_sq``, ``{i}.step``."""
        return {f"{i}.{k}": v for i, st in self.state.items() for k, v in st.items()}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        self.state = {}
        for key, v in sd.items():
            i, k = key.split(".", 1)
            self.state.setdefault(int(i), {})[k] = v.clone()


__all__ = [
    "LazySceneAdam",
    "SceneBank",
    "TriplaneConfig",
]
