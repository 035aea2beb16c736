"""The Tri-Planes (RGB) fit folder: the one module that writes and reads it (issue 13, point 1).

Written by :func:`latentscenes.baselines.rgb.fit.fit_rgb_scenes` (``latentscenes fit-rgb``, the demo, the
benchmark); read back by :func:`latentscenes.evaluation.runs.load_rgb_run` (``eval``, ``render``, ``view``, the Python API, the demo and
the benchmark) and the benchmark's byte count. Layout::

    OUT/results.json          variant ("micro" | "macro"), config (the RGBFitConfig; its "bg" is the background),
                              render_used, triplane_used, scenes [{scene_id, time_s, psnr, ...}], summary,
                              shared, image_size ([H, W] fitted at), and "command" when written by the command line
    OUT/config.json           the resolved config (``fit-rgb`` only; ``latentscenes.config.save_config``)
    OUT/scenes/               the weights (safetensors), and for micro fits each scene's record:
        micro:  <id>.safetensors (SceneBank shard of the scene) + <id>.decoder.safetensors (its own MLP)
                + <id>.json (its entry of results.json's "scenes", written after its weights: the scene is
                done, so that ``fit-rgb --resume`` fits only the scenes without one)
        macro:  coefs.safetensors (SceneBank shard of every scene) + global_planes.safetensors
                (``SceneBank.save_shared``) + decoder.safetensors (the shared MLP)

Only JSON and safetensors are read; scene ids name files, so each must be one plain path component
(``data.types.check_scene_id``). Reading builds CPU objects and renders nothing: evaluation wraps them as a
``SceneModel`` (:mod:`latentscenes.evaluation.runs`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from latentscenes.config import from_dict
from latentscenes.data.types import check_scene_id
from latentscenes.rendering.decoder import TriplaneDecoder
from latentscenes.rendering.renderer import RenderConfig
from latentscenes.scenes.bank import SceneBank, TriplaneConfig
from latentscenes.utils.io import UnreadableFileError, atomic_save_safetensors, atomic_write_text, read_json_object

#: The folder's index file (its presence makes a folder an RGB fit for ``load_run``).
RESULTS_FILE = "results.json"
#: Sub-folder holding the weights.
SCENES_DIR = "scenes"
VARIANTS = ("micro", "macro")
_MACRO_FILES = ("coefs.safetensors", "global_planes.safetensors", "decoder.safetensors")


# ============================================================================================ writing
def write_results(out_dir: str | Path, results: dict[str, Any]) -> Path:
    """Write ``OUT/results.json`` atomically (indent 2, final newline). Returns its path."""
    path = Path(out_dir) / RESULTS_FILE
    atomic_write_text(path, json.dumps(results, indent=2) + "\n")
    return path


def save_micro_scene(out_dir: str | Path, scene_id: str, bank: SceneBank, decoder: torch.nn.Module) -> None:
    """Write one Tri-Planes (RGB) scene: its planes (the whole ``bank``, which holds only it) and its own MLP."""
    sdir = Path(out_dir) / SCENES_DIR
    bank.save_shard(sdir / f"{scene_id}.safetensors")
    atomic_save_safetensors(dict(decoder.state_dict()), sdir / f"{scene_id}.decoder.safetensors")


def write_scene_record(out_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write ``OUT/scenes/<id>.json`` atomically: one micro scene's entry of ``results.json``'s ``scenes``. Written
    after :func:`save_micro_scene`, it marks the scene as done (:func:`read_scene_record`)."""
    path = Path(out_dir) / SCENES_DIR / f"{record['scene_id']}.json"
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def save_macro(out_dir: str | Path, bank: SceneBank, decoder: torch.nn.Module) -> None:
    """Write a Tri-Planes-Macro (RGB) fit: every scene's coefficients, the global planes and the shared MLP."""
    sdir = Path(out_dir) / SCENES_DIR
    coefs, global_planes, dec = (sdir / f for f in _MACRO_FILES)
    bank.save_shard(coefs)
    bank.save_shared(global_planes)
    atomic_save_safetensors(dict(decoder.state_dict()), dec)


# ============================================================================================ reading
def is_rgb_fit(folder: str | Path) -> bool:
    """Whether ``folder`` holds an RGB fit's index file (it may still be damaged: :func:`load_rgb_fit_folder`)."""
    return (Path(folder) / RESULTS_FILE).is_file()


