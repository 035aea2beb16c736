"""The latent run folder format: the one module that names its files and manifest keys (one owner per on-disk format).

Three folders share it (all written by :mod:`latentscenes.training.pipeline`):

* a **training run** (``latentscenes train --out RUN``; manifest ``format`` = :data:`RUN_FORMAT`, ``kind`` "train");
* an **exploit batch** (``latentscenes exploit --run RUN --out BATCH``; :data:`EXPLOIT_FORMAT`, ``kind`` "exploit"):
  its own scenes, and in ``model/shared.safetensors`` its own fine-tuned decoder, MLP and global planes B; the
  encoder is the source run's, named by the manifest (:func:`source_run_spec`);
* a **pre-trained 3Da-AE** (``latentscenes export --run RUN --out PKG``; the shipped one is ``--run shipped``):
  :data:`RUN_FORMAT`, ``kind`` "pretrained", ``scenes_included: false``, no ``model/scenes/``.

Layout (names: the constants below; paths: the functions of the "paths" section)::

    FOLDER/config.json                  the resolved PipelineConfig (``latentscenes.config.save_config``)
    FOLDER/manifest.json                format, format_version, kind, status ("running" | "done"), scene ids, the
                                        effective StageConfig of every stage (``stage_configs``), per-stage
                                        results (``stages``), ``model`` (the files below, ``sha256_shared``),
                                        ``latent_cache_s``, ``bytes`` (:func:`train_manifest`,
                                        :func:`exploit_manifest`, :func:`pretrained_manifest`, :func:`finish_manifest`)
    FOLDER/metrics.jsonl                one JSON object per log event (``training/metrics_log.py``)
    FOLDER/tensorboard/                 with ``logging.tensorboard`` only
    FOLDER/cache/latents-<split>.safetensors   Encode-Scene targets (``training/data.py`` writes and reads them;
                                        ``latents-<split>-rank<r>of<n>.safetensors`` per process with several)
    FOLDER/stages/<stage>/ckpt/         the stage's last checkpoint (``training/checkpoint.py`` owns its contents)
    FOLDER/model/shared.safetensors     shared weights (``training/stages.py`` ``save_shared``)
    FOLDER/model/scenes/scenes-*.safetensors   per-scene planes + coefficients (``SceneBank`` shards)

Reading raises errors that name the file (as :mod:`latentscenes.baselines.rgb.fit_format`): FileNotFoundError for a
missing manifest, :class:`~latentscenes.utils.io.UnreadableFileError` (a ``ValueError``) for a damaged one. Only
JSON is read here; the weights are read by ``training/pipeline.py`` (``load_trained`` / ``load_exploited``).

This module imports nothing heavy (no torch): ``utils/folders.py`` reads the format identifiers from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from latentscenes.utils.io import UnreadableFileError, atomic_write_text, file_sha256, read_json_object

#: Manifest ``format`` of a training run and of a pre-trained 3Da-AE (told apart by ``kind``).
RUN_FORMAT = "latentscenes-3daae-run"
#: Manifest ``format`` of an exploit batch.
EXPLOIT_FORMAT = "latentscenes-3daae-exploit"
#: Manifest ``format_version`` of all three.
FORMAT_VERSION = 1
#: Manifest ``kind`` values.
KIND_TRAIN, KIND_EXPLOIT, KIND_PRETRAINED = "train", "exploit", "pretrained"
#: Manifest ``status`` values: a folder being written, and a finished one (``model/`` complete).
STATUS_RUNNING, STATUS_DONE = "running", "done"

CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
CACHE_DIR = "cache"
STAGES_DIR = "stages"
CKPT_DIR = "ckpt"
MODEL_DIR = "model"
#: The shared weights file, in ``model/`` and in every stage checkpoint.
SHARED_FILE = "shared.safetensors"
#: The per-scene shards' folder, in ``model/`` and in every stage checkpoint.
SCENES_DIR = "scenes"
#: The shards in it (``SceneBank`` shard format, at most ``stages.SHARD_SCENES`` scenes each): :func:`scene_shard_name`.
SCENE_SHARD_GLOB = "scenes-*.safetensors"
#: A pre-trained 3Da-AE's copy of the base autoencoder it was trained from, when that was a local file (the plain-AE
#: ablation and the benchmark's AE ceiling need it); its config's ``ae.path`` then reads :data:`BASE_AE_REF`.
BASE_AE_FILE = "base_ae.safetensors"
#: ``ae.path`` of such a package's config.json: relative to the package folder (``load_run_config`` resolves it).
BASE_AE_REF = f"{MODEL_DIR}/{BASE_AE_FILE}"
#: The manifest key of a multi-process folder's record (``training/distributed.py``).
DISTRIBUTED_KEY = "distributed"

_DECODER_NOTE = ("model/shared.safetensors holds this batch's fine-tuned decoder, MLP and global planes;"
                 " the encoder is the source run's.")


# ============================================================================================ paths
def config_path(folder: str | Path) -> Path:
    """``FOLDER/config.json``: the resolved config."""
    return Path(folder) / CONFIG_FILE


def manifest_path(folder: str | Path) -> Path:
    """``FOLDER/manifest.json``."""
    return Path(folder) / MANIFEST_FILE


def metrics_path(folder: str | Path) -> Path:
    """``FOLDER/metrics.jsonl``: the metrics log."""
    return Path(folder) / METRICS_FILE


def tensorboard_dir(folder: str | Path) -> Path:
    """``FOLDER/tensorboard``: TensorBoard's folder (``logging.tensorboard``)."""
    return Path(folder) / TENSORBOARD_DIR


