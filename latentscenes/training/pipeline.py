"""Run folders for training 3Da-AE (Alg. 1) and exploiting it (Alg. 2), with exact ``--resume``.

Training run folder (``latentscenes train --out RUN``); the layout, file names and manifest keys are
:mod:`latentscenes.training.run_format`'s (the one module that names them)::

    RUN/config.json                resolved PipelineConfig (what ``--resume`` and ``exploit`` read)
    RUN/manifest.json              status, scene ids, the effective StageConfig of every stage (``stage_configs``,
                                   from :func:`~latentscenes.training.config.stage_configs`: what each stage ran
                                   with), per-stage results (timings, memory, losses), files
    RUN/metrics.jsonl              one JSON object per log event (train losses, evaluations, stage summaries)
    RUN/cache/latents-train.safetensors   Encode-Scene targets: every train view encoded once (one file)
    RUN/cache/images-train.safetensors    the train views' pixel codes, memory-mapped while the run trains
                                          (written again, scene by scene, at every start; training/data.py)
    RUN/stages/<stage>/ckpt/       the stage's last checkpoint (resumable; see training/checkpoint.py)
    RUN/model/shared.safetensors   final shared weights: autoencoder (vae.*), MLP (mlp.*), global planes B,
                                   latent background; ``LatentAutoencoder.load`` reads the AE part directly
    RUN/model/scenes/scenes-*.safetensors  final per-scene local planes + coefficients (SceneBank shards)

Exploit folder (``latentscenes exploit --run RUN --out OUT``): the same layout with its own scenes, its
``stages/exploit_fit`` and ``stages/exploit_finetune``, and ``OUT/model/shared.safetensors`` holding **this
batch's** fine-tuned decoder, MLP and global planes (Alg. 2 trains B, alpha and psi). Nothing under RUN is
written by ``exploit``: scenes learned earlier (the training scenes, and every other exploit batch in its
own folder) stay bit-identical. The encoder always comes from RUN (it is frozen during exploitation).

Pre-trained 3Da-AE (``latentscenes export --run RUN --out PKG``; the shipped one is ``--run shipped``): a training
run folder without its scenes, so that new scenes can be learned without paying the entry cost again::

    PKG/config.json                the source run's resolved config (``data.path`` cleared)
    PKG/manifest.json              format = run_format.RUN_FORMAT, kind "pretrained", ``scenes_included: false``, source run,
                                   stage and step it was taken from, sha256 of the weights, the source run's
                                   ``stage_configs`` of the stages the weights went through (when it recorded them),
                                   its training scene ids (``train_scene_ids``), per-stage results (``stages``:
                                   ``train_s``, ``view_copies``, ...), ``entry_cost_s`` (stages' ``train_s`` +
                                   ``latent_cache_s``) and ``measured_on`` (device, torch threads when recorded)
    PKG/model/shared.safetensors   autoencoder, MLP, global planes B, latent background (as in a run)
    PKG/model/base_ae.safetensors  the base autoencoder it was trained from, when that was a local file (config
                                   ae.path "model/base_ae.safetensors", resolved against PKG when read)
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.distributed as dist

from latentscenes.autoencoder.model import SHIPPED_AUTOENCODERS, LatentAutoencoder, load_autoencoder, same_latent_space
from latentscenes.autoencoder.model import read_header as read_ae_header
from latentscenes.config import ConfigError, apply_overrides, flat_dict, from_dict, save_config, to_dict
from latentscenes.data import MultiSceneDataset
from latentscenes.data.bounds import check_bounds, derive_bounds, describe, object_extent
from latentscenes.data.types import DatasetError, SceneViews
from latentscenes.rendering.decoder import TriplaneDecoder
from latentscenes.scenes.bank import SceneBank
from latentscenes.training.checkpoint import existing_checkpoint_dir, read_json, recover_checkpoint_dir
from latentscenes.training.config import (
    EXPLOIT_STAGES,
    TRAIN_STAGES,
    ExploitConfig,
    PipelineConfig,
    StageConfig,
    fit_for_min_steps,
    stage_configs,
    strategy_weights,
    validate_pipeline,
)
from latentscenes.training.data import (
    ViewTable,
    build_view_table,
    cache_latents,
    load_latent_cache,
    save_latent_cache,
    shift_views,
    step_generator,
    table_fingerprint,
)
from latentscenes.training import distributed
from latentscenes.training import run_format as rf
from latentscenes.training.distributed import check_enough_scenes, owned
from latentscenes.training.metrics_log import MetricsLogger
from latentscenes.training.refit import refit_scenes
from latentscenes.training.stages import (
    EvalFn,
    LatentSystem,
    load_scene_shards,
    load_shared_into,
    replace_shared_autoencoder,
    replace_shared_planes,
    resolve_steps,
    run_stage,
    save_scene_shards,
    save_shared,
)
from latentscenes.utils.device import pick_device
from latentscenes.utils.folders import check_out_folder, mark_folder
from latentscenes.utils.io import remove_temporaries
from latentscenes.utils.progress import console, progress_bar

#: Where the installation keeps its pre-trained 3Da-AEs.
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
#: The pre-trained 3Da-AEs shipped in the package, by the ``--run`` name that selects them (docs/fidelity.md, each
#: folder's MODEL_CARD.md): ``shipped`` for 64x64 images (8x8 latents; the demo's and the ``cpu`` benchmark's) and
#: ``shipped-128`` for 128x128 images (the paper's geometry: a 16x16 autoencoder latent; its recipe learns new scenes
#: on 32x32 latents, ``ae.upscale`` 2).
SHIPPED_RUNS: dict[str, Path] = {
    "shipped": PRETRAINED_DIR / "3daae-airliners-64",
    "shipped-128": PRETRAINED_DIR / "3daae-airliners-128",
}
#: The default one, ``exploit --run shipped``.
SHIPPED_RUN = SHIPPED_RUNS["shipped"]


def shipped_name(folder: str | Path) -> str | None:
    """The ``--run`` name of a shipped pre-trained 3Da-AE folder (``"shipped"``, ``"shipped-128"``), None for any
    other folder (used to print the command a user would type)."""
    for name, path in SHIPPED_RUNS.items():
        if Path(folder) == path:
            return name
    return None


class RunError(ValueError):
    """A run folder that cannot be used as asked (exists without ``--resume``, missing, wrong kind...)."""


# ============================================================================================ helpers
def build_system(
    cfg: PipelineConfig, ae: LatentAutoencoder, scene_ids: Sequence[str], seed_tag: str = "init"
) -> LatentSystem:
    """A fresh :class:`LatentSystem`: bank with ``scene_ids`` (N(0,1) init, Sec. 3.5.1 "Random
    initialization: T_mic, W, B"), new MLP, the given autoencoder. Deterministic in (cfg.seed, seed_tag)."""
    dev = ae.device
    g = torch.Generator().manual_seed(step_generator(cfg.seed, seed_tag, 0))
    bank = SceneBank(cfg.triplane, list(scene_ids), sparse_grad=False, generator=g).to(dev)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(step_generator(cfg.seed, seed_tag + "/mlp", 0))
        mlp = TriplaneDecoder(cfg.triplane.features, ae.latent_channels, cfg.render.decoder_hidden)
    return LatentSystem(ae=ae, bank=bank, mlp=mlp.to(dev), render=cfg.render)


def load_scenes(cfg: PipelineConfig, split_name: str, n_max: int | None, data_root: str | Path | None = None) -> tuple[list[SceneViews], dict]:
    """Load the scenes of a dataset split (sorted ids, first ``n_max``) and the dataset's render defaults.

    Raises:
        DatasetError: no dataset path, an empty split, or a loader error.
    """
    root = data_root or cfg.data.path
    if not root:
        raise DatasetError("no dataset given: pass --data DIR (or set data.path)")
    ds = MultiSceneDataset(root, resolution=cfg.data.resolution)
    ids = list(ds.split_scene_ids(split_name))
    if n_max is not None:
        ids = ids[:n_max]
    if not ids:
        raise DatasetError(f"{root}: split {split_name!r} has no scenes")
    return [ds.load(i) for i in ids], _recorded_render(cfg, ds)


def cameras_only(sv: SceneViews) -> SceneViews:
    """``sv`` without its pixels (images ``[V, 3, 0, 0]``, no masks): what the bounds checks read (cameras, view
    names, splits), a few hundred bytes per view."""
    return SceneViews(scene_id=sv.scene_id, images=sv.images.new_empty((sv.num_views, 3, 0, 0)), c2w=sv.c2w.clone(),
                      K=sv.K.clone(), split=list(sv.split), masks=None, view_names=list(sv.view_names),
                      meta=dict(sv.meta))


def load_view_table(
    cfg: PipelineConfig, split_name: str, n_max: int | None, data_root: str | Path | None = None, *,
    measure_extent: bool = False, rank: int = 0, world_size: int = 1, codes_path: str | Path | None = None,
) -> tuple[ViewTable, list[SceneViews], float | None, dict]:
    """The train views of a dataset split as a :class:`ViewTable`, loading one scene at a time.

    Memory: one loaded scene (the dataset's scene cache is kept to one scene) plus the table's pixel codes, which
    with ``codes_path`` are written there scene by scene and memory-mapped (no heap; docs/scale.md); never the
    split's loaded scenes all at once.

    Args:
        cfg: ``data.*`` selects the views (``max_views``, ``resolution``). split_name / n_max / data_root: as
            :func:`load_scenes`.
        measure_extent: also measure the objects' extent in the images (``data.bounds.object_extent``), for
            bounds derived from the cameras.
        rank, world_size: load only the scenes rank ``rank`` of ``world_size`` processes owns (scene k of the
            selection when ``k % world_size == rank``; training/distributed.py).
        codes_path: the image codes file (``run_format.image_codes_path``); None keeps the codes in memory.
    Returns:
        ``(table, scenes without pixels (cameras_only), extent or None, the dataset's recorded render defaults)``.
    Raises:
        DatasetError: no dataset path, an empty split, a loader error, scenes of different image sizes.
    """
    root = data_root or cfg.data.path
    if not root:
        raise DatasetError("no dataset given: pass --data DIR (or set data.path)")
    ds = MultiSceneDataset(root, resolution=cfg.data.resolution, cache_size=1)
    ids = list(ds.split_scene_ids(split_name))
    if n_max is not None:
        ids = ids[:n_max]
    if not ids:
        raise DatasetError(f"{root}: split {split_name!r} has no scenes")
    if world_size > 1:
        check_enough_scenes(len(ids), world_size, f"{root}: split {split_name!r}")
        ids = [ids[k] for k in owned(len(ids), rank, world_size)]
    cams: list[SceneViews] = []
    extent: list[float] = []

    def scenes():
        for i in ids:
            sv = ds.load(i)
            cams.append(cameras_only(sv))
            if measure_extent:
                e = object_extent([sv])
                if e is not None:
                    extent.append(e)
            yield sv

    table = build_view_table(scenes(), "train", cfg.data.max_views, cfg.data.resolution, codes_path=codes_path)
    return table, cams, (max(extent) if extent else None), _recorded_render(cfg, ds)


@contextlib.contextmanager
def _removed_on_error(out: Path, codes_path: Path) -> Iterator[None]:
    """Delete ``codes_path`` and the folders made for it (``out``, ``out/cache``) when the block raises: a run
    refused while its views are loaded and checked leaves nothing behind (nothing else is written before)."""
    made = [p for p in (Path(out), Path(codes_path).parent) if not p.exists()]
    try:
        yield
    except BaseException:
        Path(codes_path).unlink(missing_ok=True)
        for d in reversed(made):  # the innermost first; a folder another rank still uses stays
            try:
                d.rmdir()
            except OSError:
                pass
        raise


def _check_image_size(table: ViewTable, ae: Any) -> None:
    H, W = table.resolution
    if H % ae.downsample_factor or W % ae.downsample_factor:
        raise DatasetError(f"image size {H}x{W} is not a multiple of {ae.downsample_factor}; set data.resolution")


def _recorded_render(cfg: PipelineConfig, ds: Any) -> dict:
    # Only what the manifest records (not the loader's fallbacks), so a preset's values stay otherwise.
    recorded = ds.manifest.get("render") if isinstance(getattr(ds, "manifest", None), dict) else None
    return dict(recorded) if isinstance(recorded, dict) and cfg.data.use_dataset_render else {}


def with_dataset(cfg: PipelineConfig, data_root: str | Path | None) -> PipelineConfig:
    """``cfg`` as a run on the dataset saves it: the manifest's render defaults and ``data.path`` = ``data_root``.

    Reads the dataset's manifest only (no images).

    Raises:
        DatasetError: no dataset path, or a dataset folder that cannot be opened.
    """
    root = data_root or cfg.data.path
    if not root:
        raise DatasetError("no dataset given: pass --data DIR (or set data.path)")
    cfg = apply_render_defaults(cfg, _recorded_render(cfg, MultiSceneDataset(root, resolution=cfg.data.resolution)))
    if data_root:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=str(data_root)))
    return cfg


