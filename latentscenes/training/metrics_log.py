"""Metrics of a run: always JSON Lines (``RUN/metrics.jsonl``), optionally TensorBoard and wandb."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from latentscenes.utils.io import disk_full


class MetricsLogger:
    """Append one JSON object per line to ``path`` (flushed at once, so a crash loses nothing written).

    Args:
        path: the ``.jsonl`` file (created with its folder; appended to on resume).
        tensorboard_dir: also write numeric fields as TensorBoard scalars ``<stage>/<key>`` there (requires the
            optional ``tensorboard`` package; ImportError names the extra to install).
        wandb_project: also log to wandb (optional ``wandb`` package; no entity is hard-coded).
        run_config: dict sent to wandb as the run config.
    """

    def __init__(
        self, path: str | Path, tensorboard_dir: str | Path | None = None, wandb_project: str | None = None,
        run_config: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")
        self._tb = None
        self._wandb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter  # optional dependency: tensorboard
            except ImportError as e:  # pragma: no cover - optional extra
                raise ImportError("TensorBoard logging needs `pip install latentscenes[tensorboard]`") from e
            self._tb = SummaryWriter(str(tensorboard_dir))
        if wandb_project:
            try:
                import wandb  # optional dependency: wandb
            except ImportError as e:  # pragma: no cover - optional extra
                raise ImportError("wandb logging needs `pip install latentscenes[wandb]`") from e
            self._wandb = wandb.init(project=wandb_project, config=run_config or {}, resume="allow")

    def log(self, record: dict[str, Any]) -> None:
        """Write ``record`` (plus a wall-clock ``time``) as one JSON line; numeric fields also go to TB/wandb.

        Raises:
            DiskFullError: no room to write the line (naming the file).
        """
        rec = {"time": round(time.time(), 3), **record}
        try:
            self._f.write(json.dumps(rec, default=float) + "\n")
            self._f.flush()
        except OSError as e:
            full = disk_full(e, self.path)
            if full is not None:
                raise full from None
            raise
        step = rec.get("step")
        stage = rec.get("stage", "run")
        nums = {k: v for k, v in rec.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("time", "step")}
        if self._tb is not None and step is not None:
            for k, v in nums.items():
                self._tb.add_scalar(f"{stage}/{k}", v, step)
        if self._wandb is not None:
            self._wandb.log({f"{stage}/{k}": v for k, v in nums.items()})

    def close(self) -> None:
        self._f.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:  # pragma: no cover - optional extra
            self._wandb.finish()

    def __enter__(self) -> "MetricsLogger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