def stages_dir(folder: str | Path) -> Path:
    """``FOLDER/stages``: one sub-folder per stage."""
    return Path(folder) / STAGES_DIR


def stage_dir(folder: str | Path, stage: str) -> Path:
    """``FOLDER/stages/<stage>``: what ``run_stage`` is given as ``ckpt_dir``."""
    return stages_dir(folder) / stage


def ckpt_dir(folder: str | Path, stage: str) -> Path:
    """``FOLDER/stages/<stage>/ckpt``: the stage's checkpoint folder (``training/checkpoint.py``)."""
    return stage_dir(folder, stage) / CKPT_DIR


def latent_cache_path(folder: str | Path, split: str, shard: Any = None) -> Path:
    """``FOLDER/cache/latents-<split>.safetensors``; with several processes (``shard``: a ``distributed.Shard``,
    read for ``rank`` and ``world_size``) one file per rank, ``latents-<split>-rank<r>of<n>.safetensors``."""
    name = (f"latents-{split}.safetensors" if shard is None
            else f"latents-{split}-rank{shard.rank}of{shard.world_size}.safetensors")
    return Path(folder) / CACHE_DIR / name


def image_codes_path(folder: str | Path, split: str, rank: int = 0, world_size: int = 1) -> Path:
    """``FOLDER/cache/images-<split>.safetensors``: the train views' pixel codes, memory-mapped while the run
    trains (``training.data.ImageCodesWriter``, written again at every start); one file per rank with several
    processes (``images-<split>-rank<r>of<n>.safetensors``)."""
    name = f"images-{split}.safetensors" if world_size <= 1 else f"images-{split}-rank{rank}of{world_size}.safetensors"
    return Path(folder) / CACHE_DIR / name


def is_image_codes_name(name: str) -> bool:
    """Whether ``name`` is a file name :func:`image_codes_path` gives (any split, rank and world size)."""
    return name.startswith("images-") and name.endswith(".safetensors")


def scene_shard_name(k: int) -> str:
    """The file name of the ``k``-th scene shard of a ``scenes/`` folder: ``scenes-00000.safetensors``, ..."""
    return f"scenes-{k:05d}.safetensors"


def model_dir(folder: str | Path) -> Path:
    """``FOLDER/model``: the finished model."""
    return Path(folder) / MODEL_DIR