def _derives_render(cfg: PipelineConfig, data_root: str | Path | None) -> bool:
    """Whether a run on this dataset takes its ray bounds from the cameras: the dataset records no ``render``
    section and ``data.use_dataset_render`` is on (reads the manifest only)."""
    if not cfg.data.use_dataset_render:
        return False
    ds = MultiSceneDataset(data_root or cfg.data.path, resolution=cfg.data.resolution)
    return not isinstance(ds.manifest.get("render"), dict)


def with_camera_bounds(cfg: PipelineConfig, scenes: Sequence[SceneViews], extent: float | None | str = "measure") -> PipelineConfig:
    """``cfg`` with near/far/box_size derived from the scenes' cameras (:mod:`latentscenes.data.bounds`),
    printed, for a dataset that states none. ``extent``: the objects' extent measured already (float or None,
    e.g. by :func:`load_view_table` while loading), or ``"measure"`` to measure it in ``scenes``' images."""
    b = derive_bounds(scenes, cfg.render.box_size, extent=extent)
    console.print(describe(b))
    return apply_render_defaults(cfg, b)


def apply_render_defaults(cfg: PipelineConfig, defaults: dict) -> PipelineConfig:
    """Take near/far/box_size from the dataset manifest (docs/ARCHITECTURE.md) when it records them."""
    kw = {k: float(defaults[k]) for k in ("near", "far", "box_size") if defaults.get(k) is not None}
    return dataclasses.replace(cfg, render=dataclasses.replace(cfg.render, **kw)) if kw else cfg


def _encoder_fingerprint(ae: LatentAutoencoder) -> str:
    h = hashlib.sha256()
    for p in ae.encoder_parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    h.update(str(ae.tanh_scale).encode())
    if ae.upscale != 1:  # another latent grid, other targets (1 keeps the caches written before upscale existed)
        h.update(f"upscale={ae.upscale}".encode())
    return h.hexdigest()[:16]


def encode_views(
    system: LatentSystem, table: ViewTable, cache_path: Path | None, batch_size: int, progress: bool
) -> tuple[torch.Tensor, float, bool]:
    """Encode-Scene targets: ``normalize(E(x).mean)`` for every view, reusing ``cache_path`` when valid.

    With ``cache_path`` the latents are written once (atomically) and returned **memory-mapped** from that file
    (:func:`~latentscenes.training.data.load_latent_cache`), so they are not a copy in the process's heap; a cache
    written for other views or another encoder is not used: it is said (naming the file) and encoded again.

    Returns:
        ``(latents [N, C, h, w] on the CPU, seconds spent encoding, whether the cache file was reused)``.
    Raises:
        LatentCacheError: the cache file is truncated or damaged (the message names it; delete it to re-encode).
    """
    ae = system.ae
    fp_views, fp_ae = table_fingerprint(table), _encoder_fingerprint(ae)
    if cache_path is not None:
        cached = load_latent_cache(cache_path, fp_views, fp_ae, rows=len(table))
        if cached is not None:
            return cached, 0.0, True
        if cache_path.exists():
            console.print(f"latent cache {cache_path} was written for other views or another encoder: not used, "
                          "encoding again", markup=False, highlight=False, soft_wrap=True)
    t0 = time.perf_counter()
    was_training = ae.training
    ae.eval()

    def enc(x: torch.Tensor) -> torch.Tensor:
        # Cached targets are the posterior mean (deterministic, as the authors' cache; docs/autoencoder.md).
        return ae.normalize(ae.encode_distribution(x).mean)

    if progress:
        with progress_bar("encode latents", len(table)) as (pb, task):
            lat = cache_latents(table, enc, system.device, batch_size, lambda n: pb.update(task, advance=n))
    else:
        lat = cache_latents(table, enc, system.device, batch_size)
    ae.train(was_training)
    dt = time.perf_counter() - t0
    if cache_path is not None:
        save_latent_cache(lat, cache_path, fp_views, fp_ae)
        # The encoded copy is dropped for the file's mapping: every later use reads the same bytes, and the
        # pages are the kernel's page cache (reclaimable) rather than this process's heap.
        mapped = load_latent_cache(cache_path, fp_views, fp_ae, rows=len(table))
        if mapped is None:  # the file was replaced under us: keep what was encoded
            return lat, dt, False
        lat = mapped
    return lat, dt, False


def _stage_done(stage_dir: Path) -> dict | None:
    found = existing_checkpoint_dir(stage_dir / rf.CKPT_DIR)
    if found is None:
        return None
    st = read_json(found / "state.json")
    return st if st.get("done") else None


def _load_ckpt_into(system: LatentSystem, stage_dir: Path, shard: Any = None) -> None:
    found = existing_checkpoint_dir(stage_dir / rf.CKPT_DIR)
    load_shared_into(system, found / rf.SHARED_FILE)
    if shard is None:
        load_scene_shards(system.bank, found / rf.SCENES_DIR)
    else:
        shard.load_own_scenes(system.bank, found / rf.SCENES_DIR)


def check_resume_scenes(out: Path, stages: tuple[str, ...], table: ViewTable) -> None:
    """On ``--resume`` of a folder whose stages have begun, the views must be those it began with.

    A stage checkpoint holds the parameters (and optimiser moments) of the scenes the folder started with, and
    its batches were drawn from that table: resuming with other scenes (another ``--n-scenes`` /
    ``data.n_exploit_scenes``, another dataset) or another view count would mix the two silently. The number of
    view copies (``data.shift_grid``) may differ only between stages, not inside a stage that has a checkpoint.

    Raises:
        RunError: naming ``out``, the scene or view counts and a few differing ids, before anything is written.
    """
    if not rf.has_manifest(out) or not any(existing_checkpoint_dir(rf.ckpt_dir(out, s)) is not None for s in stages):
        return
    m = rf.read_manifest(out)
    old = rf.recorded_scene_ids(m)
    if old is not None and list(old) != list(table.scene_ids):
        gone = [s for s in old if s not in set(table.scene_ids)][:3]
        new = [s for s in table.scene_ids if s not in set(old)][:3]
        raise RunError(f"{out}: --resume with other scenes than it started with ({len(old)} scenes, now "
                       f"{len(table.scene_ids)}; missing now {gone}, new {new}); its checkpoints hold the scenes it "
                       f"started with: resume with the same data settings (e.g. --n-scenes {len(old)}) or use "
                       "another --out")
    # The view copies (data.shift_grid) may change between stages (scripts/ship_3daae.sh runs the warm-up with one
    # and the joint stage with four), not inside one: a stage checkpointed but not finished drew its batches and
    # counts its epochs from the table it began with.
    finished = rf.stage_results(m)
    mid_stage = any(s not in finished and existing_checkpoint_dir(rf.ckpt_dir(out, s)) is not None
                    for s in stages)
    checks = [("n views", rf.n_views(m), table.n_source_views)] + (
        [("view copies", rf.view_copies(m), table.copies)] if mid_stage else [])
    for what, was, now in checks:
        if was is not None and was != now:
            raise RunError(f"{out}: --resume with {now} {what} where it started with {was}; "
                           "resume with the same data settings or use another --out")


def _check_out(out: Path, resume: bool, command: str) -> None:
    """Refuse an ``out`` that cannot hold this run or batch; creates nothing (a refused start writes nothing).

    Raises:
        RunError: ``out`` is a file, holds another command's output (a fit-rgb folder, a pre-trained package...)
            or files of no command, or holds this command's folder and ``resume`` is False
            (:func:`latentscenes.utils.folders.check_out_folder`).
    """
    check_out_folder(out, command, resume=resume, resumable=True, error=RunError)


#: Config keys that change how a run executes, not what it computes: they may differ on ``--resume``.
#: ``render.offset_ensemble`` decides how renders are decoded afterwards (evaluation, rendering): no stage reads it.
#: ``ae.amp`` is the precision of the autoencoder's arithmetic, which the machine decides as much as the run
#: (``bf16_is_fast``): a resume may switch it, as it may switch the device.
_RUNTIME_KEYS = ("device", "logging.", "encode_batch_size", "render.offset_ensemble", "ae.amp")


