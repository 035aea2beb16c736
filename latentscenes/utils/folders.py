"""Output folders and who owns them: every command that writes a folder marks it, and refuses a folder that
holds another command's output (or anything else) instead of overwriting it.

The marker is ``OUT/latentscenes.json`` = ``{"command": "train", "kind": "3Da-AE training run", "version": 1}``,
written when the command creates the folder, before any other file. Folders written before markers existed are
recognised by their files (:func:`folder_owner`), so they can still be resumed and are still protected.
"""

from __future__ import annotations

import json
from pathlib import Path

from latentscenes.training import run_format
from latentscenes.utils.io import TEMP_NAME, atomic_write_text

MARKER = "latentscenes.json"
MARKER_VERSION = 1

#: command -> what its folder holds (the messages name both).
KINDS = {
    "train": "3Da-AE training run",
    "exploit": "3Da-AE exploit batch",
    "export": "pre-trained 3Da-AE",
    "fit-rgb": "Tri-Planes (RGB) fit",
    "ae pretrain": "autoencoder pre-training run",
    "ae finetune": "autoencoder fine-tuning run",
    "bench": "benchmark",
    "demo": "demo report",
}


class OutFolderError(ValueError):
    """An ``--out`` folder a command may not write into (a file, another command's output, foreign files)."""


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _legacy_owner(folder: Path) -> str | None:
    """The command that wrote a folder without a marker, from the files only that command writes."""
    # The latent run folders' manifest (training/run_format.py, which imports nothing heavy).
    man = run_format.manifest_path(folder)
    if man.is_file():
        m = _read(man)
        if run_format.is_run_manifest(m):
            return "export" if run_format.is_pretrained(m) else "train"
        if run_format.is_exploit_manifest(m):
            return "exploit"
        return None
    if (folder / "demo_config.json").is_file():
        return "demo"
    if "table1" in _read(folder / "results.json") or "n_rgb_exploit" in _read(folder / "config.json"):
        return "bench"
    # The RGB fit folder's owner module says what its index looks like (imported here: it pulls in torch, which
    # the command line's start-up does not need for folders of the other kinds).
    from latentscenes.baselines.rgb import fit_format as rgb_format

    if (rgb_format.is_rgb_results(_read(folder / rgb_format.RESULTS_FILE))
            or _read(folder / "config.json").get("variant") in rgb_format.VARIANTS):  # a fit stopped before its index
        return "fit-rgb"
    if any((folder / f).is_file() for f in ("checkpoint.safetensors", "ae.safetensors")):
        return "ae pretrain"
    if "crop" in _read(folder / "config.json"):
        return "ae pretrain"
    return None


def folder_owner(folder: str | Path) -> str | None:
    """The command (a key of :data:`KINDS`) whose output ``folder`` holds, or None (missing, empty or unknown)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    marker = folder / MARKER
    if marker.is_file():
        cmd = _read(marker).get("command")
        return cmd if cmd in KINDS else None
    return _legacy_owner(folder)


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


#: Commands that load their views into ``OUT/cache/images-*.safetensors`` before they mark the folder (the load
#: checks the data, and a refused run must leave nothing behind); the file is written again at every start.
CODES_FIRST = ("train", "exploit")


def _only_view_codes(folder: Path) -> bool:
    """``folder`` (a ``cache/``) holds view codes or their temporaries only: a start killed before its marker."""
    return folder.is_dir() and all(
        TEMP_NAME.match(p.name) or (p.is_file() and run_format.is_image_codes_name(p.name))
        for p in folder.iterdir())


def _is_empty(folder: Path, command: str | None = None) -> bool:
    """Nothing in ``folder`` that anyone learned or wrote on purpose: temporaries of an interrupted atomic write
    (of the marker itself, say) and, for ``command`` in :data:`CODES_FIRST`, the view codes of a start killed
    before it marked the folder (nothing learned; the next start writes them again)."""
    for p in folder.iterdir():
        if TEMP_NAME.match(p.name):
            continue
        if command in CODES_FIRST and p.name == run_format.CACHE_DIR and _only_view_codes(p):
            continue
        return False
    return True


def check_out_folder(out: str | Path, command: str, *, resume: bool = False, resumable: bool = False,
                     replaces_own: bool = False, error: type[Exception] = OutFolderError) -> None:
    """Refuse an ``--out`` that ``command`` may not write into; creates nothing.

    Accepted: a missing or empty folder; a folder of ``command`` itself when ``resume`` (``resumable``
    commands) or when the command replaces its own earlier output (``replaces_own``: demo, bench).

    Raises:
        ``error`` (default :class:`OutFolderError`), one line naming ``out`` and the fix: ``out`` is a file;
        holds another command's output (named); holds files of no command; holds ``command``'s own output and
        ``resume`` was not given (``--resume`` named when ``resumable``) or the command cannot resume.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise error(f"{out}: is a file, not a folder; choose another --out")
    if not out.exists() or _is_empty(out, command):
        return
    owner = folder_owner(out)
    if owner is None:
        raise error(f"{out}: folder is not empty and holds no latentscenes output; choose another --out "
                    "(a new or empty folder)")
    if owner != command:
        raise error(f"{out}: holds {_a(KINDS[owner])} (written by `latentscenes {owner}`), not {_a(KINDS[command])}; "
                    f"choose another --out")
    if replaces_own:
        return
    if resumable and not resume:
        raise error(f"{out}: {_a(KINDS[command])} already exists here; pass --resume to continue it or choose "
                    "another --out")
    if not resumable:
        raise error(f"{out}: {_a(KINDS[command])} already exists here (`{command}` cannot resume); choose another "
                    "--out or delete the folder")


def mark_folder(out: str | Path, command: str) -> None:
    """Create ``out`` (if needed) and record that ``command`` owns it (kept if already there)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARKER).is_file():
        atomic_write_text(out / MARKER, json.dumps({"command": command, "kind": KINDS[command],
                                                    "version": MARKER_VERSION}) + "\n")