def shared_path(folder: str | Path) -> Path:
    """``FOLDER/model/shared.safetensors``: autoencoder (the parts the folder owns), MLP, global planes B, latent
    background."""
    return model_dir(folder) / SHARED_FILE


def base_ae_path(folder: str | Path) -> Path:
    """``FOLDER/model/base_ae.safetensors``: a pre-trained 3Da-AE's base autoencoder (:data:`BASE_AE_FILE`)."""
    return model_dir(folder) / BASE_AE_FILE


def scenes_dir(folder: str | Path) -> Path:
    """``FOLDER/model/scenes``: the scene shards (absent in a pre-trained 3Da-AE)."""
    return model_dir(folder) / SCENES_DIR


def scene_files(folder: str | Path) -> list[Path]:
    """Every weights file under ``FOLDER/model/scenes``, sorted (none when the folder is missing)."""
    return sorted(scenes_dir(folder).glob("*.safetensors"))


def model_files(folder: str | Path) -> list[Path]:
    """The finished model's weights files: ``model/shared.safetensors`` then :func:`scene_files` (only those that
    exist): what the folder's model costs on disk."""
    shared = shared_path(folder)
    return ([shared] if shared.is_file() else []) + scene_files(folder)


def model_files_sha256(folder: str | Path) -> dict[str, str]:
    """``{path relative to FOLDER: sha256 hex}`` of every :func:`model_files` file, in that order.

    Raises:
        OSError: a file cannot be read (the message names it).
    """
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): file_sha256(p) for p in model_files(folder)}


def shared_sha256(folder: str | Path) -> str:
    """sha256 (hex) of ``FOLDER/model/shared.safetensors`` as it is now.

    Raises:
        FileNotFoundError / OSError: the file is missing or cannot be read (the message names it).
    """
    return file_sha256(shared_path(folder))