def _key_stage(key: str) -> str | None:
    """The training stage a config key belongs to, ``"all"`` for keys every stage depends on, None for runtime."""
    if key.startswith(_RUNTIME_KEYS):
        return None
    head = key.split(".", 1)[0]
    return head if head in TRAIN_STAGES else "all"


def _exploit_key_stage(key: str) -> str | None:
    """As :func:`_key_stage` for an exploit batch: ``exploit.finetune*`` belong to the decoder fine-tuning; every
    other key (the fit's settings, strategy, data, seed, ...) decides the fit, which every later stage builds on."""
    if key.startswith(_RUNTIME_KEYS):
        return None
    return "exploit_finetune" if key.startswith("exploit.finetune") else "all"


def _legacy_exploit_as_ran(saved: dict, manifest: dict) -> dict:
    """An exploit batch's saved config as it ran. Batches written before the manifest recorded ``stage_configs``
    saved ``exploit.fit.lambda_enc`` / ``lambda_dec`` as given (the preset's) and ran the strategy's weights, set
    after ``config.json`` was written; today those weights are written into the config (:func:`exploit_config`)."""
    if rf.records_stage_configs(manifest) or "exploit" not in saved:
        return saved
    ex = saved["exploit"]
    try:
        le, ld = strategy_weights(from_dict(ExploitConfig, ex, where="saved exploit config"))
    except ValueError:  # ConfigError included: the comparison below reports the keys as they are
        return saved
    return {**saved, "exploit": {**ex, "fit": {**ex.get("fit", {}), "lambda_enc": le, "lambda_dec": ld}}}


def check_resume_config(out: Path, cfg: PipelineConfig, stages: tuple[str, ...] = TRAIN_STAGES,
                        key_stage: Any = _key_stage, as_ran: Any = None) -> dict | None:
    """Compare the config of a ``--resume`` with the one the run (or exploit batch) saved.

    Args:
        stages: the folder's stages in order; ``key_stage(key)`` -> the stage a dotted config key belongs to,
            ``"all"`` (every stage depends on it) or None (runtime only).
        as_ran: ``as_ran(saved config dict, manifest) -> dict``, the saved config as it ran (folders written by
            an older version; :func:`_legacy_exploit_as_ran`); None = as saved.
    Returns:
        the folder's manifest when it is finished and nothing but runtime keys (device, logging) differ,
        i.e. there is nothing to do; else None (resume proceeds).
    Raises:
        RunError: a key of a stage that already finished differs (``warmup.*`` / ``joint.*`` of a run,
            ``exploit.finetune.*`` of a batch), or a key every stage depends on (data, autoencoder, tri-planes,
            renderer, seed, exploit defaults) once a stage finished; the message names the keys, the saved and
            the new values. Raising the update count (``steps`` / ``epochs``) of the folder's *last* stage is
            allowed, also when the folder is finished: that stage continues from its final checkpoint, exactly
            as a run started with the larger count (``train --resume --set joint.steps=1600``).
    """
    path = rf.config_path(out)
    if not path.is_file():
        return None
    manifest = rf.read_manifest_if_any(out)
    saved_dict = read_json(path)
    saved_dict = as_ran(saved_dict, manifest) if as_ran is not None else saved_dict
    # Keys a newer version added are absent from older saved configs: they ran with the default, so compare
    # the saved config with its defaults filled in (from_dict), not as "missing".
    saved = flat_dict(json.loads(json.dumps(to_dict(from_dict(PipelineConfig, saved_dict, where=str(path))))))
    new = flat_dict(json.loads(json.dumps(to_dict(cfg))))
    if rf.is_done(manifest):
        done = set(stages)
    else:
        done = {s for s in stages if _stage_done(rf.stage_dir(out, s)) is not None}
    missing = object()
    changed = sorted(k for k in saved.keys() | new.keys()
                     if saved.get(k, missing) != new.get(k, missing) and key_stage(k) is not None)
    # The last stage of a finished folder may be continued for more updates: its learning-rate schedule is per
    # epoch and its batches are drawn per (seed, stage, step), so the longer stage performs exactly the updates a
    # run started with the larger count would have (no later stage depends on it).
    extended = [k for k in changed if _extends_last_stage(k, saved, new, stages, key_stage)]
    refused = [k for k in changed if k not in extended and (key_stage(k) in done or (key_stage(k) == "all" and done))]
    if refused:
        what = "; ".join(f"{k}: {saved.get(k)!r} -> {new.get(k)!r}" for k in refused[:3])
        raise RunError(f"{out}: --resume would change the config of stage(s) that already finished "
                       f"({', '.join(s for s in stages if s in done)}): {what}"
                       f"{' ...' if len(refused) > 3 else ''}; start a new run with another --out")
    return manifest if rf.is_done(manifest) and not changed else None


def _extends_last_stage(key: str, saved: dict, new: dict, stages: tuple[str, ...], key_stage: Any) -> bool:
    """True when ``key`` raises the update count (``steps``; ``epochs`` when set) of the folder's last stage."""
    if key_stage(key) != stages[-1] or key.rsplit(".", 1)[-1] not in ("steps", "epochs"):
        return False
    old_v, new_v = saved.get(key), new.get(key)
    return isinstance(old_v, (int, float)) and isinstance(new_v, (int, float)) and new_v > old_v


def _finished_result(out: Path, cfg: PipelineConfig, manifest: dict) -> dict[str, Any]:
    """``train_3daae``'s result for a finished run, from its manifest and model (nothing is written)."""
    system = load_trained(out, cfg.device)
    return {"run_dir": str(out), "device": str(system.device), **rf.summary(manifest), "system": system}


def _finished_exploit_result(out: Path, run_dir: Path, cfg: PipelineConfig, manifest: dict) -> dict[str, Any]:
    """``exploit_3daae``'s result for a finished batch, from its manifest and model (nothing is written)."""
    system = load_exploited(out, cfg.device)
    return {"out_dir": str(out), "run_dir": str(run_dir), "device": str(system.device), **rf.summary(manifest),
            "system": system}


def clean_for_resume(out: Path) -> None:
    """Remove what interrupted writes left in a run or exploit folder before it is resumed: settle every stage's
    interrupted checkpoint swap (keeping the newest complete checkpoint) and delete temporary files."""
    stages_dir = rf.stages_dir(out)
    if stages_dir.is_dir():
        for d in sorted(stages_dir.iterdir()):
            if d.is_dir():
                recover_checkpoint_dir(d / rf.CKPT_DIR)
    remove_temporaries(out)


def _logger(cfg: PipelineConfig, out: Path) -> MetricsLogger:
    return MetricsLogger(
        rf.metrics_path(out),
        tensorboard_dir=rf.tensorboard_dir(out) if cfg.logging.tensorboard else None,
        wandb_project=cfg.logging.wandb_project,
        run_config=to_dict(cfg),
    )


def _run_or_reuse(
    system: LatentSystem, table: ViewTable, stage: str, scfg: StageConfig, out: Path, cfg: PipelineConfig, *,
    resume: bool, logger: MetricsLogger, eval_fn: EvalFn | None, latents: torch.Tensor | None,
    encode_live: bool, shared_parts: tuple[str, ...], shard: Any = None,
) -> dict:
    """Run a stage, or -- when resuming and it already finished -- load its final state and return its result."""
    stage_dir = rf.stage_dir(out, stage)
    if resume:
        done = _stage_done(stage_dir)
        # A finished stage whose update count was raised since (check_resume_config allows it for the last
        # stage) continues from its final checkpoint instead of being skipped.
        n_views = table.n_source_views if shard is None else shard.n_source_views
        if done is not None and int(done.get("steps_total", done["step"])) >= resolve_steps(scfg, n_views):
            _load_ckpt_into(system, stage_dir, shard)
            logger.log({"event": "stage_skipped", "stage": stage, "reason": "finished before resume"})
            return done["result"]
    res = run_stage(
        system, table, stage, scfg, seed=cfg.seed, latents=latents, encode_live=encode_live, ckpt_dir=stage_dir,
        resume=resume, logger=logger, eval_fn=eval_fn, progress=cfg.logging.progress, shared_parts=shared_parts,
        shard=shard,
    )
    return res.to_dict()


def _write_model(system: LatentSystem, out: Path, parts: tuple[str, ...], shard: Any = None) -> dict:
    """Write ``out``'s ``model/`` (shared weights, scene shards); returns the manifest's ``model`` entry
    (:func:`~latentscenes.training.run_format.model_record`). With several processes (collective): every rank's
    scenes are gathered and rank 0 writes the single-process layout; ``system.bank`` becomes the whole bank on
    rank 0."""
    if shard is not None:
        full, _ = shard.gather_bank(system.bank)
        if not shard.is_main:
            shard.barrier()
            return rf.model_record([])
        system.bank = full
    rf.model_dir(out).mkdir(parents=True, exist_ok=True)
    save_shared(system, rf.shared_path(out), parts)
    shards = save_scene_shards(system.bank, rf.scenes_dir(out))
    if shard is not None:
        shard.barrier()
    return rf.model_record(shards)



def model_bytes(system: LatentSystem) -> dict[str, int]:
    """Sizes in bytes (fp32 as saved) for the cost accounting of paper Eq. 10-11: encoder m_E, decoder m_D,
    global planes m_B, MLP, and one scene's local planes + coefficients m_scene."""
    return {
        "encoder": int(system.ae.num_bytes("encoder")),
        "decoder": int(system.ae.num_bytes("decoder")),
        "global_planes": int(system.bank.shared_bytes()),
        "mlp": int(sum(p.numel() * p.element_size() for p in system.mlp.parameters())),
        "per_scene": int(system.bank.per_scene_bytes()),
    }


