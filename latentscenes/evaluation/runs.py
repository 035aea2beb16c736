"""Adapters: the project's trained objects (scene bank + MLP + renderer settings + autoencoder) -> ``SceneModel``.

This module is the only place where evaluation touches the other areas' classes, so that a renamed method
there needs one fix here. It never trains anything and never changes the objects it wraps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from latentscenes.data import MultiSceneDataset
from latentscenes.data.types import DatasetError
from latentscenes.evaluation.model import CallableSceneModel, CompositeSceneModel, RenderOutput, set_offset_ensemble
from latentscenes.rendering.renderer import RenderConfig, render_views_no_grad
from latentscenes.training import run_format as rf
from latentscenes.utils.device import pick_device
from latentscenes.baselines.rgb.fit_format import RESULTS_FILE, RGBFitFolder, fitted_resolution, is_rgb_fit, load_rgb_fit_folder


def triplane_scene_model(
    kind: Literal["latent", "rgb"],
    name: str,
    bank: Any,
    decoder: nn.Module,
    render_cfg: RenderConfig,
    background: torch.Tensor,
    autoencoder: Any = None,
    device: torch.device | str = "cpu",
    info: dict | None = None,
) -> CallableSceneModel:
    """Wrap a scene bank and its shared MLP as a deterministic :class:`SceneModel`.

    Args:
        kind: ``"latent"`` (renders normalised latents; needs ``autoencoder``) or ``"rgb"``.
        bank: a ``SceneBank`` (``scene_ids``, ``rows(ids)``, ``planes(rows) -> [B,3,F,T,T]``).
        decoder: the shared ``TriplaneDecoder`` (its ``out_channels`` must match ``background``).
        render_cfg: renderer settings; a copy with ``deterministic=True`` is used.
        background: ``[C]`` in the renderer's [0, 1] pre-scale space (latent background or white).
        autoencoder: an :class:`AutoencoderView` (see :func:`autoencoder_view`) for latent models.
    Raises:
        ValueError: for a latent model without autoencoder.
    """
    if kind == "latent" and autoencoder is None:
        raise ValueError(f"latent model {name!r} needs an autoencoder")
    cfg = dataclasses.replace(render_cfg, deterministic=True)
    dev = torch.device(device)
    bg = torch.as_tensor(background, dtype=torch.float32).to(dev)
    decoder = decoder.to(dev).eval()
    cache: dict[str, torch.Tensor] = {}

    def planes_of(sid: str) -> torch.Tensor:
        if sid not in cache:
            cache.clear()  # keep one scene's composed planes: turntables and evals go scene by scene
            with torch.no_grad():
                cache[sid] = bank.planes(bank.rows([sid])).detach().to(dev)
        return cache[sid]

    def render(sid: str, c2w: torch.Tensor, K: torch.Tensor, hw: tuple[int, int]) -> RenderOutput:
        p = planes_of(sid)
        V = c2w.shape[0]
        out = render_views_no_grad(p.expand(V, *p.shape[1:]), decoder, c2w.to(dev), K.to(dev), hw[0], hw[1], cfg, bg)
        op = out.get("opacity")
        return RenderOutput(image=out["image"].float().cpu(), depth=out["depth"].float().cpu(),
                            opacity=None if op is None else op.float().cpu())

    return CallableSceneModel(
        kind=kind,
        name=name,
        scene_ids=list(bank.scene_ids),
        render_fn=render,
        autoencoder=autoencoder,
        near=float(cfg.near),
        far=float(cfg.far),
        info=dict(info or {}),
        offset_ensemble=int(getattr(cfg, "offset_ensemble", 1)) if kind == "latent" else 1,
    )


class _AEView:
    """:class:`AutoencoderView` over a ``LatentAutoencoder`` (posterior mean, no grad, eval mode, float32).

    Inputs are moved to the autoencoder's device and outputs come back on the CPU.
    """

    def __init__(self, ae: Any) -> None:
        self.ae = ae
        self.downsample = int(getattr(ae, "downsample_factor", 8))

    def _dev(self) -> torch.device:
        return next(self.ae.parameters()).device

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.ae.encode_distribution(x.to(self._dev())).mean.float().cpu()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.ae.decode(z.to(self._dev())).float().cpu()

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        return self.ae.normalize(z)

    def denormalize(self, zbar: torch.Tensor) -> torch.Tensor:
        return self.ae.denormalize(zbar)


def autoencoder_view(ae: Any) -> _AEView:
    """Wrap a ``LatentAutoencoder`` for evaluation (puts it in eval mode; evaluation never trains it)."""
    ae.eval()
    return _AEView(ae)


def latent_system_model(system: Any, name: str = "3Da-AE (ours)", info: dict | None = None) -> CallableSceneModel:
    """A :class:`SceneModel` over a trained ``LatentSystem`` (``ae``, ``bank``, ``mlp``, ``render``).

    The latent background is the system's own (normalised code of white, [0, 1] pre-scale space).
    """
    with torch.no_grad():
        bg = system.background().detach().float()
    return triplane_scene_model(
        "latent", name, system.bank, system.mlp, system.render, bg, autoencoder=autoencoder_view(system.ae),
        device=bg.device, info=info,
    )


def rgb_fit_model(fit: RGBFitFolder, device: torch.device | str = "cpu",
                  name: str = "Tri-Planes (RGB)") -> CompositeSceneModel | CallableSceneModel:
    """An ``"rgb"`` :class:`SceneModel` over a read Tri-Planes (RGB) folder: one part per MLP (per scene for
    micro, one for macro), combined by :class:`CompositeSceneModel`.

    ``info`` = the ``results.json`` summary and per-scene records (time_s, param_bytes), the variant and the folder.
    """
    res = fit.results
    info = {"summary": res.get("summary", {}), "scenes": {r["scene_id"]: r for r in res["scenes"]},
            "variant": res.get("variant"), "run": str(fit.path)}
    if not fit.parts:  # a results.json that lists no scene: a model of no scene (load_run refuses it, saying so)
        return CallableSceneModel(kind="rgb", name=name, scene_ids=[], render_fn=_no_scene, near=float(fit.render.near),
                                  far=float(fit.render.far), info=info)
    parts = [triplane_scene_model("rgb", name, p.bank, p.decoder, fit.render, fit.background, device=device)
             for p in fit.parts]
    return CompositeSceneModel(name, parts, info=info)


def _no_scene(sid: str, c2w: torch.Tensor, K: torch.Tensor, hw: tuple[int, int]) -> RenderOutput:
    raise KeyError(sid)  # never reached: CallableSceneModel.render refuses a scene it does not hold


def load_rgb_run(run_dir: str | Path, device: torch.device | str = "cpu",
                 name: str = "Tri-Planes (RGB)") -> CompositeSceneModel | CallableSceneModel:
    """Load a Tri-Planes (RGB) baseline folder written by ``fit_rgb_scenes`` / ``latentscenes fit-rgb``.

    The folder is read by :func:`latentscenes.baselines.rgb.fit_format.load_rgb_fit_folder` (its layout is documented
    there; only safetensors and JSON are read) and wrapped by :func:`rgb_fit_model`.

    Returns:
        an ``"rgb"`` :class:`SceneModel` (the fit's background, white), ``info`` = the ``results.json`` summary and
        per-scene records (time_s, param_bytes).
    Raises:
        FileNotFoundError: missing ``results.json`` or planes (the message names the file and the fix).
        UnreadableFileError: (a ``ValueError``) a damaged ``results.json`` or weights file, naming it.
        DatasetError: a scene id in ``results.json`` that is not one plain path component.
    """
    return rgb_fit_model(load_rgb_fit_folder(run_dir), device=device, name=name)


# ============================================================================================ run folders
class NotARunError(FileNotFoundError):
    """A folder that does not exist or was not written by ``latentscenes train``, ``exploit`` or ``fit-rgb``.

    The message names the folder (a :class:`FileNotFoundError`, so the command line reports it as one line).
    """


_RUN_KINDS = "a folder written by `latentscenes train`, `exploit`, `fit-rgb` or `export`"


@dataclass
class LoadedRun:
    """A run folder ready for evaluation / rendering.

    Attributes:
        kind: ``"train"`` (3Da-AE training run), ``"exploit"`` (exploit batch) or ``"rgb"`` (Tri-Planes (RGB)).
        model: the scenes it holds (a :class:`CompositeSceneModel` when train and exploit scenes are combined).
        groups: ``{"train": ids, "exploit": ids}`` for 3Da-AE (only the groups asked for), ``{"rgb": ids}`` for
            the baseline.
        data_root: dataset the scenes came from ("" when the run does not record it).
        resolution: image size the scenes were fitted at (square side in px), or ``None`` = as stored.
        manifest: the run's manifest (or ``results.json`` for the baseline).
    """

    kind: str
    model: Any
    groups: dict[str, list[str]]
    data_root: str
    resolution: int | None
    manifest: dict


def load_run(run_dir: str | Path, scenes: str = "all", device: str | torch.device = "auto",
             offset_ensemble: int | None = None, data: str | Path | None = None) -> LoadedRun:
    """Open any run folder for evaluation.

    Args:
        run_dir: a 3Da-AE training run (``latentscenes train``), an exploit batch (``latentscenes exploit``),
            or an RGB baseline folder (``latentscenes fit-rgb``); ``"shipped"`` / ``"shipped-128"`` are the package's pre-trained 3Da-AEs.
        scenes: ``train`` (the scenes 3Da-AE was trained on), ``exploit`` (an exploit batch's scenes) or
            ``all``. For an exploit batch, ``train``/``all`` also load its source training run (each scene is
            decoded by the decoder it was learned with). An RGB folder does not record its scenes' splits:
            ``train`` / ``exploit`` take the folder's scenes in that split of the dataset (``data``, else the one
            the folder records), grouped under the split's name; ``all`` every scene, in one group ``rgb``.
        device: ``auto``, ``cpu`` or ``cuda``.
        offset_ensemble: decode latent scenes with this ``render.offset_ensemble`` instead of the run's own
            (``None``: the run's config); see :func:`~latentscenes.evaluation.model.render_decoded`.
        data: the dataset folder, for an RGB folder's ``scenes`` split (default: the one the folder records).
    Raises:
        NotARunError: (a ``FileNotFoundError``) ``run_dir`` does not exist or holds no run; the message names it.
        DatasetError: ``data`` is not a readable dataset.
        ValueError: ``scenes`` asks for exploit scenes of a training run, or is not train/exploit/all; ``scenes``
            train / exploit for an RGB folder that records no dataset and no ``data`` given; the run
            holds no scene at all (e.g. an RGB fit whose results.json lists none): "0 scenes" is no evaluation;
            ``run_dir`` is a pre-trained 3Da-AE package (``shipped`` or ``latentscenes export``), which holds none.
    """
    loaded = _load_run(Path(run_dir), scenes, device, data)
    if not any(loaded.groups.values()):
        raise ValueError(f"{run_dir}: holds no scenes to evaluate or render (its scene list is empty)")
    if offset_ensemble is not None:
        set_offset_ensemble(loaded.model, offset_ensemble)
    return loaded


def _rgb_split_scenes(run_dir: Path, ids: list[str], split: str, root: str | Path) -> list[str]:
    """The scenes of an RGB folder that are in ``split`` of the dataset at ``root``, in the folder's order (an RGB
    folder records which scenes it fitted, not their split: the benchmark fits train and exploit scenes in one)."""
    if not str(root):
        raise ValueError(f"{run_dir}: an RGB folder records no dataset, so its {split} scenes are unknown: "
                         "pass --data DIR (the dataset it was fitted on)")
    # imported on use, like the training stack below: `import latentscenes.api` stays light
    from latentscenes.data.dataset import MultiSceneDataset

    wanted = set(MultiSceneDataset(root).split_scene_ids(split))
    chosen = [s for s in ids if s in wanted]
    if not chosen:
        raise ValueError(f"{run_dir}: none of its {len(ids)} scenes is in the {split} split of {root}")
    return chosen


def _load_run(run_dir: Path, scenes: str, device: str | torch.device, data: str | Path | None = None) -> LoadedRun:
    """:func:`load_run` without the check that some scene was loaded."""
    # imported on use: training.pipeline pulls in torchmetrics (~2 s), and latentscenes.api imports this module
    from latentscenes.training import pipeline as pl

    if scenes not in ("train", "exploit", "all"):
        raise ValueError(f"--scenes must be train, exploit or all, not {scenes!r}")
    run_dir = pl.resolve_run(run_dir)  # "shipped" (-128): the package's folder
    if not run_dir.is_dir():
        raise NotARunError(f"{run_dir}: run folder not found")
    if not rf.has_manifest(run_dir):
        if is_rgb_fit(run_dir):
            fit = load_rgb_fit_folder(run_dir)
            model = rgb_fit_model(fit, device=pick_device(str(device)) if not isinstance(device, torch.device) else device)
            res = fit.results
            recorded = res.get("data") if isinstance(res.get("data"), dict) else {}
            root = str(res.get("data_root") or recorded.get("path") or recorded.get("root") or "")
            groups = {"rgb": list(model.scene_ids)}
            if scenes != "all":
                groups = {scenes: _rgb_split_scenes(run_dir, list(model.scene_ids), scenes, data or root)}
            return LoadedRun("rgb", model, groups, str(data or root), fitted_resolution(res), res)
        raise NotARunError(f"{run_dir}: not a latentscenes run folder (no {rf.MANIFEST_FILE} or {RESULTS_FILE}): "
                           f"expected {_RUN_KINDS}")
    man = rf.read_manifest(run_dir)
    if not rf.config_path(run_dir).is_file():
        raise NotARunError(f"{run_dir}: not a latentscenes run folder (no {rf.CONFIG_FILE}): expected {_RUN_KINDS}")
    if not rf.is_latent_manifest(man):
        raise NotARunError(f"{run_dir}: not a latentscenes run folder (its {rf.MANIFEST_FILE} has format "
                           f"{rf.manifest_format(man)!r}): expected {_RUN_KINDS}")
    cfg = pl.load_run_config(run_dir)
    root, res = cfg.data.path or "", cfg.data.resolution
    if rf.is_run_manifest(man):
        if not rf.scenes_included(man):
            raise ValueError(f"{run_dir} is a pre-trained 3Da-AE without scenes: learn scenes with it "
                             f"(`latentscenes exploit --run {run_dir} --data D --out OUT`) and evaluate OUT")
        if scenes == "exploit":
            raise ValueError(f"{run_dir} is a training run: its exploit scenes live in the exploit folder "
                             "(`latentscenes exploit --out OUT`); pass --run OUT")
        system = pl.load_trained(run_dir, device)
        model = latent_system_model(system, info={"run": str(run_dir)})
        return LoadedRun("train", model, {"train": list(model.scene_ids)}, root, res, man)
    # an exploit batch (rf.EXPLOIT_FORMAT)
    ex_model = latent_system_model(pl.load_exploited(run_dir, device), info={"run": str(run_dir)})
    groups: dict[str, list[str]] = {}
    parts = []
    src = pl.source_run(man)
    src_has_scenes = rf.scenes_included(rf.read_manifest_if_any(src))
    if scenes == "train" and not src_has_scenes:
        raise ValueError(f"{run_dir}: learned from the pre-trained 3Da-AE {src}, which holds no training scenes; "
                         "pass --scenes exploit")
    if scenes in ("train", "all") and src_has_scenes:
        tr_model = latent_system_model(pl.load_trained(src, device), info={"run": str(src)})
        parts.append(tr_model)
        groups["train"] = list(tr_model.scene_ids)
    if scenes in ("exploit", "all"):
        parts.append(ex_model)
        groups["exploit"] = list(ex_model.scene_ids)
    model = parts[0] if len(parts) == 1 else CompositeSceneModel(ex_model.name, parts)
    return LoadedRun("exploit", model, groups, root, res, man)


def load_ground_truth(data_root: str | Path, ids: list[str], resolution: int | None = None) -> tuple[dict, Any]:
    """Load the ground-truth scenes ``ids`` from a dataset folder at the resolution the run used.

    Returns:
        ``({scene_id: SceneViews}, dataset)``.
    Raises:
        DatasetError / FileNotFoundError: no dataset path, or a scene that the dataset does not hold.
    """
    if not data_root:
        raise DatasetError("the run does not record its dataset: pass --data DIR")
    if not Path(data_root).exists():
        raise FileNotFoundError(f"dataset folder {data_root} not found (pass --data DIR)")
    ds = MultiSceneDataset(data_root, resolution=resolution)
    known = set(ds.scene_ids)
    missing = [s for s in ids if s not in known]
    if missing:
        raise DatasetError(f"{data_root}: no scene(s) {missing[:5]} (the run was fitted on another dataset?)")
    return {s: ds.load(s) for s in ids}, ds