def is_rgb_results(results: dict[str, Any]) -> bool:
    """Whether a parsed ``results.json`` is an RGB fit's index (its ``variant`` and ``scenes`` keys): how folders
    written before the ownership markers are recognised (``utils.folders``)."""
    return results.get("variant") in VARIANTS and isinstance(results.get("scenes"), list)


def fitted_resolution(results: dict[str, Any]) -> int | None:
    """The square image size (px) a fit's scenes were fitted at: ``config.resolution``, else the recorded
    ``image_size`` (fits of scenes given in memory, e.g. the benchmark's 64 px scenes), else None (as stored)."""
    res = (results.get("config") or {}).get("resolution")
    if res is None and isinstance(results.get("image_size"), list) and results["image_size"]:
        res = int(results["image_size"][0])
    return res


def read_results(out_dir: str | Path) -> dict[str, Any]:
    """The parsed ``OUT/results.json``.

    Raises:
        FileNotFoundError: no ``results.json`` (the message names it and the command that writes it).
        UnreadableFileError: (a ``ValueError``) not valid JSON, or not a JSON object; the message names the file.
    """
    return read_json_object(Path(out_dir) / RESULTS_FILE,
                            f"not an RGB baseline folder (no {RESULTS_FILE}; run `latentscenes fit-rgb`)")


def read_scene_record(out_dir: str | Path, scene_id: str) -> dict[str, Any] | None:
    """A micro scene's record (:func:`write_scene_record`) if the scene is done: its record and both its weights
    files exist; None otherwise (not fitted yet, or interrupted before its record was written).

    Raises:
        UnreadableFileError: (a ``ValueError``) the record is not valid JSON or names another scene (names the file).
    """
    sdir = Path(out_dir) / SCENES_DIR
    path = sdir / f"{scene_id}.json"
    weights = (sdir / f"{scene_id}.safetensors", sdir / f"{scene_id}.decoder.safetensors")
    if not path.is_file() or not all(w.is_file() for w in weights):
        return None
    rec = read_json_object(path, "")
    if rec.get("scene_id") != scene_id:
        raise UnreadableFileError(f"{path}: holds the record of scene {rec.get('scene_id')!r}, not {scene_id!r}")
    return rec


def load_micro_scene(out_dir: str | Path, scene_id: str, tcfg: TriplaneConfig,
                     rcfg: RenderConfig) -> tuple[SceneBank, TriplaneDecoder]:
    """One micro scene's planes and MLP (CPU), read before the folder has its ``results.json`` (a resumed fit).

    Raises: as :func:`load_rgb_fit_folder` for that scene's two weights files.
    """
    sdir = Path(out_dir) / SCENES_DIR
    where = sdir / f"{scene_id}.json"
    return (_bank(sdir / f"{scene_id}.safetensors", tcfg, f"planes of scene {scene_id!r}", [scene_id], where),
            _decoder(sdir / f"{scene_id}.decoder.safetensors", tcfg, rcfg))


def fit_files(out_dir: str | Path) -> list[Path]:
    """Every weights file of the fit (``OUT/scenes/*.safetensors``), sorted: what its scenes cost on disk."""
    return sorted((Path(out_dir) / SCENES_DIR).glob("*.safetensors"))


@dataclass
class RGBFitPart:
    """Scenes rendered by one MLP: one scene (micro) or all of them (macro).

    Attributes:
        scene_ids: the scenes of this part, in ``results.json`` order; ``bank``: their planes (CPU);
        ``decoder``: the tri-plane MLP (CPU, eval mode).
    """

    scene_ids: list[str]
    bank: SceneBank
    decoder: TriplaneDecoder


@dataclass
class RGBFitFolder:
    """A Tri-Planes (RGB) fit folder read back (every tensor on the CPU).

    Attributes:
        path: the folder; ``results``: ``results.json`` as written; ``variant``: ``"micro"`` or ``"macro"``;
        ``triplane``, ``render``: the plane layout and renderer settings the fit used (``render`` as saved, not
        forced deterministic); ``background``: ``[3]`` in [0, 1] (the config's ``bg``, white when absent);
        ``scene_ids``: the fitted scenes in ``results.json`` order; ``parts``: the MLPs and their scenes.
    """

    path: Path
    results: dict[str, Any]
    variant: str
    triplane: TriplaneConfig
    render: RenderConfig
    background: torch.Tensor
    scene_ids: list[str]
    parts: list[RGBFitPart]

    def part_of(self, scene_id: str) -> RGBFitPart:
        """The part holding ``scene_id``. Raises KeyError for a scene that was not fitted."""
        for p in self.parts:
            if scene_id in p.scene_ids:
                return p
        raise KeyError(f"scene {scene_id!r} was not fitted (have {len(self.scene_ids)})")