# ============================================================================================ training
def train_3daae(
    cfg: PipelineConfig,
    out: str | Path,
    *,
    data_root: str | Path | None = None,
    scenes: Sequence[SceneViews] | None = None,
    resume: bool = False,
    eval_fn: EvalFn | None = None,
    ae: LatentAutoencoder | None = None,
) -> dict[str, Any]:
    """Train 3Da-AE on the training scenes (paper Sec. 3.5.1, Alg. 1): warm-up, then joint training.

    Args:
        cfg: resolved config (``cfg.warmup``, ``cfg.joint``; ``cfg.data`` selects scenes when loading).
        out: run folder (created; must not hold a run unless ``resume``).
        data_root: dataset root (``MultiSceneDataset``); overrides ``cfg.data.path``.
        scenes: already-loaded scenes instead of a dataset (tests, benchmark); their "train" views are used.
        resume: continue an interrupted run from its last checkpoints (finished stages are not re-run).
        eval_fn: optional ``eval_fn(system, stage, step) -> {name: value}`` for quality-vs-time curves.
        ae: an already-built autoencoder to use instead of ``load_autoencoder(cfg.ae)`` (e.g. freshly
            pre-trained in the same process); it is trained in place by the joint stage.
    Returns:
        ``{"run_dir", "device", "scene_ids", "n_views", "latent_cache_s", "stages": {"warmup": StageResult
        dict, "joint": ...}, "train_s" (sum over stages, excl. evaluation), "bytes": model_bytes}``.
    Raises:
        FileNotFoundError / AutoencoderError: autoencoder weights missing or mismatched (before any work).
        DatasetError: no data. RunError: ``out`` holds a run and ``resume`` is False, or ``resume`` with a
            config that changes a stage that already finished (:func:`check_resume_config`).
        ConfigError: near/far that cannot see the scene box from some camera (``data.bounds.check_bounds``);
            a stage setting that contradicts the stage (:func:`~latentscenes.training.config.stage_configs`).
        NonFiniteLossError: a stage diverged (its last good checkpoint is kept; ``--resume`` restarts there).

    ``resume`` on a finished run changes no file of it (exploit batches record its weights' sha256) and
    returns the stored results.

    In a ``torch.distributed`` process group of several processes (torchrun; the caller creates it), every process
    calls this with the same arguments: each learns its own scenes, rank 0 writes the run
    (training/distributed.py); the result's ``system`` holds every scene on rank 0, its own elsewhere.
    """
    out = Path(out)
    # Every check before anything is written: a refused start leaves no folder behind (nor a config.json that
    # would block the corrected re-run).
    validate_pipeline(cfg)
    effective = stage_configs(cfg, TRAIN_STAGES)  # what each stage runs with; recorded in the manifest
    # Several processes (torchrun; training/distributed.py): rank 0 writes every shared file, after every rank
    # has read what it needs (the barriers); with one process every _sync is a no-op.
    rank, world_size = distributed.world()
    main = rank == 0
    _check_out(out, resume, "train")
    _sync(world_size)
    if resume and out.is_dir() and main:
        clean_for_resume(out)
    _sync(world_size)
    derive = False
    if scenes is None:
        cfg = with_dataset(cfg, data_root)
        derive = _derives_render(cfg, data_root)
        if derive and resume and rf.config_path(out).is_file():
            # Derived once, when the run started: the bounds are the run's (its planes and MLP learned with them).
            cfg = apply_render_defaults(cfg, read_json(rf.config_path(out)).get("render", {}))
            derive = False
    if resume:
        finished = check_resume_config(out, cfg)
        if finished is not None:  # nothing to do: not a byte of the run may change (exploit batches hash it)
            return _finished_result(out, cfg, finished)
        distributed.check_resume_world(out, TRAIN_STAGES, world_size)
    device = pick_device(cfg.device)
    # The autoencoder first: a missing weights file is reported before data loading or any training.
    init_shared = _init_shared(cfg.init) if cfg.init else None
    if ae is None and init_shared is not None:
        ae = _ae_from_shared(cfg, init_shared, device)
        try:  # the init's MLP and B must fit this config's sizes: checked before anything is written
            load_shared_into(build_system(cfg, ae, []), init_shared)
        except ValueError as e:
            raise ConfigError(f"init={cfg.init!r}: {e} (train with the init's own config: `train --init` takes it "
                              "as the base)") from None
    elif ae is None:
        # Seeded: a "scratch" autoencoder's random init must be the same in a resumed run.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(step_generator(cfg.seed, "ae-init", 0))
            ae = load_autoencoder(cfg.ae, device)
    else:
        ae = ae.to(device)
    if scenes is None:
        # One scene loaded at a time: the table keeps pixel codes, the bounds checks the cameras (docs/scale.md).
        codes_path = rf.image_codes_path(out, "train", rank, world_size)
        with _removed_on_error(out, codes_path):  # a refused run leaves no folder behind
            table, scenes, extent, _ = load_view_table(
                cfg, cfg.data.train_split, cfg.data.n_train_scenes, data_root, measure_extent=derive, rank=rank,
                world_size=world_size, codes_path=codes_path)
            if derive:
                if world_size > 1:  # the bounds of every rank's cameras, the same on every rank
                    every, extent = _gather_cameras(scenes, extent, world_size)
                    cfg = (with_camera_bounds(cfg, every, extent) if main else
                           apply_render_defaults(cfg, _derive_bounds(cfg, every, extent)))
                else:
                    cfg = with_camera_bounds(cfg, scenes, extent)
            check_bounds(scenes, cfg.render.near, cfg.render.far, "train")
            _check_image_size(table, ae)
    else:
        scenes = list(scenes)[: cfg.data.n_train_scenes] if cfg.data.n_train_scenes else list(scenes)
        scenes = _own_scenes(scenes, rank, world_size)
        check_bounds(scenes, cfg.render.near, cfg.render.far, "train")
        table = build_view_table(scenes, "train", cfg.data.max_views, cfg.data.resolution)
        _check_image_size(table, ae)
    scenes = None  # the table holds what training needs
    H, W = table.resolution
    table = shift_views(table, cfg.data.shift_grid, int(ae.downsample_factor))
    # This rank's part of the run (None with one process): every scene id and view count of the run.
    shard = distributed.Shard.from_table(table) if world_size > 1 else None
    whole = table if shard is None else shard  # scene_ids, n_source_views, copies of the whole run
    if resume:
        check_resume_scenes(out, TRAIN_STAGES, whole)
    manifest = rf.train_manifest(
        device=str(device), scene_ids=whole.scene_ids, n_views=whole.n_source_views, view_copies=table.copies,
        image_size=[H, W], image_storage=_image_storage(table, shard),
        stage_configs={k: to_dict(v) for k, v in effective.items()},
        # The stages' clocks (Eq. 9's entry cost, quoted by packages exported from this run) depend on the threads;
        # the last session's count (a resumed run may have run earlier stages with another).
        torch_threads=torch.get_num_threads(),
    )
    if shard is not None:
        rf.set_distributed(manifest, _distributed_record(shard))
    if resume and rf.has_manifest(out):
        rf.set_stages(manifest, rf.stage_results(rf.read_manifest(out)))
    _sync(world_size)  # every rank has read the folder's manifest before rank 0 rewrites it
    if main:
        mark_folder(out, "train")
        save_config(cfg, rf.config_path(out))
        rf.write_manifest(out, manifest)
    system = build_system(cfg, ae, whole.scene_ids)
    if init_shared is not None:
        # Before the latent cache: its targets are the init's encoder's. The MLP and B are the init's; the scenes'
        # own planes keep build_system's initialisation. A resumed stage then restores its checkpoint over them.
        load_shared_into(system, init_shared)
    if shard is not None:  # the single-process initialisation, this rank's scenes kept
        system.bank = system.bank.select(table.scene_ids)
    logger = _logger(cfg, out) if main else _NullLogger()
    try:
        logger.log({"event": "start", "kind": "train", "resume": resume, "scenes": len(whole.scene_ids),
                    "views": len(whole), "device": str(device)})
        latents, cache_s, reused = encode_views(system, table, rf.latent_cache_path(out, "train", shard),
                                                cfg.encode_batch_size, cfg.logging.progress and main)
        logger.log({"event": "latent_cache", "seconds": round(cache_s, 4), "reused": reused, "views": len(table)})
        if reused:  # a resumed run: its encoding time is the session's that wrote the file (Eq. 9's t_EC)
            cache_s = _logged_cache_s(out)
        results: dict[str, Any] = {}
        # Warm-up (Sec. 3.5.1, last paragraph): AE frozen, only planes/W/B/MLP on cached latents.
        results["warmup"] = _run_or_reuse(system, table, "warmup", effective["warmup"], out, cfg, resume=resume,
                                          logger=logger,
                                          eval_fn=eval_fn, latents=latents, encode_live=False,
                                          shared_parts=("encoder", "decoder"), shard=shard)
        rf.record_stage(manifest, "warmup", results["warmup"])
        if main:
            rf.write_manifest(out, manifest)
        # Joint 3Da-AE training (Alg. 1, Eq. 5). The encoder learns through L_Enc only when it is trainable;
        # otherwise the cached targets stay valid and are used.
        # With a live encoder the cached latents (pre-trained encoder) are the latent-scale anchor's reference.
        live = effective["joint"].lr_encoder > 0
        results["joint"] = _run_or_reuse(system, table, "joint", effective["joint"], out, cfg, resume=resume,
                                         logger=logger,
                                         eval_fn=eval_fn, latents=latents, encode_live=live,
                                         shared_parts=("encoder", "decoder"), shard=shard)
        rf.record_stage(manifest, "joint", results["joint"])
        model = _write_model(system, out, ("encoder", "decoder"), shard)
        if main:
            model = rf.with_shared_sha256(model, out)
        nbytes = model_bytes(system)
        rf.finish_manifest(manifest, stages=None, model=model, latent_cache_s=cache_s, bytes_=nbytes)
        if main:
            rf.write_manifest(out, manifest)
        logger.log({"event": "done", "kind": "train"})
        _sync(world_size)
    finally:
        logger.close()
    return {
        "run_dir": str(out), "device": str(device), "scene_ids": whole.scene_ids, "n_views": whole.n_source_views,
        "latent_cache_s": cache_s, "stages": results,
        "train_s": sum(r["train_s"] for r in results.values()), "bytes": nbytes, "system": system,
    }


def load_run_config(run_dir: str | Path) -> PipelineConfig:
    """The resolved :class:`PipelineConfig` saved in a run (or exploit) folder.

    Raises:
        RunError: not a run folder.
    """
    folder = resolve_run(run_dir)
    p = rf.config_path(folder)
    if not p.is_file():
        raise RunError(f"{run_dir}: not a latentscenes run folder (no {rf.CONFIG_FILE})")
    cfg = from_dict(PipelineConfig, json.loads(p.read_text()), where=str(p))
    if cfg.ae.source == "path" and cfg.ae.path == rf.BASE_AE_REF:
        # A package's own copy of its base autoencoder (export_pretrained): found wherever the package lies. Resolved
        # even when missing, so that whoever loads it (the plain-AE ablation, the AE ceiling) names the full path.
        cfg = dataclasses.replace(cfg, ae=dataclasses.replace(cfg.ae, path=str(rf.base_ae_path(folder))))
    return cfg