# ============================================================================================ writing
def write_manifest(folder: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``FOLDER/manifest.json`` atomically (indent 2, keys in the dict's order, final newline). Returns its
    path."""
    path = manifest_path(folder)
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path


def model_record(scene_shards: Sequence[str], sha256_shared: str | None = None) -> dict[str, Any]:
    """The manifest's ``model`` entry: ``{"shared": "model/shared.safetensors", "scenes": ["model/scenes/<name>",
    ...]}`` for the shard file names ``scene_shards`` (as ``save_scene_shards`` returns them), plus
    ``sha256_shared`` when given."""
    rec: dict[str, Any] = {"shared": f"{MODEL_DIR}/{SHARED_FILE}",
                           "scenes": [f"{MODEL_DIR}/{SCENES_DIR}/{s}" for s in scene_shards]}
    if sha256_shared is not None:
        rec["sha256_shared"] = sha256_shared
    return rec


def with_shared_sha256(model: dict[str, Any], folder: str | Path) -> dict[str, Any]:
    """``model`` (:func:`model_record`) with the sha256 of ``FOLDER/model/shared.safetensors`` as it is now added
    (``sha256_shared``; exploit batches record it as their source's and refuse a changed file)."""
    return {**model, "sha256_shared": shared_sha256(folder)}


def train_manifest(*, device: str, scene_ids: list[str], n_views: int, view_copies: int, image_size: list[int],
                   image_storage: dict, stage_configs: dict, torch_threads: int) -> dict[str, Any]:
    """A training run's manifest when it starts (``status`` "running", no stage results yet).

    Args:
        device: where it runs. scene_ids / n_views: the run's scenes and source views; view_copies: the copies
            of each view (``data.shift_grid ** 2``); image_size: ``[H, W]`` pixels; image_storage: the view table's
            ``storage()``; stage_configs: ``{stage: StageConfig as a dict}`` as each stage runs; torch_threads:
            the torch threads of this session (the stages' clocks depend on them).
    """
    return {
        "format": RUN_FORMAT, "format_version": FORMAT_VERSION, "kind": KIND_TRAIN, "status": STATUS_RUNNING,
        "device": device, "scene_ids": scene_ids, "n_views": n_views,
        "view_copies": view_copies, "image_size": image_size, "image_storage": image_storage,
        "stage_configs": stage_configs, "stages": {},
        "torch_threads": torch_threads,
    }


def exploit_manifest(*, source_run: Path, source_sha256_shared: str | None, shipped: str | None, device: str,
                     strategy: str, no_prior: bool, scene_ids: list[str], n_views: int, view_copies: int,
                     image_size: list[int], image_storage: dict, stage_configs: dict) -> dict[str, Any]:
    """An exploit batch's manifest when it starts (``status`` "running", no stage results yet).

    Args:
        source_run: the training run (or pre-trained folder) the batch learns from (recorded resolved);
            source_sha256_shared: its ``model.sha256_shared`` (checked when the batch is loaded); shipped: the
            name it was given as when it is a shipped package (``"shipped"``, ``"shipped-128"``; resolved again
            when the batch is loaded: :func:`source_run_spec`), else None.
        device, strategy, no_prior: as the batch runs. scene_ids, n_views, view_copies, image_size,
            image_storage, stage_configs: as :func:`train_manifest`.
    """
    return {
        "format": EXPLOIT_FORMAT, "format_version": FORMAT_VERSION, "kind": KIND_EXPLOIT, "status": STATUS_RUNNING,
        "source_run": str(Path(source_run).resolve()), "source_sha256_shared": source_sha256_shared,
        "source_run_spec": shipped or None, "device": device,
        "strategy": strategy, "no_prior": no_prior, "scene_ids": scene_ids,
        "n_views": n_views, "view_copies": view_copies,
        "image_size": image_size, "image_storage": image_storage,
        "stage_configs": stage_configs,
        "stages": {},
        "decoder_note": _DECODER_NOTE,
    }


def record_stage(manifest: dict[str, Any], stage: str, result: dict) -> None:
    """Record a finished stage's result (``StageResult.to_dict()``) under ``manifest["stages"][stage]``."""
    manifest["stages"][stage] = result


def set_stages(manifest: dict[str, Any], stages: dict[str, dict]) -> None:
    """Replace the manifest's per-stage results (e.g. a resumed run's, read from its manifest)."""
    manifest["stages"] = stages


def set_distributed(manifest: dict[str, Any], record: dict) -> None:
    """Record a multi-process folder's ``{"world_size", "backend", "scene_owner"}`` (``--resume`` checks it)."""
    manifest[DISTRIBUTED_KEY] = record


def distributed_record(world_size: int, backend: str) -> dict[str, Any]:
    """What a multi-process folder records under :data:`DISTRIBUTED_KEY`."""
    return {"world_size": world_size, "backend": backend,
            "scene_owner": "scene k of scene_ids belongs to rank k % world_size"}


def finish_manifest(manifest: dict[str, Any], *, stages: dict[str, dict] | None, model: dict, latent_cache_s: float,
                    bytes_: dict[str, int]) -> dict[str, Any]:
    """Mark a run or batch finished, in place: its stage results (``None``: those recorded already), ``model``
    (:func:`model_record`), ``latent_cache_s`` (seconds spent encoding), ``status`` "done", ``bytes``
    (``pipeline.model_bytes``). Returns ``manifest``."""
    if stages is not None:
        manifest["stages"] = stages
    manifest["model"] = model
    manifest["latent_cache_s"] = latent_cache_s
    manifest["status"] = STATUS_DONE
    manifest["bytes"] = bytes_
    return manifest


def pretrained_manifest(run_manifest: dict[str, Any], *, source_run: Path, stage: str | None, step: int | None,
                        stage_steps: dict | None, through: Sequence[str], sha256_shared: str, notes: dict,
                        entry_cost_s: float, latent_cache_s: float) -> dict[str, Any]:
    """The manifest of a pre-trained 3Da-AE exported from a training run whose manifest is ``run_manifest``.

    Args:
        source_run: the run folder; stage / step: the checkpoint the weights came from (None: the finished
            model); stage_steps: ``{stage: steps}`` of a finished run; through: the stages the weights went through
            (their ``stage_configs`` are kept); sha256_shared: of the exported ``model/shared.safetensors``;
            notes: JSON-able facts; entry_cost_s / latent_cache_s: Eq. 9's entry cost as measured by the run, and
            its latent-encoding part (seconds).
    """
    m = run_manifest
    return {
        "format": RUN_FORMAT, "format_version": FORMAT_VERSION, "kind": KIND_PRETRAINED, "status": STATUS_DONE,
        "scenes_included": False, "scene_ids": [], "train_scene_ids": list(m.get("scene_ids", [])),
        "image_size": m.get("image_size"), "n_views": m.get("n_views"),
        "source": {"run": str(source_run), "stage": stage or "final", "step": step, "stage_steps": stage_steps},
        "stages": stage_results(m) if stage is None else {},
        "stage_configs": {k: v for k, v in m.get("stage_configs", {}).items() if k in through},
        "model": model_record([], sha256_shared),
        "bytes": m.get("bytes"), "notes": notes,
        "entry_cost_s": entry_cost_s,
        "latent_cache_s": latent_cache_s,
        "measured_on": {"device": m.get("device"), "torch_threads": m.get("torch_threads")},
    }


def derived_pretrained_manifest(package_manifest: dict[str, Any], *, derived_from: Path | str, sha256_shared: str,
                                notes: dict) -> dict[str, Any]:
    """The manifest of a pre-trained 3Da-AE derived from another package (``export --run PKG``, e.g. its global
    planes resampled to another T): the source package's record (training scenes, stages, entry cost, source run)
    with the new weights' sha256, ``source.derived_from`` (the package's folder) and ``notes`` added to its own."""
    m = json.loads(json.dumps(package_manifest))  # a deep copy
    m["source"] = {**(m.get("source") or {}), "derived_from": str(derived_from)}
    m["model"] = model_record([], sha256_shared)
    m["notes"] = {**(m.get("notes") or {}), **notes}
    return m


def add_entry_cost_stage(manifest: dict[str, Any], name: str, result: dict[str, Any]) -> str:
    """Record one more piece of a pre-trained 3Da-AE's training after its source run (e.g. the decoder that
    ``export --ae`` put in, trained for it) as ``stages[name]`` (``name_2``... when taken) and add its ``train_s``
    (seconds) to ``entry_cost_s`` (Eq. 9's t_EC), in place. Returns the key used."""
    stages = manifest.setdefault("stages", {})
    key, i = name, 2
    while key in stages:
        key, i = f"{name}_{i}", i + 1
    stages[key] = dict(result)
    if manifest.get("entry_cost_s") is not None:
        manifest["entry_cost_s"] = float(manifest["entry_cost_s"]) + float(result["train_s"])
    return key


# ============================================================================================ reading
def has_manifest(folder: str | Path) -> bool:
    """Whether ``FOLDER/manifest.json`` exists (it may still be damaged: :func:`read_manifest`)."""
    return manifest_path(folder).is_file()


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The parsed ``FOLDER/manifest.json``.

    Raises:
        FileNotFoundError: no ``manifest.json`` (the message names it).
        UnreadableFileError: (a ``ValueError``) not valid JSON (truncated or damaged), or not a JSON object; the
            message names the file.
    """
    return read_json_object(manifest_path(folder), "not found (not a latentscenes run folder, or one that never started)")


def read_manifest_if_any(folder: str | Path) -> dict[str, Any]:
    """:func:`read_manifest`, or ``{}`` when the folder has no manifest (a damaged one still raises)."""
    return read_manifest(folder) if has_manifest(folder) else {}


def manifest_format(manifest: dict[str, Any]) -> str | None:
    """The manifest's ``format`` (:data:`RUN_FORMAT`, :data:`EXPLOIT_FORMAT`, or something else / None)."""
    return manifest.get("format")


def is_run_manifest(manifest: dict[str, Any]) -> bool:
    """A training run's or a pre-trained 3Da-AE's manifest (:data:`RUN_FORMAT`)."""
    return manifest_format(manifest) == RUN_FORMAT


def is_exploit_manifest(manifest: dict[str, Any]) -> bool:
    """An exploit batch's manifest (:data:`EXPLOIT_FORMAT`)."""
    return manifest_format(manifest) == EXPLOIT_FORMAT


def is_latent_manifest(manifest: dict[str, Any]) -> bool:
    """One of this module's folders (:data:`RUN_FORMAT` or :data:`EXPLOIT_FORMAT`)."""
    return manifest_format(manifest) in (RUN_FORMAT, EXPLOIT_FORMAT)


def manifest_kind(manifest: dict[str, Any]) -> str | None:
    """The manifest's ``kind``: "train", "exploit", "pretrained" (None when not recorded)."""
    return manifest.get("kind")


def is_pretrained(manifest: dict[str, Any]) -> bool:
    """A pre-trained 3Da-AE package (:data:`RUN_FORMAT`, ``kind`` "pretrained")."""
    return is_run_manifest(manifest) and manifest_kind(manifest) == KIND_PRETRAINED


def status(manifest: dict[str, Any]) -> str | None:
    """The manifest's ``status`` ("running", "done"; None when not recorded)."""
    return manifest.get("status")


def is_done(manifest: dict[str, Any]) -> bool:
    """Whether the folder finished (``status`` "done": ``model/`` is complete)."""
    return status(manifest) == STATUS_DONE


def finished_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of a finished run or batch; None when ``folder`` has no manifest or is not finished.

    Raises:
        UnreadableFileError: the manifest is damaged (the message names it).
    """
    m = read_manifest_if_any(folder)
    return m if is_done(m) else None


def scenes_included(manifest: dict[str, Any]) -> bool:
    """False only for a pre-trained 3Da-AE, which records ``scenes_included: false`` (it holds no scenes)."""
    return manifest.get("scenes_included", True) is not False


def scene_ids(manifest: dict[str, Any]) -> list[str]:
    """The folder's scenes, in its order (``[]`` when none are recorded)."""
    return list(manifest.get("scene_ids", []))


def recorded_scene_ids(manifest: dict[str, Any]) -> list[str] | None:
    """The folder's scenes as recorded, None when the manifest records none (``--resume`` then checks nothing)."""
    ids = manifest.get("scene_ids")
    return None if ids is None else list(ids)


def view_copies(manifest: dict[str, Any]) -> int | None:
    """The copies of each view the folder's last stage began with (``data.shift_grid ** 2``; None when not
    recorded)."""
    return manifest.get("view_copies")


def n_views(manifest: dict[str, Any]) -> int | None:
    """The folder's source views (every scene's train views, before copies; None when not recorded)."""
    return manifest.get("n_views")


def recorded_bytes(manifest: dict[str, Any]) -> dict[str, int] | None:
    """The model's sizes in bytes (``bytes``: ``pipeline.model_bytes``; None when not recorded)."""
    return manifest.get("bytes")


def stage_results(manifest: dict[str, Any]) -> dict[str, dict]:
    """``{stage: result}`` recorded so far (``{}`` when none)."""
    return manifest.get("stages") or {}


def stage_train_s(manifest: dict[str, Any]) -> dict[str, float]:
    """``{stage: train_s}`` (seconds of optimisation) of the stages recorded so far; with :func:`latent_cache_s`
    they sum to a training run's entry cost t_EC (Eq. 9)."""
    return {k: float(v.get("train_s", 0.0)) for k, v in stage_results(manifest).items() if isinstance(v, dict)}


def records_stage_configs(manifest: dict[str, Any]) -> bool:
    """Whether the manifest records ``stage_configs`` (folders written before it was recorded do not)."""
    return "stage_configs" in manifest


def recorded_stage_configs(manifest: dict[str, Any]) -> dict[str, dict]:
    """``{stage: StageConfig as a dict}`` the folder recorded (``stage_configs``; ``{}`` for folders written before
    it was recorded)."""
    return manifest.get("stage_configs") or {}


def latent_cache_s(manifest: dict[str, Any]) -> float | None:
    """Seconds the folder spent encoding its views (``latent_cache_s``; None when not recorded)."""
    v = manifest.get("latent_cache_s")
    return None if v is None else float(v)


def recorded_shared_sha256(manifest: dict[str, Any]) -> str | None:
    """The sha256 of ``model/shared.safetensors`` the manifest records (``model.sha256_shared``; a training run
    and a pre-trained package record it, an exploit batch does not), or None."""
    return (manifest.get("model") or {}).get("sha256_shared")


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """What ``train_3daae`` / ``exploit_3daae`` return about a finished folder, from its manifest: ``scene_ids``,
    ``n_views``, ``latent_cache_s``, ``stages``, ``train_s`` (the stages' ``train_s`` summed), ``bytes``."""
    stages = stage_results(manifest)
    return {
        "scene_ids": manifest.get("scene_ids", []), "n_views": manifest.get("n_views"),
        "latent_cache_s": manifest.get("latent_cache_s", 0.0), "stages": stages,
        "train_s": sum(r.get("train_s", 0.0) for r in stages.values()), "bytes": manifest.get("bytes"),
    }


def recorded_world_size(manifest: dict[str, Any]) -> int:
    """The number of processes the folder started with (1 when it records none)."""
    return int((manifest.get(DISTRIBUTED_KEY) or {}).get("world_size", 1))


# ---------------------------------------------------------------------------- an exploit batch's source run
def source_run_spec(manifest: dict[str, Any], where: str | Path = MANIFEST_FILE) -> str:
    """The training run (or pre-trained folder) an exploit batch was learned from, as its manifest records it:
    the shipped package's name (``"shipped"``, ``"shipped-128"``) when it was one of the package's pre-trained
    3Da-AEs (to be resolved against the installed package, ``pipeline.resolve_run``), else the absolute folder
    path it had.

    Raises:
        UnreadableFileError: the manifest records no ``source_run`` (not an exploit batch's, or damaged); the
            message names ``where`` (the manifest's path when known).
    """
    if manifest.get("source_run_spec"):
        return str(manifest["source_run_spec"])
    if not manifest.get("source_run"):
        raise UnreadableFileError(f"{where}: records no source_run (not an exploit batch's manifest, or damaged)")
    return str(manifest["source_run"])


def source_shared_sha256(manifest: dict[str, Any]) -> str | None:
    """The sha256 of the source run's ``model/shared.safetensors`` when the batch was learned (None if not
    recorded): the batch is rendered with that run's encoder, so a changed file is refused."""
    return manifest.get("source_sha256_shared")


# ---------------------------------------------------------------------------- a pre-trained 3Da-AE
def train_scene_ids(manifest: dict[str, Any]) -> list[str]:
    """A pre-trained 3Da-AE's training scenes (``train_scene_ids``), in its order."""
    return list(manifest.get("train_scene_ids") or [])


def image_size(manifest: dict[str, Any]) -> list[int] | None:
    """``[H, W]`` of the images the folder learned from (None when not recorded)."""
    return manifest.get("image_size")


def export_source(manifest: dict[str, Any]) -> dict[str, Any]:
    """Where a pre-trained 3Da-AE came from: ``{"run", "stage", "step", "stage_steps"}`` (``{}`` when not recorded)."""
    return manifest.get("source") or {}


def measured_on(manifest: dict[str, Any]) -> dict[str, Any]:
    """Where a pre-trained 3Da-AE's entry cost was measured: ``{"device", "torch_threads"}`` (``{}`` when not
    recorded)."""
    return manifest.get("measured_on") or {}


def entry_cost_s(manifest: dict[str, Any]) -> float | None:
    """A pre-trained 3Da-AE's one-off entry cost in seconds (Eq. 9), as the source run measured it; None when not
    recorded."""
    v = manifest.get("entry_cost_s")
    return None if v is None else float(v)
