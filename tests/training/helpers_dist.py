"""Helpers of tests/training/test_distributed.py: run ``exploit_3daae`` / ``train_3daae`` in several gloo processes
(``torch.multiprocessing.spawn``), as torchrun would, and report what each rank held.

(A module of its own: the spawned processes import it by name, without the test module and its fixtures.)
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import torch


class Interrupt(RuntimeError):
    """Stands for a crash of one rank in the middle of a stage."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shared_digest(system) -> str:
    """sha256 of the replicated parameters (autoencoder, MLP, global planes) of a LatentSystem."""
    h = hashlib.sha256()
    tensors = [p for _, p in sorted(system.ae.vae.state_dict().items())]
    tensors += [p for _, p in sorted(system.mlp.state_dict().items())]
    tensors += list(system.bank.shared_parameters())
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _worker(rank: int, world_size: int, port: int, run: str, out: str, cfg, data: str, resume: bool,
            report: str, fail_rank: int, fail_after: int, kind: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    import torch.distributed as dist

    import latentscenes.training.stages as stages
    from latentscenes.training.pipeline import exploit_3daae, train_3daae

    if rank == fail_rank:
        real, calls = stages.stage_losses, {"n": 0}

        def flaky(*a, **k):
            calls["n"] += 1
            if calls["n"] > fail_after:
                raise Interrupt(f"rank {rank} interrupted")
            return real(*a, **k)

        stages.stage_losses = flaky
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    if kind == "train":
        res = train_3daae(cfg, out, data_root=data, resume=resume)
    else:
        res = exploit_3daae(run, out, cfg, data_root=data, resume=resume)
    system = res["system"]
    Path(report, f"rank{rank}.json").write_text(json.dumps({
        "bank_scenes": list(system.bank.scene_ids), "shared": shared_digest(system),
        "steps": {k: v["steps"] for k, v in res["stages"].items()}}))
    dist.destroy_process_group()


def spawn_exploit(run, out, cfg, data, report, *, world_size: int = 2, resume: bool = False, fail_rank: int = -1,
                  fail_after: int = 0, kind: str = "exploit") -> list[dict]:
    """``exploit_3daae(run, out, cfg, data_root=data, resume=resume)`` in ``world_size`` gloo processes
    (``kind="train"``: ``train_3daae(cfg, out, data_root=data, resume=resume)``; ``run`` is unused).

    ``fail_rank`` raises :class:`Interrupt` in that rank at its ``fail_after + 1``-th loss computation (the spawn
    then ends every process and raises). Returns each rank's report: the scenes its bank held at the end (rank 0:
    every scene, gathered for writing), the sha256 of its replicated parameters, the stages' step counts.
    """
    import torch.multiprocessing as mp

    Path(report).mkdir(parents=True, exist_ok=True)
    mp.spawn(_worker, args=(world_size, free_port(), str(run), str(out), cfg, str(data), resume, str(report),
                            fail_rank, fail_after, kind), nprocs=world_size, join=True)
    return [json.loads(Path(report, f"rank{r}.json").read_text()) for r in range(world_size)]