def _decoder(path: Path, tcfg: TriplaneConfig, rcfg: RenderConfig) -> TriplaneDecoder:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: decoder weights missing (fit-rgb was run with save_planes=False?)")
    try:
        state = load_file(str(path))
    except SafetensorError as e:
        raise UnreadableFileError(f"{path}: decoder weights are truncated or damaged ({e})") from None
    dec = TriplaneDecoder(tcfg.features, 3, rcfg.decoder_hidden)
    try:
        dec.load_state_dict(state)
    except RuntimeError as e:
        raise UnreadableFileError(f"{path}: decoder weights do not match the fit's sizes ({e})") from None
    return dec.eval()


def _bank(shard: Path, tcfg: TriplaneConfig, what: str, ids: list[str], res_path: Path) -> SceneBank:
    """The planes of ``ids`` from ``shard`` (a ``SceneBank`` shard; it refuses other plane sizes, naming itself)."""
    if not shard.is_file():
        raise FileNotFoundError(f"{shard}: {what} missing (fit-rgb was run with save_planes=False?)")
    bank = SceneBank(tcfg, [])
    bank.load_shard(shard)
    absent = [s for s in ids if s not in bank.scene_ids]
    if absent:
        raise UnreadableFileError(f"{shard}: holds no planes for scene(s) {absent[:5]} that {res_path} lists")
    return bank


def load_rgb_fit_folder(out_dir: str | Path) -> RGBFitFolder:
    """Read a folder written by ``fit_rgb_scenes`` / ``latentscenes fit-rgb`` (layout: module docstring).

    Raises:
        FileNotFoundError: no ``results.json``, or a weights file it needs is missing (the message names the file).
        UnreadableFileError: (a ``ValueError``) ``results.json`` or a weights file is truncated or damaged, a key
            ``results.json`` needs is missing, or the variant is unknown; the message names the file.
        DatasetError: a scene id in ``results.json`` that is not one plain path component.
        ValueError: a shard whose plane sizes differ from ``triplane_used`` (``SceneBank``; names the file).
    """
    out_dir = Path(out_dir)
    res = read_results(out_dir)
    res_path = out_dir / RESULTS_FILE
    missing = [k for k in ("triplane_used", "render_used", "scenes") if k not in res]
    if missing:
        raise UnreadableFileError(f"{res_path}: missing {', '.join(missing)} (not written by fit-rgb, or damaged)")
    variant = res.get("variant", "micro")
    if variant not in VARIANTS:
        raise UnreadableFileError(f"{res_path}: variant {variant!r} is neither 'micro' nor 'macro'")
    tcfg = from_dict(TriplaneConfig, res["triplane_used"], where=f"{res_path}:triplane_used")
    rcfg = from_dict(RenderConfig, res["render_used"], where=f"{res_path}:render_used")
    config = res.get("config") if isinstance(res.get("config"), dict) else {}
    bg = torch.tensor(config.get("bg", [1.0, 1.0, 1.0]), dtype=torch.float32)
    # The ids name the files read under scenes/: one plain component each, so nothing outside is read.
    ids = [check_scene_id(r["scene_id"], str(res_path)) for r in res["scenes"]]
    sdir = out_dir / SCENES_DIR
    if variant == "macro":
        coefs, global_planes, dec = (sdir / f for f in _MACRO_FILES)
        bank = _bank(coefs, tcfg, "coefficients of the scenes", ids, res_path)
        if not global_planes.is_file():
            raise FileNotFoundError(f"{global_planes}: global planes missing (fit-rgb was run with save_planes=False?)")
        try:
            bank.load_shared(global_planes)
        except SafetensorError as e:
            raise UnreadableFileError(f"{global_planes}: global planes are truncated or damaged ({e})") from None
        parts = [RGBFitPart(list(ids), bank, _decoder(dec, tcfg, rcfg))]
    else:
        parts = [RGBFitPart([s], _bank(sdir / f"{s}.safetensors", tcfg, f"planes of scene {s!r}", [s], res_path),
                            _decoder(sdir / f"{s}.decoder.safetensors", tcfg, rcfg)) for s in ids]
    return RGBFitFolder(out_dir, res, variant, tcfg, rcfg, bg, ids, parts)
