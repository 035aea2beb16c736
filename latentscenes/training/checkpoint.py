"""Resumable checkpoints without pickle: tensors in safetensors, everything else in JSON.

A stage checkpoint is a folder written as a whole and then renamed into place, so that a crash while
writing never leaves a half-written checkpoint under the final name (the previous good one stays):

    <stage_dir>/ckpt/
        state.json            step, stage name, loss history tail, the names of the files below
        shared.safetensors    shared weights (encoder/decoder/MLP/global planes, whatever the stage owns)
        scenes/               per-scene parameters, in the scene bank's own shard format
        optim.safetensors     every optimiser's state flattened to tensors (+ JSON metadata)

Optimiser state is a nested ``state_dict`` (ints, floats, tuples, tensors); :func:`flatten_state` turns it
into ``{dotted.path: tensor}`` plus a JSON skeleton, and :func:`unflatten_state` inverts it exactly. Loading
uses ``safetensors.torch.load_file`` and ``json.loads`` only: nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from latentscenes.utils.io import (
    TEMP_NAME,
    UnreadableFileError,
    atomic_save_safetensors,
    atomic_write_text,
    current_umask,
    fsync_dir,
)
from latentscenes.utils.crash import crash_point

_TENSOR = "__tensor__"
_TUPLE = "__tuple__"


def flatten_state(obj: Any, prefix: str = "s") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested structure of dicts/lists/tuples/scalars/tensors into tensors and a JSON skeleton.

    Args:
        obj: e.g. ``optimizer.state_dict()``. Dict keys may be ``str`` or ``int`` (kept distinct).
        prefix: key prefix of the returned tensors.
    Returns:
        ``(tensors, skeleton)``: ``tensors`` maps unique dotted keys to tensors (the state's own CPU tensors when
        contiguous, not copies: write them before the state changes); ``skeleton`` is JSON-able and references them. :func:`unflatten_state` rebuilds ``obj`` from both.
    Raises:
        TypeError: for a value that is neither a tensor, a JSON scalar nor a container.
    """
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()

    def walk(v: Any, path: str) -> Any:
        if isinstance(v, torch.Tensor):
            # No copy of a CPU tensor that is contiguous (the state is saved before anything changes it again): a
            # copy of every optimiser state would double the per-scene Adam moments at each checkpoint. A tensor
            # sharing its storage with one already taken is copied (safetensors refuses shared storage).
            t = v.detach().contiguous().cpu()
            ptr = t.untyped_storage().data_ptr()
            if ptr in storages:
                t = t.clone()
            storages.add(t.untyped_storage().data_ptr())
            tensors[path] = t
            return {_TENSOR: path}
        if isinstance(v, dict):
            # int and str keys are both legal in torch state dicts; keep the type in the key.
            return {"__dict__": [[("i" if isinstance(k, int) else "s") + str(k), walk(x, f"{path}.{k}")] for k, x in v.items()]}
        if isinstance(v, (list, tuple)):
            items = [walk(x, f"{path}.{i}") for i, x in enumerate(v)]
            return {_TUPLE: items} if isinstance(v, tuple) else items
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise TypeError(f"cannot checkpoint value of type {type(v).__name__} at {path}")

    skeleton = walk(obj, prefix)
    return tensors, skeleton


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`.

    Raises:
        KeyError: if a referenced tensor is missing (a truncated or mismatched checkpoint).
    """

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            if _TENSOR in v:
                return tensors[v[_TENSOR]]
            if _TUPLE in v:
                return tuple(walk(x) for x in v[_TUPLE])
            if "__dict__" in v:
                return {(int(k[1:]) if k[0] == "i" else k[1:]): walk(x) for k, x in v["__dict__"]}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(skeleton)


def save_states(states: dict[str, Any], path: Path) -> None:
    """Save several nested states (e.g. ``{"adam_mlp": opt.state_dict()}``) into one safetensors file.

    The JSON skeleton goes into the safetensors metadata (``__skeleton__``), so one file holds everything.
    """
    tensors: dict[str, torch.Tensor] = {}
    skeletons: dict[str, Any] = {}
    for name, st in states.items():
        t, sk = flatten_state(st, prefix=name)
        tensors.update(t)
        skeletons[name] = sk
    if not tensors:  # safetensors refuses an empty file on some versions; keep a marker tensor
        tensors["__empty__"] = torch.zeros(1)
    atomic_save_safetensors(tensors, path, metadata={"__skeleton__": json.dumps(skeletons)})


def load_states(path: Path) -> dict[str, Any]:
    """Read a file written by :func:`save_states` (no unpickling).

    Raises:
        FileNotFoundError: if the file does not exist. UnreadableFileError: a truncated or damaged file.
        ValueError: if it has no skeleton metadata (not written by :func:`save_states`).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: optimiser state file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except SafetensorError as e:
        raise UnreadableFileError(f"{path}: optimiser state file is truncated or damaged ({e})") from None
    if "__skeleton__" not in meta:
        raise ValueError(f"{path}: not an optimiser-state file (no __skeleton__ metadata)")
    skeletons = json.loads(meta["__skeleton__"])
    return {name: unflatten_state(sk, tensors) for name, sk in skeletons.items()}


def write_checkpoint_dir(final_dir: Path, write: Callable[[Path], None]) -> None:
    """Write a checkpoint folder atomically: ``write(tmp_dir)`` then swap it in for ``final_dir``.

    The previous ``final_dir`` is renamed aside and deleted only after the new one is in place, so at every
    instant either the old or the new complete checkpoint exists (``existing_checkpoint_dir`` also looks at the
    aside copy if a crash happened between the two renames). An aside copy left by such a crash is put back
    first, never deleted while it is the only committed checkpoint. The folder gets the umask's mode (not
    ``mkdtemp``'s 0700) and the parent folder is fsynced after the renames.
    """
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.", suffix=".tmp", dir=final_dir.parent))
    try:
        write(tmp)
        os.chmod(tmp, 0o777 & ~current_umask())
        _fsync_tree(tmp)
        crash_point("checkpoint.written", str(final_dir))
        old = _aside(final_dir)
        if old.exists():
            if final_dir.exists():
                shutil.rmtree(old)
            else:  # a swap interrupted between its renames: the aside copy is the committed checkpoint
                os.replace(old, final_dir)
        if final_dir.exists():
            os.replace(final_dir, old)
            crash_point("checkpoint.aside", str(final_dir))
        os.replace(tmp, final_dir)
        fsync_dir(final_dir.parent)
        crash_point("checkpoint.swapped", str(final_dir))
        if old.exists():
            shutil.rmtree(old)
            fsync_dir(final_dir.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _aside(final_dir: Path) -> Path:
    return final_dir.parent / f".{final_dir.name}.old"


def existing_checkpoint_dir(final_dir: Path) -> Path | None:
    """The complete checkpoint folder to resume from, or ``None`` (also finds a crash-interrupted swap)."""
    final_dir = Path(final_dir)
    if (final_dir / "state.json").exists():
        return final_dir
    old = _aside(final_dir)
    if (old / "state.json").exists():
        return old
    return None


def recover_checkpoint_dir(final_dir: Path) -> Path | None:
    """Before resuming: settle an interrupted swap of ``final_dir`` and delete its leftovers.

    ``final_dir`` when complete stays the checkpoint. Otherwise the complete candidate with the highest step
    among the aside copy (``.ckpt.old``) and the swap's temporary folders (``.ckpt.<random>.tmp``; complete
    once their ``state.json``, written last, exists) is renamed to ``final_dir``. Every other aside copy and
    temporary folder is deleted (an incomplete temporary is what a crash mid-write leaves).

    Returns:
        ``final_dir`` when a checkpoint exists after recovery, else None.
    """
    final_dir = Path(final_dir)
    parent = final_dir.parent
    if not parent.is_dir():
        return None
    temps = [p for p in parent.iterdir()
             if p.is_dir() and not p.is_symlink() and p.name.startswith(f".{final_dir.name}.")
             and TEMP_NAME.match(p.name)]
    old = _aside(final_dir)
    if not (final_dir / "state.json").exists():
        candidates = [p for p in [old, *temps] if (p / "state.json").is_file()]
        best = max(candidates, key=_checkpoint_step, default=None)
        if best is not None:
            if final_dir.exists():  # never complete here: only a finished swap creates it
                shutil.rmtree(final_dir)
            os.replace(best, final_dir)
    for p in [old, *temps]:
        if p.exists():
            shutil.rmtree(p)
    fsync_dir(parent)
    return final_dir if (final_dir / "state.json").exists() else None


def _checkpoint_step(folder: Path) -> int:
    try:
        return int(read_json(folder / "state.json").get("step", -1))
    except (ValueError, OSError, AttributeError):  # unreadable: the least preferred candidate
        return -1


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write (indent 2)."""
    atomic_write_text(Path(path), json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file.

    Raises:
        FileNotFoundError: when missing. ValueError: when not valid JSON (message names the file).
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