def load_trained(run_dir: str | Path, device: str | torch.device = "auto") -> LatentSystem:
    """The trained 3Da-AE and its training scenes from ``RUN/model`` (after ``train`` finished).

    Returns:
        :class:`LatentSystem` in eval mode (autoencoder, bank of the training scenes, MLP, render config).
    Raises:
        RunError: the run has not finished (no ``model/``) or is not a training run.
    """
    run_dir = resolve_run(run_dir)
    cfg = load_run_config(run_dir)
    m = rf.read_manifest(run_dir)
    if not rf.is_run_manifest(m) or not rf.is_done(m):
        raise RunError(f"{run_dir}: not a finished training run (status {rf.status(m)!r}); run `train --resume`")
    dev = pick_device(str(device)) if not isinstance(device, torch.device) else device
    ae = _ae_from_shared(cfg, rf.shared_path(run_dir), dev)
    system = build_system(cfg, ae, [])
    load_shared_into(system, rf.shared_path(run_dir))
    if rf.scenes_included(m):
        _check_scenes(run_dir, m, load_scene_shards(system.bank, rf.scenes_dir(run_dir)))
    return _eval_mode(system)


def resolve_run(spec: str | Path) -> Path:
    """A ``--run`` value as a folder: ``"shipped"`` and ``"shipped-128"`` are the package's pre-trained 3Da-AEs
    (:data:`SHIPPED_RUNS`); anything else is a path.

    Raises:
        RunError: a shipped one was asked for but its files are missing from the installation.
    """
    path = SHIPPED_RUNS.get(str(spec))
    if path is not None:
        if not rf.shared_path(path).is_file():
            raise RunError(f"the shipped pre-trained 3Da-AE {str(spec)!r} is missing: {path} (reinstall the package, "
                           "or train one with `latentscenes train` and pass its folder)")
        return path
    return Path(spec)


def source_run(exploit_manifest: dict) -> Path:
    """The training run (or pre-trained folder) an exploit batch was learned from, as recorded in its
    manifest; ``shipped`` is resolved against the installed package, so a reinstall elsewhere is followed.

    Raises:
        RunError: the batch was learned from ``shipped`` and the package's files are missing.
        UnreadableFileError: the manifest records no source run (:func:`~latentscenes.training.run_format.source_run_spec`).
    """
    return resolve_run(rf.source_run_spec(exploit_manifest))


def export_pretrained(run_dir: str | Path, out: str | Path, *, stage: str | None = None,
                      extra: dict[str, Any] | None = None, triplane_resolution: int | None = None,
                      ae: str | Path | None = None, recipe: list[str] | None = None) -> dict[str, Any]:
    """Write a pre-trained 3Da-AE folder (layout in the module docstring) from a training run, or derive one
    from another package.

    Args:
        run_dir: a training run folder (without ``stage`` it must be finished: ``model/shared.safetensors``), or a
            pre-trained 3Da-AE folder (``shipped`` too), whose manifest (training scenes, stages, entry cost,
            source run) the new package keeps, adding ``derived_from``.
        out: the new folder (must not exist or be empty).
        stage: take the weights of this stage's last checkpoint instead (``"warmup"`` = the plain autoencoder
            with the warm-up's MLP and B, the ablation; ``"joint"`` = a joint stage still running or stopped).
        extra: JSON-able facts recorded in the manifest under ``"notes"`` (e.g. measured figures).
        triplane_resolution: write the global planes B resampled to this T (:func:`resample_planes`, as an
            exploit batch at that T does on loading) and the config's ``triplane.resolution`` with it, so that
            new scenes are learned at T by default (their ``m_scene`` grows as T^2); the manifest's notes record
            ``global_planes_resampled_from`` (the T it was trained at). None keeps the run's T.
        ae: an autoencoder file (``ae.safetensors``) that replaces the exported 3Da-AE: it must encode to the same
            latents (:func:`~latentscenes.autoencoder.model.same_latent_space`), so that the MLP, B and every
            scene learned in them stay valid, e.g. the 3Da-AE with its decoder trained further or grown (``ae
            pretrain --ae AE --set train_part=decoder``; docs/fidelity.md, "The decoder's capacity"). The notes
            record ``autoencoder_replaced_by`` and its training record; the manifest's bytes its sizes. Its
            training was paid for the package: :func:`replacement_training_cost` (a training run's stages, or an
            ``ae pretrain`` record) is added to ``entry_cost_s`` as stage ``ae_replacement`` (Eq. 9).
        recipe: ``key=value`` overrides written into the package's config, so that ``exploit --run OUT`` learns
            new scenes with them by default (e.g. ``ae.upscale=2``, ``exploit.finetune.epochs=4``): only what an
            exploit batch chooses for itself (:data:`PACKAGE_RECIPE_SECTIONS`, :data:`PACKAGE_RECIPE_KEYS`); the
            notes record them as ``recipe_set`` (after those of the package it is derived from) and the values
            they replaced, the ones the weights were trained with, as ``trained_with`` (``{key: value}``; a key
            set again keeps its first value).
    Returns:
        the written manifest. A run whose base autoencoder was ``--ae PATH`` (a file of ours, an SD-VAE folder
        or a raw diffusers state dict) gets it as ``model/base_ae.safetensors``, named relative to the package
        in its config.
    Raises:
        RunError: not a training run or package, no finished model / no checkpoint of ``stage`` (a package has no
            checkpoints), ``out`` not empty; ``triplane_resolution`` < 2, or given without global planes (F_mac = 0);
            ``ae`` encodes to other latents than the exported 3Da-AE.
        ConfigError: a ``recipe`` key an exploit batch does not choose (a shape of the trained weights, or the
            data's path), or a value :func:`validate_pipeline` refuses; checked before anything is written.
        FileNotFoundError / AutoencoderError: that base autoencoder, or ``ae``, is gone or unreadable (message names
            it).
    """
    run_dir, out = resolve_run(run_dir), Path(out)
    cfg = load_run_config(run_dir)
    m = rf.read_manifest_if_any(run_dir)
    if not rf.is_run_manifest(m):
        raise RunError(f"{run_dir}: not a training run folder (format {rf.manifest_format(m)!r})")
    # the package's config: the run's with the recipe (checked here, before anything is written)
    pkg_cfg = package_recipe(cfg, recipe) if recipe else cfg
    if triplane_resolution is not None and (triplane_resolution < 2 or cfg.triplane.f_mac <= 0):
        raise RunError(f"triplane_resolution={triplane_resolution}: needs T >= 2 and global planes (F_mac > 0; "
                       f"{run_dir} has F_mac = {cfg.triplane.f_mac})")
    derived = rf.is_pretrained(m)
    if derived and stage is not None:
        raise RunError(f"{run_dir}: a pre-trained 3Da-AE has no stage checkpoints; export it without --stage")
    stage_res = rf.stage_results(m)
    if derived:  # its manifest carries the record (entry cost, stages) over: derived_pretrained_manifest
        src = rf.shared_path(run_dir)
    elif stage is None:
        src = rf.shared_path(run_dir)
        if not rf.is_done(m) or not src.is_file():
            raise RunError(f"{run_dir}: not a finished training run; finish it or pass --stage warmup|joint")
        step, steps_info = None, {k: v.get("steps") for k, v in stage_res.items() if isinstance(v, dict)}
        cache_s = rf.latent_cache_s(m) or 0.0
        entry_s = sum(rf.stage_train_s(m).values()) + cache_s
    else:
        ckpt = rf.ckpt_dir(run_dir, stage)
        found = existing_checkpoint_dir(ckpt)
        if found is None:
            raise RunError(f"{run_dir}: no checkpoint of stage {stage!r} under {ckpt.relative_to(run_dir).as_posix()}")
        src = found / rf.SHARED_FILE
        state = read_json(found / "state.json")
        step, steps_info = state.get("step"), None
        # Entry cost up to this checkpoint: the stages finished before it, this stage's time so far, encoding.
        order = ["warmup", "joint"]
        earlier = order[: order.index(stage)] if stage in order else []
        before = [v for k, v in stage_res.items() if k in earlier and isinstance(v, dict)]
        cache_s = _logged_cache_s(run_dir)
        entry_s = (sum(float(v.get("train_s", 0.0)) for v in before)
                   + float(state.get("result", {}).get("train_s", 0.0)) + cache_s)
    new_ae = None
    if ae is not None:  # checked before anything is written
        new_ae = LatentAutoencoder.load(ae)
        ok, why = same_latent_space(LatentAutoencoder.load(src), new_ae)
        if not ok:
            raise RunError(f"{ae}: encodes to other latents than the 3Da-AE of {run_dir} ({why}); only an "
                           "autoencoder with that encoder (e.g. its decoder trained with `ae pretrain --set "
                           "train_part=decoder`) keeps its MLP, global planes and scenes valid")
    check_out_folder(out, "export", error=RunError)
    tmp = out.parent / f".{out.name}.tmp-export"
    if tmp.exists():
        shutil.rmtree(tmp)
    mark_folder(tmp, "export")
    rf.model_dir(tmp).mkdir(parents=True)
    shutil.copyfile(src, rf.shared_path(tmp))
    pcfg = dataclasses.replace(pkg_cfg, data=dataclasses.replace(pkg_cfg.data, path=None))
    vae_config = None  # the base autoencoder's architecture, where its weights say it
    if cfg.ae.source == "path" and cfg.ae.path:
        # The base autoencoder was a local file or folder (an `ae pretrain` result, an SD-VAE): the package
        # carries it, so that its plain-AE ablation and AE ceiling (the benchmark) need nothing outside the
        # package and it still loads when moved to another machine.
        header = read_ae_header(cfg.ae.path) if Path(cfg.ae.path).is_file() else None
        if header is not None:
            shutil.copyfile(cfg.ae.path, rf.base_ae_path(tmp))
            vae_config = header.get("vae_config")
        else:
            # A diffusers folder or a raw state dict: written as one file of our format (weights, architecture
            # and the latent normalisation in its header), which `ae.path = BASE_AE_REF` then loads.
            base = load_autoencoder(cfg.ae)
            base.save(rf.base_ae_path(tmp))
            vae_config = base.vae_config
        pcfg = dataclasses.replace(pcfg, ae=dataclasses.replace(pcfg.ae, path=rf.BASE_AE_REF))
    elif cfg.ae.source in SHIPPED_AUTOENCODERS:
        # A shipped base: every installation has it, so the package carries none.
        shipped_file = SHIPPED_AUTOENCODERS[cfg.ae.source]
        header = read_ae_header(shipped_file) if shipped_file.is_file() else None
        vae_config = header.get("vae_config") if header is not None else None
    if isinstance(vae_config, dict):
        # The run's config kept the --ae default architecture (4 channels) although the weights decide it:
        # the package's config says what its weights are (a 16-channel base, or `shipped-general`, reads 16 here).
        pcfg = dataclasses.replace(pcfg, ae=pcfg.ae.with_architecture_of(vae_config))
    notes = dict(extra or {})
    nbytes = None
    if triplane_resolution is not None and triplane_resolution != cfg.triplane.resolution:
        nbytes = _resample_shared_planes(cfg, rf.shared_path(tmp), triplane_resolution, m.get("bytes"))
        pcfg = dataclasses.replace(pcfg, triplane=dataclasses.replace(pcfg.triplane, resolution=triplane_resolution))
        # the T that B was trained at, also when derived from a package derived before
        notes["global_planes_resampled_from"] = (m.get("notes") or {}).get("global_planes_resampled_from",
                                                                          cfg.triplane.resolution)
    replacement_cost = None
    if new_ae is not None:
        replace_shared_autoencoder(rf.shared_path(tmp), new_ae)
        replacement_cost = replacement_training_cost(ae, new_ae)
        notes["autoencoder_replaced_by"] = {"file": str(ae), "info": new_ae.info.get("pretrain"),
                                            "lineage": new_ae.info.get("grown_from"), "training": replacement_cost}
    if recipe:
        # a package derived from one that had a recipe set keeps the earlier settings in front (the later win)
        notes["recipe_set"] = list((m.get("notes") or {}).get("recipe_set") or []) + list(recipe)
        # the values the weights were trained with (the first recipe's predecessors): whoever repeats that training
        # needs them (the benchmark's plain-AE ablation repeats the package's warm-up, at the run's ae.upscale)
        trained = dict((m.get("notes") or {}).get("trained_with") or {})
        for ov in recipe:
            key = ov.split("=", 1)[0].strip()
            trained.setdefault(key, config_value(cfg, key))
        notes["trained_with"] = trained
    save_config(pcfg, rf.config_path(tmp))
    if derived:
        # a shipped package by the name a user types, not this machine's path to it
        manifest = rf.derived_pretrained_manifest(m, derived_from=shipped_name(run_dir) or run_dir,
                                                  sha256_shared=rf.shared_sha256(tmp), notes=notes)
    else:
        # The stages the exported weights went through (all of them, or those up to ``stage``).
        through = TRAIN_STAGES if stage not in TRAIN_STAGES else TRAIN_STAGES[: TRAIN_STAGES.index(stage) + 1]
        # Eq. 9's one-off entry cost as measured by the source run (stages' optimisation + latent encoding), its
        # latent-encoding part, and where it was measured (the benchmark quotes them: docs/benchmark.md).
        manifest = rf.pretrained_manifest(m, source_run=run_dir, stage=stage, step=step, stage_steps=steps_info,
                                          through=through, sha256_shared=rf.shared_sha256(tmp), notes=notes,
                                          entry_cost_s=entry_s, latent_cache_s=cache_s)
    if replacement_cost is not None and replacement_cost["train_s"] is not None:
        rf.add_entry_cost_stage(manifest, "ae_replacement", replacement_cost)
    if nbytes is not None:
        manifest["bytes"] = nbytes  # m_B and m_scene at the new T (Eq. 10-11)
    if new_ae is not None:  # the cost accounting's m_E and m_D (Eq. 10) are the new autoencoder's
        manifest["bytes"] = {**(manifest.get("bytes") or {}), "encoder": new_ae.num_bytes("encoder"),
                             "decoder": new_ae.num_bytes("decoder")}
    rf.write_manifest(tmp, manifest)
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return manifest


