"""The Tri-Planes (RGB) baseline: tri-plane NeRFs fitted directly in image space (paper Sec. 4, Tab. 1-2).

Same renderer as the latent scenes (:mod:`latentscenes.rendering`), RGB output (C = 3, white background),
paper sizes T = 64, F = 32. To stay practical on a CPU each step renders a random batch of rays drawn from all
training pixels of the scene (instead of whole 128x128 views: 4,096 rays take ~0.7 s per step on a 2-core CPU,
one 128x128 view ~3 s).

Two variants:
  * ``"micro"``: Tri-Planes (RGB). Every scene is fitted on its own, with its own planes ``[3, F, T, T]`` and
    its own MLP; per-scene time is that scene's wall time.
  * ``"macro"``: Tri-Planes-Macro (RGB) (paper Tab. 2): F_mic = 0, all scenes share M global planes and one MLP,
    each scene owns only its M coefficients (Eq. 7); scenes are fitted jointly with multi-scene batches and the
    per-scene time is the total time divided by the number of scenes.

Recorded per scene: wall time of the optimisation (evaluation excluded), parameter bytes, and, with the evaluator
its caller passes (the protocol of ``latentscenes eval``, ``evaluation/curves.py``), held-out PSNR/SSIM and a
PSNR-vs-time curve [(seconds, psnr)] on a few held-out views.

Both variants run on the loop and optimiser wrapper of the latent stages (``training/loop.py``: ``optimise``,
``GroupOptimizers``), so their clocks, curves and finite-loss guard mean what the latent stages' mean; what is
theirs is the batch (random rays of the scene's training pixels) and the loss (MSE + optional TV). The folder
they write is owned by :mod:`latentscenes.baselines.rgb.fit_format`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Sequence

import torch
import torch.nn.functional as F

from latentscenes.config import ConfigError, get_preset, register_presets, to_dict
from latentscenes.data.bounds import check_bounds, derive_bounds, describe
from latentscenes.data.loaders import resize_area
from latentscenes.data.types import DatasetError, SceneViews, check_scene_id
from latentscenes.rendering.decoder import TriplaneDecoder
from latentscenes.rendering.rays import generate_rays
from latentscenes.rendering.renderer import RenderConfig, measure_render_ms, render_rays
from latentscenes.baselines.rgb.fit_format import (load_micro_scene, read_scene_record, save_macro, save_micro_scene,
                                                   write_results, write_scene_record)
from latentscenes.scenes.bank import SceneBank, TriplaneConfig
from latentscenes.training.loop import GroupOptimizers, ParamGroup, StageResult, StepOutput, bank_groups, optimise
from latentscenes.training.losses import triplane_tv
from latentscenes.utils.device import pick_device, seed_everything, set_cpu_threads


@dataclass
class RGBFitConfig:
    """Settings of the RGB tri-plane baseline.

    Attributes:
        triplane: plane sizes. For ``variant="micro"`` only ``resolution`` and ``features`` (F_mic + F_mac) matter
            (F = 32 in the paper); ``"macro"`` uses F_mic = 0, F_mac = F and ``n_global`` global planes.
        render: renderer settings (near/far/box are replaced by the data set's if ``use_dataset_render``).
        variant: ``"micro"`` (Tri-Planes (RGB)) or ``"macro"`` (Tri-Planes-Macro (RGB)).
        resolution: image size (px) the views are fitted and evaluated at (None = as stored).
        steps: optimisation steps per scene (micro) or in total (macro).
        rays_per_batch: random rays per step (all scenes of the step together).
        scenes_per_batch: scenes per step (macro only).
        lr_planes, lr_mlp, lr_coefs, lr_global: Adam learning rates of the planes, the tri-plane MLP (the tiny
            decoder of the renderer), the coefficients and the global planes (paper: 1e-2). ``lr_mlp`` was called
            ``lr_decoder`` before (a name the 3Da-AE stages use for the VAE decoder): saved configs that carry the
            old name load as ``lr_mlp``; ``--set lr_decoder=...`` is an error that gives the new name.
        lr_final_factor: every learning rate decays exponentially to this fraction of its value at the last
            step (1 = constant, the paper's).
        lambda_tv / tv_mode: total variation of the fitted planes (``training.losses.triplane_tv``, the same
            prior as the latent scenes'), added to the MSE; 0 = off (the paper's). Few views of a scene leave
            the planes under-determined: without it floaters and streaks appear in held-out views.
        optimizer: ``"sparse"`` (lazy per-scene Adam) or ``"dense"`` (the paper's single Adam); matters for macro.
        eval_every: steps between PSNR-vs-time points (0 = only at the start and the end).
        curve_views: held-out views per scene used for the curve (the final metrics use all held-out views).
        max_eval_views: cap on held-out views for the final metrics (0 = all).
        bg: background colour in [0, 1] (white, the data sets' compositing colour).
        seed: RNG seed (scene k uses seed + k).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        use_dataset_render: take near/far/box_size from the data set's manifest when it has them.
        save_planes: write each scene's planes (and MLP) as safetensors under ``out_dir/scenes``.
        measure_render: time one 128x128 render without autograd on the first fitted scene.
    """

    triplane: TriplaneConfig = field(default_factory=lambda: TriplaneConfig(resolution=64, f_mic=32, f_mac=0, n_global=50))
    render: RenderConfig = field(default_factory=RenderConfig)
    variant: Literal["micro", "macro"] = "micro"
    resolution: int | None = 128
    steps: int = 2000
    rays_per_batch: int = 4096
    scenes_per_batch: int = 4
    lr_planes: float = 1e-2
    lr_mlp: float = 1e-2
    lr_coefs: float = 1e-2
    lr_global: float = 1e-2
    lr_final_factor: float = 1.0
    lambda_tv: float = 0.0
    tv_mode: Literal["l2", "l1"] = "l2"
    optimizer: Literal["sparse", "dense"] = "sparse"
    eval_every: int = 100
    curve_views: int = 2
    max_eval_views: int = 0
    bg: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seed: int = 0
    device: str = "cpu"
    use_dataset_render: bool = True
    save_planes: bool = True
    measure_render: bool = True

    #: Old field names read under their new ones from saved configs (latentscenes.config.renamed_keys).
    RENAMED_KEYS: ClassVar[dict[str, str]] = {"lr_decoder": "lr_mlp"}

    def validate(self) -> None:
        """Check the values a fit would use before anything is written.

        Raises:
            ConfigError: ``steps``, ``rays_per_batch``, ``scenes_per_batch`` or ``curve_views`` below 1, a learning rate or
                ``lambda_tv`` that is negative or not finite, ``lr_final_factor`` outside (0, 1]; the message
                gives the key and the value.
        """
        for k in ("steps", "rays_per_batch", "scenes_per_batch", "curve_views"):
            if getattr(self, k) < 1:
                raise ConfigError(f"{k}={getattr(self, k)!r}: must be >= 1")
        for k in ("lr_planes", "lr_mlp", "lr_coefs", "lr_global", "lambda_tv"):
            v = getattr(self, k)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{k}={v!r}: must be a finite number >= 0")
        if not (math.isfinite(self.lr_final_factor) and 0 < self.lr_final_factor <= 1):
            raise ConfigError(f"lr_final_factor={self.lr_final_factor!r}: must lie in (0, 1]")


register_presets(
    RGBFitConfig,
    {
        "test": lambda: RGBFitConfig(
            triplane=TriplaneConfig(resolution=16, f_mic=8, f_mac=0, n_global=4),
            render=get_preset(RenderConfig, "test"),
            resolution=32, steps=6, rays_per_batch=256, scenes_per_batch=2, eval_every=3, curve_views=1,
            max_eval_views=2, save_planes=True, measure_render=False,
        ),
        # T = 64 as in the paper: with T = 32 the baseline was 0.70 dB lower on held-out 64 px views (0.87 at
        # 128 px) for ~0.8x the time per step; T = 128 is no better (docs/fidelity.md, twentieth session)
        "tiny-cpu": lambda: RGBFitConfig(
            triplane=TriplaneConfig(resolution=64, f_mic=32, f_mac=0, n_global=10),
            render=get_preset(RenderConfig, "tiny-cpu"),
            resolution=64, steps=400, rays_per_batch=1024, scenes_per_batch=4, eval_every=50, curve_views=2,
        ),
        "paper": lambda: RGBFitConfig(
            triplane=TriplaneConfig(resolution=64, f_mic=32, f_mac=0, n_global=50),
            render=get_preset(RenderConfig, "paper"),
            resolution=128, steps=5000, rays_per_batch=4096, scenes_per_batch=8, eval_every=250, curve_views=2,
        ),
    },
)


def effective_triplane(cfg: RGBFitConfig) -> TriplaneConfig:
    """The plane layout actually fitted: all F features local (micro) or all global (macro)."""
    F_total = cfg.triplane.features
    if cfg.variant == "micro":
        return dataclasses.replace(cfg.triplane, f_mic=F_total, f_mac=0)
    if cfg.variant == "macro":
        return dataclasses.replace(cfg.triplane, f_mic=0, f_mac=F_total, n_global=max(1, cfg.triplane.n_global))
    raise ValueError(f"variant must be 'micro' or 'macro', got {cfg.variant!r}")


# ----------------------------------------------------------------------------------------------- data helpers
def _resize(scene: SceneViews, resolution: int | None) -> SceneViews:
    """Area-resample the images to ``resolution`` (K is normalised, so cameras need no change)."""
    if resolution is None or scene.resolution == (resolution, resolution):
        return scene
    images = resize_area(scene.images, resolution)
    return dataclasses.replace(scene, images=images, masks=None)


@dataclass
class _SceneRays:
    """All training rays of one scene, flattened, plus the held-out views."""

    origins: torch.Tensor  # [P, 3]
    dirs: torch.Tensor  # [P, 3]
    target: torch.Tensor  # [P, 3] in [-1, 1]
    test: SceneViews


def _prepare(scene: SceneViews, device: torch.device) -> _SceneRays:
    train_idx, test_idx = scene.view_indices("train"), scene.view_indices("test")
    if not train_idx or not test_idx:
        raise DatasetError(f"scene {scene.scene_id}: needs train and test views (has {len(train_idx)}/{len(test_idx)})")
    tr = scene.subset(train_idx)
    H, W = tr.resolution
    o, d = generate_rays(tr.c2w, tr.K, H, W)
    target = tr.images.permute(0, 2, 3, 1).reshape(-1, 3) * 2.0 - 1.0
    return _SceneRays(o.reshape(-1, 3).to(device), d.reshape(-1, 3).to(device), target.to(device), scene.subset(test_idx))


def _mean(xs: Sequence[float | None]) -> float | None:
    """Mean of the finite values (as ``evaluate_scene``'s means: a perfect view's PSNR is inf), None when there is
    none (a fit without an evaluator measures no PSNR)."""
    vals = [x for x in xs if x is not None and math.isfinite(x)]
    return float(sum(vals) / len(vals)) if vals else None


#: The held-out evaluation a fit is given by its caller (the protocol lives above this floor; the callers pass
#: ``latentscenes.evaluation.curves.rgb_fit_evaluator()``): ``evaluate(bank, mlp, render_cfg, background, scene,
#: max_views) -> {"psnr": [dB per view], "ssim": [per view]}`` on the first ``max_views`` (None = all) test views.
HeldOutEval = Callable[[SceneBank, TriplaneDecoder, RenderConfig, torch.Tensor, SceneViews, "int | None"],
                       dict[str, list[float]]]


def _held_out(evaluate: HeldOutEval | None, bank, decoder, rcfg, bg, test: SceneViews,
              max_views: int | None) -> tuple[list[float], list[float]]:
    if evaluate is None:
        return [], []
    m = evaluate(bank, decoder, rcfg, bg, test, max_views)
    return list(m["psnr"]), list(m["ssim"])


# ----------------------------------------------------------------------------------------------- fitting
def _tv(planes: torch.Tensor, cfg: RGBFitConfig) -> torch.Tensor | float:
    return cfg.lambda_tv * triplane_tv(planes, cfg.tv_mode) if cfg.lambda_tv > 0 else 0.0


def _optimizers(bank: SceneBank, decoder: TriplaneDecoder, cfg: RGBFitConfig) -> GroupOptimizers:
    """The fit's Adam groups, named as the latent stages name theirs (``mlp`` is the tri-plane MLP)."""
    sparse = cfg.optimizer == "sparse"
    return GroupOptimizers([*bank_groups(bank, sparse, cfg.lr_planes, cfg.lr_coefs, cfg.lr_global),
                            ParamGroup("mlp", list(decoder.parameters()), cfg.lr_mlp)], sparse=sparse)


def _run(stage: str, cfg: RGBFitConfig, opts: GroupOptimizers, forward: Callable[[int], StepOutput],
         curve_psnr: Callable[[], float] | None, device: torch.device) -> StageResult:
    """``cfg.steps`` updates on the loop every fit runs (``training.loop.optimise``); the PSNR-vs-time curve (when
    the fit was given an evaluator) is taken at the start, every ``eval_every`` updates and at the end, its time
    excluded from ``train_s``."""

    def lr_factor(step: int) -> float:
        return cfg.lr_final_factor ** (step / max(1, cfg.steps - 1)) if cfg.lr_final_factor != 1.0 else 1.0

    return optimise(stage=stage, n_steps=cfg.steps, start=0, result=StageResult(stage=stage), opts=opts,
                    forward=forward, device=device, lr_factor=lr_factor,
                    run_eval=None if curve_psnr is None else (lambda step: {"psnr": curve_psnr()}),
                    eval_every=cfg.eval_every if curve_psnr is not None else 0, eval_at_start=curve_psnr is not None,
                    log_every=1)  # final_losses = the last update's


def _fit_micro(scene: SceneViews, idx: int, cfg: RGBFitConfig, rcfg: RenderConfig, tcfg: TriplaneConfig, device, bg, out_dir,
               evaluate: HeldOutEval | None):
    gen = torch.Generator().manual_seed(cfg.seed + idx)
    torch.manual_seed(cfg.seed + idx)
    data = _prepare(scene, device)
    bank = SceneBank(tcfg, [scene.scene_id], generator=gen).to(device)
    decoder = TriplaneDecoder(tcfg.features, 3, rcfg.decoder_hidden).to(device)
    opts = _optimizers(bank, decoder, cfg)
    rows = bank.rows([scene.scene_id])
    P = data.origins.shape[0]

    def forward(step: int) -> StepOutput:
        sel = torch.randint(P, (cfg.rays_per_batch,), generator=gen).to(device)
        planes = bank.planes(rows)
        out = render_rays(planes, decoder, data.origins[sel][None], data.dirs[sel][None], rcfg, bg)
        loss = F.mse_loss(out["colour"][0], data.target[sel]) + _tv(planes, cfg)
        return StepOutput(loss, {"total": float(loss.detach())}, rows)

    def curve_psnr() -> float:
        return _mean(_held_out(evaluate, bank, decoder, rcfg, bg, data.test, cfg.curve_views)[0])

    res = _run("rgb_micro", cfg, opts, forward, curve_psnr if evaluate is not None else None, device)
    n_eval = min(cfg.max_eval_views, data.test.num_views) if cfg.max_eval_views else data.test.num_views
    psnr, ssim = _held_out(evaluate, bank, decoder, rcfg, bg, data.test, n_eval)
    dec_bytes = sum(p.numel() * p.element_size() for p in decoder.parameters())
    if out_dir is not None and cfg.save_planes:
        save_micro_scene(out_dir, scene.scene_id, bank, decoder)
    result = {
        "scene_id": scene.scene_id,
        "time_s": res.train_s,
        "cpu_time_s": res.cpu_s,
        "steps": cfg.steps,
        "param_bytes": bank.per_scene_bytes() + dec_bytes,
        "plane_bytes": bank.per_scene_bytes(),
        "decoder_bytes": dec_bytes,
        "psnr": _mean(psnr),
        "ssim": _mean(ssim),
        "psnr_per_view": psnr,
        "ssim_per_view": ssim,
        "n_test_views": len(psnr),
        "final_loss": res.final_losses["total"],
        "curve": [[c["train_s"], c["psnr"]] for c in res.curve],
    }
    return result, (bank, decoder, rows)


def _fit_macro(scenes: list[SceneViews], cfg: RGBFitConfig, rcfg: RenderConfig, tcfg: TriplaneConfig, device, bg, out_dir,
               evaluate: HeldOutEval | None):
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    ids = [s.scene_id for s in scenes]
    data = [_prepare(s, device) for s in scenes]
    bank = SceneBank(tcfg, ids, generator=gen).to(device)
    decoder = TriplaneDecoder(tcfg.features, 3, rcfg.decoder_hidden).to(device)
    opts = _optimizers(bank, decoder, cfg)
    S = max(1, min(cfg.scenes_per_batch, len(ids)))
    R = max(1, cfg.rays_per_batch // S)

    def forward(step: int) -> StepOutput:
        pick = torch.randperm(len(ids), generator=gen)[:S].tolist()
        o, d, tg = [], [], []
        for i in pick:
            sel = torch.randint(data[i].origins.shape[0], (R,), generator=gen).to(device)
            o.append(data[i].origins[sel]); d.append(data[i].dirs[sel]); tg.append(data[i].target[sel])
        rows = torch.tensor(pick, dtype=torch.long, device=device)
        planes = bank.planes(rows)
        out = render_rays(planes, decoder, torch.stack(o), torch.stack(d), rcfg, bg)
        loss = F.mse_loss(out["colour"], torch.stack(tg)) + _tv(planes, cfg)
        return StepOutput(loss, {"total": float(loss.detach())}, rows)

    def curve_psnr() -> float:
        return _mean([p for d in data for p in _held_out(evaluate, bank, decoder, rcfg, bg, d.test, cfg.curve_views)[0]])

    res = _run("rgb_macro", cfg, opts, forward, curve_psnr if evaluate is not None else None, device)
    clock, cpu = res.train_s, res.cpu_s
    curve = [[c["train_s"], c["psnr"]] for c in res.curve]
    dec_bytes = sum(p.numel() * p.element_size() for p in decoder.parameters())
    results = []
    for i, d in enumerate(data):
        n_eval = min(cfg.max_eval_views, d.test.num_views) if cfg.max_eval_views else d.test.num_views
        psnr, ssim = _held_out(evaluate, bank, decoder, rcfg, bg, d.test, n_eval)
        results.append({
            "scene_id": ids[i], "time_s": clock / len(ids), "cpu_time_s": cpu / len(ids), "steps": cfg.steps,
            "param_bytes": bank.per_scene_bytes(), "plane_bytes": bank.per_scene_bytes(), "decoder_bytes": 0,
            "psnr": _mean(psnr), "ssim": _mean(ssim), "psnr_per_view": psnr, "ssim_per_view": ssim,
            "n_test_views": len(psnr), "final_loss": res.final_losses["total"],
            "curve": [[t / len(ids), p] for t, p in curve],
        })
    if out_dir is not None and cfg.save_planes:
        save_macro(out_dir, bank, decoder)
    shared = {"global_planes_bytes": bank.shared_bytes(), "decoder_bytes": dec_bytes, "total_time_s": clock,
              "joint_curve": curve}
    return results, shared, (bank, decoder)


def _recorded_render(dataset: Any) -> dict[str, float] | None:
    """near/far/box_size that a data set's ``manifest.json`` records (None: it records none; ``render_defaults``
    would fill in the ShapeNet defaults); a data set without a manifest gives its ``render_defaults``."""
    manifest = getattr(dataset, "manifest", None)
    if isinstance(manifest, dict):
        return dict(manifest["render"]) if isinstance(manifest.get("render"), dict) else None
    return getattr(dataset, "render_defaults", None)


def fit_rgb_scenes(
    scenes: Any,
    cfg: RGBFitConfig,
    out_dir: str | Path | None = None,
    scene_ids: Sequence[str] | None = None,
    render_defaults: dict[str, float] | None = None,
    log: Any = None,
    evaluate: HeldOutEval | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Fit RGB tri-planes to scenes and measure time, bytes and held-out quality (paper Sec. 4, Tab. 1-2).

    Args:
        scenes: a list of :class:`SceneViews`, or a data set with ``scene_ids`` and ``load(id)`` (and optionally
            ``render_defaults``, a dict with near/far/box_size), e.g. ``latentscenes.data.MultiSceneDataset``.
            A data set whose manifest records no ``render`` section gets near/far/box from its cameras
            (``data.bounds.derive_bounds``, printed through ``log``).
        cfg: :class:`RGBFitConfig`.
        out_dir: where ``results.json`` (and, if ``cfg.save_planes``, the planes) are written; None = nothing.
        scene_ids: subset of a data set's scenes to fit (default: all).
        render_defaults: near/far/box_size overriding the data set's (used if ``cfg.use_dataset_render``).
        log: optional callable ``log(str)`` for progress lines.
        evaluate: the held-out evaluation (:data:`HeldOutEval`; the commands, the demo and the benchmark pass
            ``latentscenes.evaluation.curves.rgb_fit_evaluator()``, the protocol of ``latentscenes eval``, so that
            the fit's figures and an ``eval`` of its folder are one metric path). None: no held-out metric and no
            curve is measured (``psnr`` / ``ssim`` None, ``curve`` empty).
        resume: micro fits only: a scene whose record ``OUT/scenes/<id>.json`` exists (with its weights) is not
            fitted again, its record is reused (each scene's seed depends on its position only, so the result is
            the uninterrupted fit's). Macro fits are one optimisation over all scenes and always start afresh.
    Returns:
        JSON-able dict: ``config``, ``variant``, ``scenes`` (per scene: ``scene_id``, ``time_s`` (wall s, evaluation
        excluded), ``cpu_time_s`` (process CPU s, all threads), ``param_bytes``, ``psnr`` (dB), ``ssim``, ``curve`` [[seconds, psnr], ...],
        ``n_test_views``; without ``evaluate``: ``psnr`` / ``ssim`` None, ``curve`` empty, ``n_test_views`` 0), ``summary``
        (means, and ``render_ms_per_view_128`` when measured), ``shared`` (macro: shared bytes).
    Raises:
        DatasetError: for a scene without train or test views, or (when planes are saved) a scene id that is not
            one plain path component (checked before any scene is fitted).
        ConfigError: near/far that cannot see the scene box from some camera; a value
            :meth:`RGBFitConfig.validate` refuses.
        ValueError: for a bad variant.
    """
    cfg.validate()
    device = pick_device(cfg.device)
    if device.type == "cpu":
        set_cpu_threads()
    seed_everything(cfg.seed)
    tcfg = effective_triplane(cfg)
    rcfg = cfg.render
    say = log or (lambda s: None)
    defaults = render_defaults
    if defaults is None and not isinstance(scenes, (list, tuple)):
        defaults = _recorded_render(scenes)
    if cfg.use_dataset_render and defaults:
        rcfg = dataclasses.replace(rcfg, **{k: float(v) for k, v in defaults.items() if k in ("near", "far", "box_size")})
    if isinstance(scenes, (list, tuple)):
        views = [s for s in scenes if scene_ids is None or s.scene_id in set(scene_ids)]
    else:
        ids = list(scene_ids) if scene_ids is not None else list(scenes.scene_ids)
        views = [scenes.load(s) for s in ids]
    views = [_resize(v, cfg.resolution) for v in views]
    if not views:
        raise DatasetError("fit_rgb_scenes: no scenes to fit")
    if cfg.use_dataset_render and defaults is None and not isinstance(scenes, (list, tuple)):
        # A dataset that states no bounds: the defaults (ShapeNet cars at distance 1.3) may cut its objects.
        b = derive_bounds(views, rcfg.box_size)
        say(describe(b))
        rcfg = dataclasses.replace(rcfg, near=b["near"], far=b["far"], box_size=b["box_size"])
    check_bounds(views, rcfg.near, rcfg.far, "fit-rgb")
    if out_dir is not None and cfg.variant == "micro" and cfg.save_planes:
        # Micro fits name files scenes/<id>.safetensors: every id is checked before any scene is fitted.
        source = getattr(scenes, "root", None) or "scenes given to fit_rgb_scenes"
        for v in views:
            check_scene_id(v.scene_id, str(source))
    bg = torch.tensor(cfg.bg, dtype=torch.float32, device=device)
    per_scene: list[dict[str, Any]] = []
    shared: dict[str, Any] = {}
    first = None
    if cfg.variant == "micro":
        for k, scene in enumerate(views):
            done = read_scene_record(out_dir, scene.scene_id) if resume and out_dir is not None else None
            if done is not None:
                per_scene.append(done)
                if first is None and cfg.measure_render:
                    bank, decoder = load_micro_scene(out_dir, scene.scene_id, tcfg, rcfg)
                    first = (bank.to(device), decoder.to(device), bank.rows([scene.scene_id]))
                say(f"{scene.scene_id}: fitted in an earlier run (resumed), {done['time_s']:.1f} s")
                continue
            r, model = _fit_micro(scene, k, cfg, rcfg, tcfg, device, bg, out_dir, evaluate)
            if out_dir is not None and cfg.save_planes:
                write_scene_record(out_dir, r)  # after its weights: the scene is done (fit_format)
            per_scene.append(r)
            first = first or model
            quality = f"{r['psnr']:.2f} dB PSNR, SSIM {r['ssim']:.3f}, " if r["psnr"] is not None else ""
            say(f"{scene.scene_id}: {quality}{r['time_s']:.1f} s, {r['param_bytes']} B")
    else:
        per_scene, shared, (bank, decoder) = _fit_macro(list(views), cfg, rcfg, tcfg, device, bg, out_dir, evaluate)
        first = (bank, decoder, bank.rows([views[0].scene_id]))
        say(f"macro: {len(views)} scenes, {shared['total_time_s']:.1f} s total")
    summary = {
        "n_scenes": len(per_scene),
        "psnr": _mean([r["psnr"] for r in per_scene]),
        "ssim": _mean([r["ssim"] for r in per_scene]),
        "time_s_per_scene": _mean([r["time_s"] for r in per_scene]),
        # process CPU seconds (all threads): less sensitive than wall time to other jobs on a shared machine
        "cpu_time_s_per_scene": _mean([r["cpu_time_s"] for r in per_scene]),
        "param_bytes_per_scene": _mean([r["param_bytes"] for r in per_scene]),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    if cfg.measure_render and first is not None:
        bank, decoder, rows = first
        v0 = views[0]
        ms = measure_render_ms(bank.planes(rows).detach(), decoder, v0.c2w[:1].to(device), v0.K[:1].to(device), rcfg, 128, 128)
        summary["render_ms_per_view_128"] = ms
        say(f"render: {ms:.1f} ms per 128x128 view (no autograd)")
    results = {
        "variant": cfg.variant,
        "config": to_dict(cfg),
        "render_used": to_dict(rcfg),
        "triplane_used": to_dict(tcfg),
        "scenes": per_scene,
        "summary": summary,
        "shared": shared,
        # The size the scenes were fitted at, also when they were given in memory already resized (the demo and
        # the benchmark pass 64 px scenes with config.resolution None): evaluation reloads ground truth at it.
        "image_size": list(views[0].resolution),
    }
    if out_dir is not None:
        write_results(out_dir, results)
    return results