#: The renderer and tri-plane settings an exploit batch chooses for itself, because the new scenes' fit adapts to
#: them: ``supersample`` and ``pixel_jitter`` (where the rays of a latent pixel go), ``offset_ensemble`` (how its
#: renders are decoded), the initialisation scales of the new scenes' parameters and the tri-plane resolution T
#: (the run's global planes B are resampled to it). Every other one is the run's: the MLP and B were trained with
#: it (F_mic, F_mac and M are shapes of the MLP's input and of B).
BATCH_KEYS = ("render.supersample", "render.pixel_jitter", "render.offset_ensemble", "triplane.local_init_std",
              "triplane.coef_init_std", "triplane.resolution")


def with_batch_settings(run: PipelineConfig, batch: PipelineConfig) -> PipelineConfig:
    """``batch`` with the ``render`` and ``triplane`` sections of the trained ``run``'s config, except the
    :data:`BATCH_KEYS`, which stay the batch's (:func:`exploit_3daae`; paper Alg. 2 learns new scenes with the
    trained MLP and B)."""
    sections = {}
    for section in ("render", "triplane"):
        own = [k.split(".", 1)[1] for k in BATCH_KEYS if k.startswith(section + ".")]
        sections[section] = dataclasses.replace(getattr(run, section),
                                                **{k: getattr(getattr(batch, section), k) for k in own})
    return dataclasses.replace(batch, **sections)


#: What ``export --set`` may write into a package's config: the settings an exploit batch chooses for itself
#: (:data:`BATCH_KEYS`, the latent grid ``ae.upscale`` and the autoencoder's precision ``ae.amp``; its architecture
#: is its weights').
#: ``triplane.resolution`` has its own option (``--triplane-resolution``), which resamples B with it.
PACKAGE_RECIPE_SECTIONS = ("exploit", "data")  # every key of these sections but data.path
PACKAGE_RECIPE_KEYS = ("ae.upscale", "ae.amp") + tuple(k for k in BATCH_KEYS if k != "triplane.resolution")


def config_value(cfg: Any, key: str) -> Any:
    """The value of the dotted ``key`` (``"ae.upscale"``) in the config ``cfg``."""
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def package_recipe(cfg: PipelineConfig, overrides: list[str]) -> PipelineConfig:
    """``cfg`` with the exploit recipe ``overrides`` (``key=value``) applied and checked (``export --set``): how a
    package learns new scenes (paper Alg. 2, Sec. 3.5.2), never what its weights were trained with.

    Raises:
        ConfigError: a key outside :data:`PACKAGE_RECIPE_SECTIONS` / :data:`PACKAGE_RECIPE_KEYS` (the message names
            it and what is allowed), a malformed override or a value :func:`validate_pipeline` refuses.
    """
    allowed = [f"{sec}.*" for sec in PACKAGE_RECIPE_SECTIONS] + list(PACKAGE_RECIPE_KEYS)
    for ov in overrides:
        key = ov.split("=", 1)[0].strip()
        if key == "triplane.resolution":
            raise ConfigError("--set triplane.resolution: use --triplane-resolution (it resamples the global planes "
                              "B to the new T)")
        if key == "data.path" or not (key in PACKAGE_RECIPE_KEYS or key.split(".", 1)[0] in PACKAGE_RECIPE_SECTIONS):
            raise ConfigError(f"--set {key}: not a setting a package's new scenes may choose (allowed: "
                              f"{', '.join(allowed)}, not data.path); the others are the trained weights' own")
    new = apply_overrides(copy.deepcopy(cfg), overrides)
    validate_pipeline(new)
    return new


def replacement_training_cost(ae: str | Path, new_ae: LatentAutoencoder) -> dict[str, Any]:
    """What training the autoencoder that ``export --ae`` puts into a package cost: part of the package's one-off
    entry cost t_EC (Eq. 9), since it was trained for the package (e.g. its decoder trained further on renders).

    * ``ae`` is a training run's ``model/shared.safetensors`` (``train --init PKG`` with the latent space
      frozen): that run's stages' ``train_s`` + its latent encoding (``latent_cache_s``), from its manifest;
    * ``ae`` is another package's ``model/shared.safetensors``: None (its cost is that package's entry cost; the
      file's ``info.pretrain`` is inherited from its base autoencoder, not the time of these weights);
    * else the file's own ``ae pretrain`` record (``info.pretrain.wall_s``, the wall time of that pre-training);
    * else unknown: ``train_s`` None (the package's entry cost then leaves it out, and the note says so).

    Returns:
        ``{"train_s": seconds or None, "from": where it came from, "source": path, "stages": {stage: s},
        "steps": {stage: steps}, "latent_cache_s", "measured_on"}`` (the last four for a run).
    """
    path = Path(ae)
    run = path.parent.parent
    if path.name == rf.SHARED_FILE and path.parent.name == rf.model_dir(run).name and rf.has_manifest(run):
        m = rf.read_manifest(run)
        if rf.is_pretrained(m):
            return {"train_s": None, "source": str(run),
                    "from": "another pre-trained package's weights: its cost is that package's entry cost, not added"}
        if rf.is_run_manifest(m):
            stages = rf.stage_train_s(m)
            cache = rf.latent_cache_s(m) or 0.0
            steps = {k: v.get("steps") for k, v in rf.stage_results(m).items() if isinstance(v, dict)}
            return {"train_s": sum(stages.values()) + cache, "source": str(run), "stages": stages, "steps": steps,
                    "latent_cache_s": cache, "from": "the training run's manifest: its stages' train_s + latent encoding",
                    "measured_on": {"device": m.get("device"), "torch_threads": m.get("torch_threads")}}
    wall = (new_ae.info.get("pretrain") or {}).get("wall_s")
    if wall is not None:
        return {"train_s": float(wall), "source": str(path), "from": "the file's `ae pretrain` record (info.pretrain.wall_s)"}
    return {"train_s": None, "source": str(path),
            "from": "not recorded (not a training run's weights, no `ae pretrain` record): left out of entry_cost_s"}


def _resample_shared_planes(cfg: PipelineConfig, shared: Path, resolution: int,
                            run_bytes: dict[str, int] | None) -> dict[str, int]:
    """Rewrite a shared-weights file (``save_shared``) with its global planes B resampled to T = ``resolution``;
    everything else in it stays byte for byte. Returns the run's :func:`model_bytes` with m_B and m_scene at the
    new T."""
    replace_shared_planes(shared, lambda planes: resample_planes(planes, resolution))
    bank = SceneBank(dataclasses.replace(cfg.triplane, resolution=resolution), [])
    return {**(run_bytes or {}), "global_planes": int(bank.shared_bytes()), "per_scene": int(bank.per_scene_bytes())}


def _logged_cache_s(run_dir: Path) -> float:
    """Seconds of the encoding that wrote the run's latent cache, from metrics.jsonl (the manifest has it once
    finished): the last ``latent_cache`` event that encoded (a resumed session that reused the file logs
    ``reused``; logs older than that key count every event as an encoding)."""
    p = rf.metrics_path(run_dir)
    seconds = 0.0
    if p.is_file():
        for line in p.read_text().splitlines():
            if '"latent_cache"' in line:
                try:
                    ev = json.loads(line)
                    if not ev.get("reused", False):
                        seconds = float(ev.get("seconds", 0.0))
                except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
                    continue
    return seconds


def _check_scenes(folder: Path, manifest: dict, loaded: list[str]) -> None:
    """The scenes loaded from ``model/scenes`` must be the ones the manifest lists (a shard deleted or lost
    would otherwise shrink every evaluation without a word)."""
    want = rf.scene_ids(manifest)
    missing = sorted(set(want) - set(loaded))
    if missing or not loaded:
        raise RunError(f"{rf.scenes_dir(folder)}: {len(missing) or len(want)} of the {len(want)} scenes listed in "
                       f"{rf.MANIFEST_FILE} are missing (e.g. {(missing or want)[:3]}); the run's scene files are "
                       "incomplete")


def load_run_autoencoder(run_dir: str | Path, device: str | torch.device = "auto") -> LatentAutoencoder:
    """The trained 3Da-AE (encoder and decoder) of a finished training run, without its scenes.

    Raises:
        RunError: not a run folder, or the run has no ``model/shared.safetensors`` yet (unfinished).
    """
    run_dir = resolve_run(run_dir)
    cfg = load_run_config(run_dir)
    shared = rf.shared_path(run_dir)
    if not shared.is_file():
        raise RunError(f"{run_dir}: no trained model ({shared.relative_to(run_dir).as_posix()}); finish `train` first")
    dev = pick_device(str(device)) if not isinstance(device, torch.device) else device
    return _ae_from_shared(cfg, shared, dev)


def _init_shared(spec: str) -> Path:
    """The shared weights of ``init`` (``cfg.init``): a finished training run or an exported 3Da-AE folder.

    Raises:
        RunError: the folder is missing, not a training run / export, or not finished.
    """
    src = resolve_run(spec)
    m = rf.read_manifest_if_any(src) if src.is_dir() else {}
    if not m:
        raise RunError(f"init={spec!r}: {src} is not a training run or an exported 3Da-AE folder (no manifest)")
    if not rf.is_run_manifest(m) or not rf.is_done(m) or not rf.shared_path(src).is_file():
        raise RunError(f"init={spec!r}: {src} is not a finished training run or exported 3Da-AE "
                       f"(status {rf.status(m)!r}, no {rf.shared_path(src)})")
    return rf.shared_path(src)


def _ae_from_shared(cfg: PipelineConfig, shared: Path, dev: torch.device) -> LatentAutoencoder:
    # The shared file carries the AE header and weights, so the trained AE never depends on the original
    # weights file (which may be a shipped file that later changes, or a user path that moved).
    ae = LatentAutoencoder.load(shared, dev)
    ae.use_mean = cfg.ae.use_mean
    return ae.apply_runtime(cfg.ae)  # an exploit batch's own choices (AEConfig.upscale, amp), not the weights'


def _eval_mode(system: LatentSystem) -> LatentSystem:
    system.ae.eval()
    for p in list(system.ae.parameters()) + list(system.mlp.parameters()) + list(system.bank.parameters()):
        p.requires_grad_(False)
    return system


# ============================================================================================ several processes
def _sync(world_size: int) -> None:
    """A barrier of every process when there are several (training/distributed.py); nothing with one."""
    if world_size > 1:
        dist.barrier()


class _NullLogger:
    """The metrics logger of a rank other than 0 (only rank 0 writes metrics.jsonl)."""

    def log(self, record: dict) -> None:
        pass

    def close(self) -> None:
        pass


def _own_scenes(scenes: list, rank: int, world_size: int) -> list:
    """The loaded scenes rank ``rank`` of ``world_size`` owns (all of them with one process)."""
    if world_size <= 1:
        return scenes
    check_enough_scenes(len(scenes), world_size, "the scenes given")
    return [scenes[k] for k in owned(len(scenes), rank, world_size)]


def _image_storage(table: ViewTable, shard: Any) -> dict:
    """``table.storage()`` of the whole run (every rank's images summed; collective with several processes)."""
    mine = table.storage()
    if shard is None:
        return mine
    got = shard.gather_objects(mine) or [mine]
    order = ["uint8", "uint16", "float32"]
    return {"dtype": max((g["dtype"] for g in got), key=lambda d: order.index(d) if d in order else len(order)),
            "denominators": sorted({d for g in got for d in g["denominators"]}),
            "bytes": sum(g["bytes"] for g in got), "code_bytes": sum(g.get("code_bytes", 0) for g in got),
            "memory_mapped": all(g.get("memory_mapped", False) for g in got),
            "source_views": sum(g["source_views"] for g in got), "copies": mine["copies"]}


def _gather_cameras(scenes: list, extent: float | None, world_size: int) -> tuple[list, float | None]:
    """Every rank's scenes without pixels (``cameras_only``) and the largest object extent (collective): what
    bounds derived from the cameras need, so that every rank derives the same."""
    got: list[Any] = [None] * world_size
    dist.all_gather_object(got, (list(scenes), extent))
    every = [s for g in got for s in g[0]]
    exts = [g[1] for g in got if g[1] is not None]
    return every, (max(exts) if exts else None)


def _derive_bounds(cfg: PipelineConfig, scenes: list, extent: float | None) -> dict:
    """:func:`with_camera_bounds`' bounds without printing them (ranks other than 0)."""
    return derive_bounds(scenes, cfg.render.box_size, extent=extent)


def _distributed_record(shard: Any) -> dict:
    """What a multi-process run records in its manifest (``--resume`` checks ``world_size``)."""
    return rf.distributed_record(shard.world_size, str(dist.get_backend()))


# ============================================================================================ exploiting
def exploit_config(
    base: PipelineConfig, overrides: list[str] | None = None, strategy: str | None = None, no_prior: bool | None = None
) -> PipelineConfig:
    """The config of an exploit batch: the training run's config, with ``--set`` overrides (``exploit.*``
    and ``data.*`` are the meaningful ones) and the ``--strategy`` / ``--no-prior`` flags applied.

    The strategy decides the fit stage's loss weights (:func:`~latentscenes.training.config.strategy_weights`):
    they are written into ``exploit.fit.lambda_enc`` / ``lambda_dec`` here, so the batch's saved config shows
    the weights that run. An explicit ``--set exploit.fit.lambda_enc=...`` / ``lambda_dec=...`` is kept as given
    and must agree with the strategy (:func:`~latentscenes.training.config.stage_configs` refuses it otherwise).

    Raises:
        ConfigError: a bad override, an unknown strategy, or ``exploit.t`` outside (0, 1) for
            ``encode-decode-scene``.
    """
    cfg = apply_overrides(copy.deepcopy(base), overrides)
    ex = cfg.exploit
    if strategy is not None:
        ex = dataclasses.replace(ex, strategy=strategy)
    if no_prior is not None:
        ex = dataclasses.replace(ex, no_prior=no_prior)
    le, ld = strategy_weights(ex)
    given = {ov.split("=", 1)[0].strip() for ov in overrides or []}
    if not given & {"exploit.fit.lambda_enc", "exploit.fit.lambda_dec"}:
        ex = dataclasses.replace(ex, fit=dataclasses.replace(ex.fit, lambda_enc=le, lambda_dec=ld))
    return dataclasses.replace(cfg, exploit=ex)


def exploit_3daae(
    run_dir: str | Path,
    out: str | Path,
    cfg: PipelineConfig | None = None,
    *,
    data_root: str | Path | None = None,
    scenes: Sequence[SceneViews] | None = None,
    split: str | None = None,
    resume: bool = False,
    eval_fn: EvalFn | None = None,
) -> dict[str, Any]:
    """Learn new scenes with a trained 3Da-AE (paper Sec. 3.5.2, Alg. 2) into their own folder ``out``.

    Steps: encode the new scenes' train views once (frozen encoder of the run), fit fresh local planes and
    coefficients -- with the trained global planes B (or fresh ones if ``cfg.exploit.no_prior``) and the
    trained MLP -- using the ``cfg.exploit.strategy`` objective, then fine-tune the decoder with L_Dec.

    Args:
        run_dir: a finished training run (read only; never written).
        out: the exploit batch folder (created; must not hold a batch unless ``resume``).
        cfg: exploit config (default: ``exploit_config(the run's config)``); see :func:`exploit_config`.
        data_root / scenes / split: where the new scenes come from (default split ``cfg.data.exploit_split``,
            first ``cfg.data.n_exploit_scenes`` ids); ``scenes`` gives loaded scenes directly.
        resume: continue an interrupted batch; on a finished batch nothing is written (every file stays
            byte-identical) and its stored results are returned. eval_fn: as in :func:`train_3daae`.
    Returns:
        ``{"out_dir", "run_dir", "scene_ids", "n_views", "latent_cache_s", "stages": {"exploit_fit": ...,
        "exploit_finetune": ...}, "train_s", "bytes"}``.
    Raises:
        RunError: ``run_dir`` is not a finished run, ``out`` holds a batch and ``resume`` is False, or ``resume``
            with a config that changes a stage that already finished (:func:`check_resume_config`).
        NonFiniteLossError, DatasetError: as for training. ConfigError: the run's near/far cannot see the box
            from some camera of the new scenes; a stage setting that contradicts the stage or the strategy
            (:func:`~latentscenes.training.config.stage_configs`).

    Several processes (torchrun): as :func:`train_3daae`.
    """
    run_spec = str(run_dir)
    run_dir, out = resolve_run(run_dir), Path(out)
    if out.resolve() == run_dir.resolve():
        raise RunError("exploit --out must differ from the training run folder (the run is never modified)")
    base = load_run_config(run_dir)
    cfg = cfg if cfg is not None else exploit_config(base)
    validate_pipeline(cfg)
    effective = stage_configs(cfg, EXPLOIT_STAGES)  # what each stage runs with; recorded in the manifest
    # Several processes (torchrun; training/distributed.py): rank 0 writes every shared file, after every rank
    # has read what it needs (the barriers); with one process every _sync is a no-op.
    rank, world_size = distributed.world()
    main = rank == 0
    _check_out(out, resume, "exploit")  # nothing is written before every check passed
    _sync(world_size)
    if resume and out.is_dir() and main:
        clean_for_resume(out)
    _sync(world_size)
    split = split or cfg.data.exploit_split
    if scenes is None and data_root:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=str(data_root)))
    cfg = with_batch_settings(base, cfg)  # the run's renderer and planes, but for BATCH_KEYS
    if resume:
        finished = check_resume_config(out, cfg, EXPLOIT_STAGES, _exploit_key_stage, _legacy_exploit_as_ran)
        if finished is not None:  # nothing to do: not a byte of the batch may change
            return _finished_exploit_result(out, run_dir, cfg, finished)
        distributed.check_resume_world(out, EXPLOIT_STAGES, world_size)
    trained = load_trained(run_dir, cfg.device)
    # The batch may put its scenes on a finer latent grid than the run's (AEConfig.upscale) and compute the
    # autoencoder in bf16 (AEConfig.amp): the same weights.
    trained.ae.apply_runtime(cfg.ae)
    device = trained.device
    ex = cfg.exploit
    if scenes is None:
        # One scene loaded at a time: the table keeps pixel codes, the bounds check the cameras (docs/scale.md).
        codes_path = rf.image_codes_path(out, split, rank, world_size)
        with _removed_on_error(out, codes_path):  # a refused batch leaves no folder behind
            table, scenes, _, _ = load_view_table(cfg, split, cfg.data.n_exploit_scenes, data_root, rank=rank,
                                                  world_size=world_size, codes_path=codes_path)
            # The bounds are the run's (its MLP and planes learned with them): new cameras must see the box.
            check_bounds(scenes, cfg.render.near, cfg.render.far, f"exploit with the render settings of {run_dir}")
    else:
        scenes = list(scenes)[: cfg.data.n_exploit_scenes] if cfg.data.n_exploit_scenes else list(scenes)
        scenes = _own_scenes(scenes, rank, world_size)
        table = build_view_table(scenes, "train", cfg.data.max_views, cfg.data.resolution)
        check_bounds(scenes, cfg.render.near, cfg.render.far, f"exploit with the render settings of {run_dir}")
    scenes = None  # the table holds what the stages need
    table = shift_views(table, cfg.data.shift_grid, int(trained.ae.downsample_factor))
    # This rank's part of the batch (None with one process): every scene id and view count of the batch.
    shard = distributed.Shard.from_table(table) if world_size > 1 else None
    whole = table if shard is None else shard  # scene_ids, n_source_views, copies of the whole batch
    # A small batch fits in smaller mini-batches, so that its fit gets enough updates to leave the random start
    # (ExploitConfig.fit_min_steps); decided from the whole batch, so every rank agrees and a resume repeats it.
    effective["exploit_fit"] = fit_for_min_steps(effective["exploit_fit"], whole.n_source_views,
                                                 cfg.exploit.fit_min_steps)
    if resume:
        check_resume_scenes(out, EXPLOIT_STAGES, whole)
    _sync(world_size)  # every rank has read the folder's manifest before rank 0 rewrites it
    if main:
        mark_folder(out, "exploit")
        save_config(cfg, rf.config_path(out))
    ae = trained.ae
    ae.use_mean = cfg.ae.use_mean
    for p in ae.parameters():
        p.requires_grad_(True)  # StageOptimizers decides per stage which groups learn
    # New scenes: fresh T_mic and W ("Random initialization: T_mic, W", Alg. 2); B and the MLP come from
    # training unless the No-Prior ablation / MLP re-initialisation is asked for.
    system = build_system(cfg, ae, whole.scene_ids, seed_tag="exploit-init")
    if shard is not None:  # the single-process initialisation, this rank's scenes kept
        system.bank = system.bank.select(table.scene_ids)
    fresh_global = None if system.bank.global_planes is None else system.bank.global_planes.detach().clone()
    fresh_mlp = copy.deepcopy(system.mlp.state_dict())
    with torch.no_grad():
        if not ex.no_prior and system.bank.global_planes is not None:
            system.bank.global_planes.copy_(resample_planes(trained.bank.global_planes, cfg.triplane.resolution))
        elif fresh_global is not None:
            system.bank.global_planes.copy_(fresh_global)
        system.mlp.load_state_dict(fresh_mlp if ex.reinit_mlp else trained.mlp.state_dict())
    trained = None  # the training scenes' planes are not needed any more (memory at paper scale)
    for p in system.bank.parameters():
        p.requires_grad_(True)
    for p in system.mlp.parameters():
        p.requires_grad_(True)
    src_sha = rf.recorded_shared_sha256(rf.read_manifest(run_dir))
    manifest = rf.exploit_manifest(
        source_run=run_dir, source_sha256_shared=src_sha,
        # "shipped" (-128) is resolved again at load time: the package may be installed elsewhere later.
        shipped=run_spec if run_spec in SHIPPED_RUNS else None, device=str(device),
        strategy=ex.strategy, no_prior=ex.no_prior, scene_ids=whole.scene_ids,
        n_views=whole.n_source_views, view_copies=table.copies,  # copies: data.shift_grid ** 2
        image_size=list(table.resolution), image_storage=_image_storage(table, shard),
        stage_configs={k: to_dict(v) for k, v in effective.items()},
    )
    if shard is not None:
        rf.set_distributed(manifest, _distributed_record(shard))
    if main:
        rf.write_manifest(out, manifest)
    logger = _logger(cfg, out) if main else _NullLogger()
    try:
        logger.log({"event": "start", "kind": "exploit", "resume": resume, "scenes": len(whole.scene_ids),
                    "views": len(whole), "strategy": ex.strategy, "no_prior": ex.no_prior})
        fit, ft = effective["exploit_fit"], effective.get("exploit_finetune")
        latents = None
        cache_s = 0.0
        if fit.lambda_enc > 0 or (ft is not None and ft.lambda_ae > 0):
            latents, cache_s, reused = encode_views(system, table, rf.latent_cache_path(out, "exploit", shard),
                                                    cfg.encode_batch_size, cfg.logging.progress and main)
            logger.log({"event": "latent_cache", "seconds": round(cache_s, 4), "reused": reused, "views": len(table)})
            if reused:  # a resumed batch: its encoding time is the session's that wrote the file (t_scene)
                cache_s = _logged_cache_s(out)
        results: dict[str, Any] = {}
        results["exploit_fit"] = _run_or_reuse(system, table, "exploit_fit", fit, out, cfg, resume=resume,
                                               logger=logger, eval_fn=eval_fn, latents=latents, encode_live=False,
                                               shared_parts=("decoder",), shard=shard)
        if ex.refit_margin_db is not None and latents is not None and fit.lambda_enc > 0:
            # Collapsed fits learned again (training/refit.py); repeated exactly on --resume (no checkpoint of its
            # own: a decoder fine-tune that already started holds its result in its checkpoint).
            results["exploit_refit"] = refit_scenes(
                system, table, latents, fit, ex.refit_margin_db, seed=cfg.seed, n_views_batch=whole.n_source_views,
                gather=None if shard is None else shard.all_gather_objects, logger=logger, init=ex.refit_init,
                min_steps=ex.fit_min_steps, collapse_margin_db=ex.collapse_margin_db)
        if ft is not None:
            # Decoder fine-tuning (Alg. 2 lines 13-23): L_Dec, decoder trainable, encoder frozen.
            # lambda_ae > 0 adds L_ae on the cached posterior means (frozen encoder): it keeps the decoder an
            # autoencoder while L_Dec adapts it to the renders (not in Alg. 2; docs/fidelity.md).
            results["exploit_finetune"] = _run_or_reuse(system, table, "exploit_finetune", ft, out, cfg,
                                                        resume=resume, logger=logger, eval_fn=eval_fn,
                                                        latents=latents if ft.lambda_ae > 0 else None,
                                                        encode_live=False, shared_parts=("decoder",), shard=shard)
        model = _write_model(system, out, ("decoder",), shard)
        nbytes = model_bytes(system)
        rf.finish_manifest(manifest, stages=results, model=model, latent_cache_s=cache_s, bytes_=nbytes)
        if main:
            rf.write_manifest(out, manifest)
        logger.log({"event": "done", "kind": "exploit"})
        _sync(world_size)
    finally:
        logger.close()
    return {
        "out_dir": str(out), "run_dir": str(run_dir), "device": str(device), "scene_ids": whole.scene_ids,
        "n_views": whole.n_source_views, "latent_cache_s": cache_s, "stages": results,
        "train_s": sum(r["train_s"] for r in results.values()), "bytes": nbytes, "system": system,
    }


def resample_planes(planes: torch.Tensor, resolution: int) -> torch.Tensor:
    """Planes ``[..., T, T]`` resampled to ``[..., resolution, resolution]`` (bilinear, texel centres).

    The texel centres follow ``grid_sample(align_corners=False)`` (rendering/triplane.py), so the new texels
    hold the old field's bilinear values at their centres: the field is kept up to interpolation error (and
    the outermost half texel, where ``grid_sample`` fades to zero). Used when an exploit batch learns its
    scenes at another T than the run that trained the global planes B (Eq. 7).
    """
    T = planes.shape[-1]
    if T == resolution:
        return planes.detach().clone()
    lead = planes.shape[:-2]
    flat = planes.detach().reshape(-1, 1, T, T)
    out = torch.nn.functional.interpolate(flat, size=(resolution, resolution), mode="bilinear", align_corners=False,
                                          antialias=resolution < T)
    return out.reshape(*lead, resolution, resolution)


def load_exploited(out_dir: str | Path, device: str | torch.device = "auto") -> LatentSystem:
    """An exploit batch ready to render: the run's encoder, this batch's decoder/MLP/B and its scenes.

    Raises:
        RunError: not a finished exploit folder, or its source run is missing or was modified since.
    """
    out_dir = Path(out_dir)
    m = rf.read_manifest_if_any(out_dir)
    if not rf.is_exploit_manifest(m) or not rf.is_done(m):
        raise RunError(f"{out_dir}: not a finished exploit folder (status {rf.status(m)!r})")
    run_dir = source_run(m)
    if not rf.shared_path(run_dir).exists():
        raise RunError(f"{out_dir}: its source run {run_dir} is missing")
    sha = rf.source_shared_sha256(m)
    if sha and rf.shared_sha256(run_dir) != sha:
        raise RunError(f"{out_dir}: the source run's weights changed since this batch was learned")
    cfg = load_run_config(out_dir)
    dev = pick_device(str(device)) if not isinstance(device, torch.device) else device
    ae = _ae_from_shared(cfg, rf.shared_path(run_dir), dev)
    system = build_system(cfg, ae, [])
    load_shared_into(system, rf.shared_path(out_dir))  # decoder, MLP, B of this batch
    _check_scenes(out_dir, m, load_scene_shards(system.bank, rf.scenes_dir(out_dir)))
    return _eval_mode(system)


def load_model(folder: str | Path, device: str | torch.device = "auto") -> LatentSystem:
    """:func:`load_trained` or :func:`load_exploited`, whichever ``folder`` is."""
    m = rf.read_manifest(folder)
    return load_exploited(folder, device) if rf.is_exploit_manifest(m) else load_trained(folder, device)
