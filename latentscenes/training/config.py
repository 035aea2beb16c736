"""Configuration of the 3Da-AE pipeline (paper arXiv 2403.11678, Sec. 3.5, Alg. 1-2).

One :class:`PipelineConfig` composes the component configs (autoencoder, tri-planes, renderer) with the
data selection and one :class:`StageConfig` per optimisation stage:

* ``warmup``  -- Encode-Scene warm-up of Alg. 1 (Sec. 3.5.1, last paragraph): planes, MLP, global planes
  B and coefficients W on cached normalised latents, L_Enc only, autoencoder frozen.
* ``joint``   -- Alg. 1 proper, Eq. 5: lambda_ae L_ae + lambda_Enc L_Enc + lambda_Dec L_Dec (+ TV).
* ``exploit_fit`` -- Alg. 2 lines 1-11 (new scenes): Encode-Scene on cached latents by default, or the
  Decode-Scene / Encode-Decode-Scene objective of Sec. 3.2 (``ExploitConfig.strategy``).
* ``exploit_finetune`` -- Alg. 2 lines 13-23: L_Dec with a trainable decoder.

Step counts are optimiser updates (one update = one mini-batch mixing views of many scenes). ``epochs``
may be given instead; it is converted with the number of training views of the stage.

Presets (registered with :func:`latentscenes.config.register_presets`):
  * ``test``: seconds on a CPU, for the test-suite.
  * ``tiny-cpu``: 64x64 images -> 8x8x4 latents, T=32, F 10+22, M=10, 24+24 samples; train + exploit in a
    few minutes on 2 cores (sizes and step counts measured on the 2-core CPU; docs/training.md "Presets").
  * ``paper``: T=64, F_mic 10, F_mac 22, M=50, 48+48 samples, batch 32 (latent fitting) / 16 (joint),
    learning rates and lambdas of the authors' experiment configs (``train.yaml`` / ``exploit.yaml``; the table
    in docs/training.md "Presets"), SD-1.5 autoencoder
    loaded from a user-given path (``ae`` section).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from latentscenes.autoencoder.model import AEConfig, check_upscale
from latentscenes.config import ConfigError, get_preset, preset_names, register_presets
from latentscenes.rendering.renderer import RenderConfig
from latentscenes.scenes.bank import TriplaneConfig
from latentscenes.utils.device import DeviceError, pick_device


@dataclass
class DataSelection:
    """Which scenes and views of a ``MultiSceneDataset`` the pipeline uses.

    Attributes:
        path: dataset root (``--data`` on the command line overrides it); ``None``: none recorded (a pre-trained
            package's config, whose scenes are not included).
        resolution: square image size in pixels the images are resized to (``None``: as stored). Must be a
            multiple of 8 (the autoencoder downsamples by 8; the latent is ``resolution // 8``, or
            ``resolution // (8 / ae.upscale)``).
        train_split / exploit_split: names passed to ``MultiSceneDataset.split_scene_ids``.
        n_train_scenes / n_exploit_scenes: keep the first N scene ids of the split (sorted order;
            ``None`` = all of them).
        max_views: keep at most this many *train* views per scene (``None`` = all).
        use_dataset_render: take near/far/box_size from the dataset's ``manifest.json`` ``"render"`` entry when
            it has one, else derive them from the cameras (``data.bounds``; printed); set false to keep
            ``render.*`` as configured. Bounds that cannot see the box from some camera are refused either way.
        shift_grid: g >= 1. With g > 1 every train view is also used shifted by (k * 8 / g, l * 8 / g) pixels,
            k, l < g, with the principal point moved to match (``training.data.shift_views``): the g^2 copies
            put the 8x8 latent grid at g^2 sub-latent-pixel offsets, so the latent targets constrain a scene
            at g times the latent resolution along each axis (with 8x8 latents a view alone gives 64 rays).
            Applies to training (Alg. 1: the joint stage then also pulls the encoder toward latents that agree
            across sub-pixel offsets) and to exploit batches. Stage ``epochs`` still count passes over the
            source views (a view-update draws one copy): the per-scene cost is the same for every g but for the
            g^2 encodes per view. Measured in docs/fidelity.md.
    """

    path: str | None = None
    resolution: int | None = None
    train_split: str = "train"
    exploit_split: str = "exploit"
    n_train_scenes: int | None = None
    n_exploit_scenes: int | None = None
    max_views: int | None = None
    use_dataset_render: bool = True
    shift_grid: int = 1


@dataclass
class StageConfig:
    """One optimisation stage. Learning rates are Adam learning rates (default betas and eps).

    Attributes:
        steps: number of optimiser updates (ignored when ``epochs`` is set; a ``--set X.steps=N`` override without
            ``X.epochs`` clears ``epochs``, so an explicit step count always applies).
        epochs: optional; number of passes over the stage's training views, converted to steps as
            ``ceil(epochs * n_views / batch_size)``.
        batch_size: views per update; each view is drawn from the shuffled list of (scene, view) pairs of
            the stage, so a batch mixes views of many scenes.
        lambda_ae / lambda_enc / lambda_dec: weights of L_ae, L_Enc, L_Dec (Eq. 5; Eq. 4 for exploit mixes).
        lambda_tv: weight of the tri-plane total variation (the authors' TV, ``training.losses.triplane_tv``:
            summed over the batch of fused planes and divided by H+W).
        tv_mode: ``l2`` squares the finite differences, ``l1`` takes their absolute value.
        loss: ``mse`` (the authors' code) or ``l1`` (the norm as printed in Eq. 2-5).
        lr_local / lr_coefs / lr_global / lr_mlp / lr_encoder / lr_decoder: learning rates of the local
            planes T_mic, the coefficients W, the global planes B, the tiny MLP (alpha), the encoder and the
            decoder. A learning rate of 0 freezes that group (it is then left out of the optimisers).
        lr_gamma_per_epoch: multiplicative learning-rate decay per epoch of this stage (1 = constant); the
            authors' exploit stages use 0.94157 (their ``exploit.yaml``). Applied as a per-step factor
            ``gamma ** (step / steps_per_epoch)``.
        freeze_mlp_fraction: stop updating the MLP once ``step >= fraction * steps`` (``None`` = never; the
            authors freeze it from epoch 45 of 50 of the warm-up, i.e. 0.9).
        optimizer: ``sparse`` = one Adam state per scene, stepped only for the scenes in the batch (scenes
            absent from a batch do not move, not even by Adam momentum); ``dense`` = one Adam over all
            per-scene parameters (the authors' behaviour: absent scenes drift with momentum).
        checkpoint_every: write a resumable checkpoint every N steps (0 = only at the end of the stage).
        log_every: write one JSON line of losses every N steps.
        eval_every: call the evaluation callback every N steps (0 = never; only when a callback is given).
        lambda_latent_anchor: weight of the latent-scale anchor of a stage that trains the encoder (joint):
            per view and latent channel, the squared difference between the spatial std (and mean) of the live
            normalised latent ``tanh(s E(x))`` and those of the same view's cached latent from the pre-trained
            encoder. Eq. 5 leaves the latent scale free and L_Enc falls with its square (docs/training.md,
            "Latent contraction"); the anchor removes that degree of freedom without pinning the latents'
            content. 0 = off (the paper's Eq. 5).
        dec_offset_merge: compute L_Dec on what ``render.offset_ensemble`` evaluates: each batch view rendered at
            every sub-latent-pixel offset of the table (``data.shift_grid``), every render decoded, moved back
            and averaged (``rendering.offsets.merge_offset_images``), against the view itself. ``g^2`` decodes
            per view instead of one (g = ``data.shift_grid``; with g = 1 it is the plain L_Dec). False = the
            paper's L_Dec, one decode per batch row.
        ae_crop: L_ae on a random ``ae_crop x ae_crop`` window of each batch's latents (one window per step, drawn
            with the stage's generator), decoded and compared with the same window of the images; 0 (or a size at
            least the latents') = the whole latent. Cuts L_ae's decode, which at ``ae.upscale = 2`` is a 256 px
            decode per view, to ``(ae_crop / h)^2`` of it (docs/fidelity.md, thirtieth session). L_ae is a
            regulariser (it keeps the decoder reconstructing real latents); a window keeps its per-pixel weight.
        ae_views: L_ae on the first ``ae_views`` views of each batch only (the batch is a random draw, so a random
            subset; whole images, the decoder's full context); 0 (or at least ``batch_size``) = every view. The
            other way to cut L_ae's decodes (``ae_views / batch_size`` of them). In a multi-process run both apply
            to each rank's share of the batch (``ae_views`` views per rank, one window per rank).
        dec_crop: L_Dec on a random ``dec_crop x dec_crop`` window of the latent grid (one window per step and
            rank, drawn with the stage's generator): only the window's rays are rendered (its own camera,
            ``rendering.rays.crop_intrinsics``; with L_Enc or TV in the stage, the window of their whole render)
            and decoded, against the same window of the images; with ``dec_offset_merge`` every copy is rendered
            at the window and the window's decodes are merged (its top / left border then averages fewer copies
            than the same pixels of a whole-view merge). 0 (or a size at least the grid's) = the whole view (the paper's L_Dec). Cuts the
            render and the decode of a view to about ``(dec_crop / h)^2`` of them; the decoder then sees less
            context than at evaluation (its middle block attends over the whole grid). Ours, not the paper's.
    """

    steps: int = 100
    epochs: float | None = None
    batch_size: int = 8
    lambda_ae: float = 0.0
    lambda_enc: float = 1.0
    lambda_dec: float = 0.0
    lambda_tv: float = 0.0
    tv_mode: Literal["l2", "l1"] = "l2"
    loss: Literal["mse", "l1"] = "mse"
    lr_local: float = 1e-2
    lr_coefs: float = 1e-2
    lr_global: float = 1e-2
    lr_mlp: float = 1e-2
    lr_encoder: float = 0.0
    lr_decoder: float = 0.0
    lr_gamma_per_epoch: float = 1.0
    freeze_mlp_fraction: float | None = None
    optimizer: Literal["sparse", "dense"] = "sparse"
    checkpoint_every: int = 0
    log_every: int = 10
    eval_every: int = 0
    lambda_latent_anchor: float = 0.0
    dec_offset_merge: bool = False
    ae_crop: int = 0
    ae_views: int = 0
    dec_crop: int = 0


@dataclass
class ExploitConfig:
    """Exploiting 3Da-AE (Alg. 2, Sec. 3.5.2) on new scenes.

    Attributes:
        strategy: objective of the scene-fitting phase (Sec. 3.2): ``encode-scene`` (L_E on cached latents,
            Alg. 2 lines 1-11, the paper's choice), ``decode-scene`` (L_D through the frozen decoder) or
            ``encode-decode-scene`` (``(1 - t) L_D + t L_E``, Eq. 4).
        t: the Eq. 4 mixing weight for ``encode-decode-scene`` (0 < t < 1).
        no_prior: reset the global planes B to a fresh random init instead of loading the trained ones
            (the "Ours-No-Prior" ablation of Tab. 2).
        reinit_mlp: re-initialise the tiny MLP before exploiting (the authors' code does; Alg. 2 does not).
        finetune_decoder: run the decoder fine-tuning phase (Alg. 2 lines 13-23).
        fit: the scene-fitting stage; its ``lambda_enc`` / ``lambda_dec`` are the strategy's (:func:`strategy_weights`;
            ``training.pipeline.exploit_config`` writes them when it resolves a batch's config).
        finetune: the decoder fine-tuning stage (L_Dec, decoder trainable; defaults ``lambda_enc`` 0, ``lambda_dec`` 1).
        refit_margin_db: after the fit, a scene whose latent PSNR on its own train views lies more than this many
            dB below the batch's median is fitted again from a fresh draw, and the better fit is kept
            (``training/refit.py``; batches of >= 4 scenes, Encode-Scene or Encode-Decode-Scene fits). ``None``:
            off. Not in the paper: a fit that collapses to a grey blob otherwise stays (docs/fidelity.md).
        refit_init: where a refit starts: ``fresh`` (a new random draw) or ``mean`` (the mean planes and
            coefficients of the batch's other scenes: the average learned object).
        fit_min_steps: the fewest optimiser updates a fit given as a per-scene budget (``fit.epochs``) runs: a
            small batch whose budget would give fewer updates at ``fit.batch_size`` draws smaller mini-batches
            instead (the same view-updates per scene, batch size >= 1; :func:`fit_for_min_steps`). Why: a fit
            spends its first ~100-150 updates smoothing the random start (TV), whatever the number of scenes; with
            one new scene at batch 8 (50 updates) the planes stayed flat and held-out PSNR was 21.5 dB against 27.7
            with 400 updates of one view (docs/fidelity.md, eighteenth session). ``None``: off. Not in the paper.
        collapse_margin_db: with refits on, a scene whose train-view latent PSNR lies less than this many dB above
            its flat prediction (its mean latent everywhere; ``training/refit.py`` ``flat_latent_psnr``) is refitted
            too, whatever its batch's median: the median cannot see a batch that collapsed as a whole, nor a batch
            of fewer than 4 scenes. Collapsed fits measured 0.1-0.9 dB above it, healthy ones 4.3-6.1 dB
            (10 airliners) and 7.3-9.6 dB (10 TORCS cars) at 64 px (docs/fidelity.md, nineteenth session); a false
            alarm costs a refit's time, not quality (the better fit is kept). ``None``: off (the ``test`` preset,
            whose few steps leave every fit near its flat prediction). Not in the paper.

    What each stage is fixes some of its fields; :func:`stage_configs` refuses a config that contradicts them.
    """

    strategy: Literal["encode-scene", "decode-scene", "encode-decode-scene"] = "encode-scene"
    t: float = 0.5
    no_prior: bool = False
    reinit_mlp: bool = False
    finetune_decoder: bool = True
    fit: StageConfig = field(default_factory=StageConfig)
    finetune: StageConfig = field(default_factory=lambda: StageConfig(lambda_enc=0.0, lambda_dec=1.0))
    refit_margin_db: float | None = 2.0
    refit_init: Literal["fresh", "mean"] = "mean"
    fit_min_steps: int | None = 400
    collapse_margin_db: float | None = 2.0


def fit_for_min_steps(fit: StageConfig, n_views: int, min_steps: int | None) -> StageConfig:
    """The exploit fit's stage config with its mini-batch made small enough for ``min_steps`` updates.

    Args:
        fit: the fit stage's config. Only a per-scene budget (``fit.epochs`` set) is adapted; an explicit
            ``fit.steps`` runs as given.
        n_views: source views of the whole batch (all scenes).
        min_steps: :attr:`ExploitConfig.fit_min_steps` (``None``: ``fit`` unchanged).
    Returns:
        ``fit``, or a copy whose ``batch_size`` is ``max(1, floor(epochs * n_views / min_steps))`` when that is
        below ``fit.batch_size``: the same view-updates per scene in more, smaller updates (a batch of >= 8
        scenes at the ``tiny-cpu`` budget is unchanged). Raises nothing.

    Not in the paper (Alg. 2 fixes no update count); measured in docs/fidelity.md, eighteenth session.
    """
    if min_steps is None or fit.epochs is None:
        return fit
    updates = fit.epochs * n_views
    batch = max(1, int(updates // min_steps))
    return dataclasses.replace(fit, batch_size=batch) if batch < fit.batch_size else fit


@dataclass
class LoggingConfig:
    """Metrics always go to ``metrics.jsonl`` in the run folder; TensorBoard / wandb are optional extras.

    Attributes:
        tensorboard: also write TensorBoard scalars under ``RUN/tensorboard`` (needs ``tensorboard``).
        wandb_project: also log to this wandb project (``None`` = off; needs ``wandb``; no entity is
            hard-coded, unlike the authors' code).
        progress: show progress bars with ETA on stderr.
    """

    tensorboard: bool = False
    wandb_project: str | None = None
    progress: bool = True


@dataclass
class PipelineConfig:
    """Everything a 3Da-AE run needs; saved resolved as ``RUN/config.json``.

    Attributes:
        data: scene/view selection. ae: autoencoder (``AEConfig``). triplane: tri-plane sizes
        (``TriplaneConfig``). render: renderer settings (``RenderConfig``).
        warmup / joint: the two stages of Alg. 1. exploit: Alg. 2.
        (The cached Encode-Scene targets are always the posterior mean; the joint stage encodes with
        ``ae.use_mean``: mean by default, a posterior sample as in the authors' joint stage when false.)
        seed: every random draw (initialisation, batch order, stratified/importance samples) is a function
            of this seed, the stage and the step, which is what makes ``--resume`` exact.
        device: ``auto`` (cuda when present), ``cpu`` or ``cuda``.
        encode_batch_size: views per forward pass when caching latents.
        init: start a training run from a pre-trained 3Da-AE instead of the ``ae`` weights (``"shipped"``, a folder
            written by ``latentscenes export``, or a finished training run): its autoencoder, tri-plane MLP and
            global planes B are loaded before the latent cache is encoded; the train scenes' own planes and
            coefficients start fresh and learn in the warm-up. ``ae`` then only describes the architecture, which
            must be the init's (as must ``triplane``). ``None``: the paper's start (``ae`` weights, new MLP and B).
            For adapting a shipped 3Da-AE to another category's train scenes (not measured yet); as a way to
            lengthen its joint stage it gave no measurable gain on airliners (docs/fidelity.md, seventh session).
    """

    data: DataSelection = field(default_factory=DataSelection)
    ae: AEConfig = field(default_factory=AEConfig)
    triplane: TriplaneConfig = field(default_factory=TriplaneConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    warmup: StageConfig = field(default_factory=StageConfig)
    joint: StageConfig = field(default_factory=StageConfig)
    exploit: ExploitConfig = field(default_factory=ExploitConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    seed: int = 0
    device: str = "auto"
    encode_batch_size: int = 16
    init: str | None = None


def validate_pipeline(cfg: PipelineConfig) -> None:
    """Check the values a run would use before any work starts.

    Raises:
        ConfigError: a negative or non-finite step count, learning rate, lambda or init scale, a batch size
            below 1, an image size that is not a positive multiple of 8, or impossible renderer / tri-plane
            sizes, an ``ae.upscale`` other than 1, 2, 4, 8 (or a ``data.shift_grid`` / ``render.offset_ensemble``
            that does not divide its 8 / upscale pixels), an autoencoder architecture that cannot be built, or a
            device this machine does not have;
            the message gives the dotted key and the value.
    """

    def bad(key: str, value, why: str) -> None:
        raise ConfigError(f"{key}={value!r}: {why}")

    stages = {"warmup": cfg.warmup, "joint": cfg.joint, "exploit.fit": cfg.exploit.fit,
              "exploit.finetune": cfg.exploit.finetune}
    for name, st in stages.items():
        if st.steps < 0:
            bad(f"{name}.steps", st.steps, "must be >= 0")
        if st.epochs is not None and not (math.isfinite(st.epochs) and st.epochs >= 0):
            bad(f"{name}.epochs", st.epochs, "must be a finite number >= 0")
        if st.batch_size < 1:
            bad(f"{name}.batch_size", st.batch_size, "must be >= 1")
        for f in dataclasses.fields(st):
            if f.name.startswith(("lr_", "lambda_")):
                v = getattr(st, f.name)
                if not (math.isfinite(v) and v >= 0):
                    bad(f"{name}.{f.name}", v, "must be a finite number >= 0")
        if not (math.isfinite(st.lr_gamma_per_epoch) and 0 < st.lr_gamma_per_epoch <= 1):
            bad(f"{name}.lr_gamma_per_epoch", st.lr_gamma_per_epoch, "must lie in (0, 1]")
        if st.freeze_mlp_fraction is not None and not 0 <= st.freeze_mlp_fraction <= 1:
            bad(f"{name}.freeze_mlp_fraction", st.freeze_mlp_fraction, "must lie in [0, 1]")
        for k in ("checkpoint_every", "log_every", "eval_every", "ae_crop", "ae_views", "dec_crop"):
            if getattr(st, k) < 0:
                bad(f"{name}.{k}", getattr(st, k), "must be >= 0")
    n = cfg.exploit.fit_min_steps
    if n is not None and n < 1:
        bad("exploit.fit_min_steps", n, "must be >= 1 (or null: off)")
    m = cfg.exploit.refit_margin_db
    if m is not None and not (math.isfinite(m) and m > 0):
        bad("exploit.refit_margin_db", m, "must be a finite number > 0 (or null: no refits)")
    c = cfg.exploit.collapse_margin_db
    if c is not None and not (math.isfinite(c) and c > 0):
        bad("exploit.collapse_margin_db", c, "must be a finite number > 0 (or null: off)")
    r = cfg.data.resolution
    if r is not None and (r < 8 or r % 8):
        bad("data.resolution", r, "must be a positive multiple of 8 (the autoencoder downsamples by 8)")
    for k in ("n_train_scenes", "n_exploit_scenes", "max_views"):
        v = getattr(cfg.data, k)
        if v is not None and v < 1:
            bad(f"data.{k}", v, "must be >= 1 (or null for all)")
    try:
        ds = 8 // check_upscale(cfg.ae.upscale)
    except ValueError as e:
        bad("ae.upscale", cfg.ae.upscale, str(e))
    if cfg.data.shift_grid < 1 or ds % cfg.data.shift_grid:
        bad("data.shift_grid", cfg.data.shift_grid, f"must divide the latent pixel's {ds} image pixels (8 / ae.upscale)")
    rc = cfg.render
    if not (math.isfinite(rc.near) and math.isfinite(rc.far) and 0 <= rc.near < rc.far):
        bad("render.near/far", (rc.near, rc.far), "need 0 <= near < far")
    if rc.n_coarse < 2 or rc.n_importance < 0 or rc.box_size <= 0 or rc.chunk_samples < 1 or rc.decoder_hidden < 1:
        bad("render", rc, "n_coarse >= 2, n_importance >= 0, box_size > 0, chunk_samples >= 1, decoder_hidden >= 1")
    if rc.offset_ensemble < 1 or ds % rc.offset_ensemble:
        bad("render.offset_ensemble", rc.offset_ensemble, f"must divide the latent pixel's {ds} image pixels (8 / ae.upscale)")
    tp = cfg.triplane
    try:
        tp.validate()
    except ValueError as e:
        raise ConfigError(f"triplane: {e}") from None
    for k in ("local_init_std", "coef_init_std", "global_init_std"):
        v = getattr(tp, k)
        if not (math.isfinite(v) and v >= 0):
            bad(f"triplane.{k}", v, "must be a finite number >= 0")
    if cfg.encode_batch_size < 1:
        bad("encode_batch_size", cfg.encode_batch_size, "must be >= 1")
    try:
        cfg.ae.architecture()
    except ValueError as e:  # e.g. ae.block_out_channels of 2 entries: the network cannot be built
        raise ConfigError(f"ae: {e}") from None
    try:
        pick_device(cfg.device)
    except DeviceError as e:
        raise ConfigError(f"device: {e}") from None


# ============================================================================================ effective stages
#: The stages of a training run and of an exploit batch, as named in run folders and manifests.
TRAIN_STAGES = ("warmup", "joint")
EXPLOIT_STAGES = ("exploit_fit", "exploit_finetune")
#: Where each stage's settings live in a :class:`PipelineConfig` (dotted path, as ``--set`` spells it).
STAGE_SECTIONS = {"warmup": "warmup", "joint": "joint", "exploit_fit": "exploit.fit",
                  "exploit_finetune": "exploit.finetune"}


def strategy_weights(ex: ExploitConfig) -> tuple[float, float]:
    """``(lambda_enc, lambda_dec)`` of the scene-fitting stage for ``ex.strategy`` (paper Sec. 3.2):
    ``encode-scene`` L_E only (Eq. 2), ``decode-scene`` L_D only (Eq. 3), ``encode-decode-scene``
    ``t L_E + (1 - t) L_D`` (Eq. 4).

    Raises:
        ConfigError: an unknown strategy, or ``exploit.t`` outside (0, 1) for ``encode-decode-scene``.
    """
    if ex.strategy == "encode-scene":
        return 1.0, 0.0
    if ex.strategy == "decode-scene":
        return 0.0, 1.0
    if ex.strategy == "encode-decode-scene":
        if not 0.0 < ex.t < 1.0:
            raise ConfigError(f"exploit.t must lie in (0, 1) for encode-decode-scene, got {ex.t}")
        return ex.t, 1.0 - ex.t
    raise ConfigError(f"unknown exploit strategy {ex.strategy!r}")


def _fixed_fields(stage: str, cfg: PipelineConfig) -> dict[str, tuple[Any, str]]:
    """The fields a stage's definition fixes: ``{field: (required value, why)}``; a callable value is a test."""
    frozen_ae = "the autoencoder is frozen in this stage"
    no_anchor = "the encoder is frozen in this stage: the latent-scale anchor has nothing to hold"
    if stage == "warmup":  # Sec. 3.5.1, last paragraph: planes, W, B, MLP on cached latents, L_Enc only
        why = "the warm-up fits the scenes to the frozen autoencoder's cached latents (L_Enc only)"
        return {"lr_encoder": (0.0, why), "lr_decoder": (0.0, why), "lambda_ae": (0.0, why),
                "lambda_dec": (0.0, why), "lambda_latent_anchor": (0.0, no_anchor)}
    if stage == "exploit_fit":  # Alg. 2 lines 1-11 with the strategy's objective; encoder and decoder frozen
        le, ld = strategy_weights(cfg.exploit)
        by = f"set by exploit.strategy={cfg.exploit.strategy!r}" + (
            f" and exploit.t={cfg.exploit.t}" if cfg.exploit.strategy == "encode-decode-scene" else "")
        return {"lambda_enc": (le, by), "lambda_dec": (ld, by), "lambda_ae": (0.0, frozen_ae),
                "lr_encoder": (0.0, frozen_ae), "lr_decoder": (0.0, frozen_ae),
                "lambda_latent_anchor": (0.0, no_anchor)}
    if stage == "exploit_finetune":  # Alg. 2 lines 13-23: L_Dec, decoder trainable, encoder frozen
        return {"lambda_enc": (0.0, "the decoder fine-tuning trains with L_Dec (and optionally L_ae), not L_Enc"),
                "lr_encoder": (0.0, "the encoder stays the source run's in an exploit batch"),
                "lambda_dec": (lambda v: v > 0, "> 0: the decoder fine-tuning is L_Dec (set "
                               "exploit.finetune_decoder=false to skip the stage)"),
                "lambda_latent_anchor": (0.0, no_anchor)}
    return {}


def _stage_runs(stage: str, cfg: PipelineConfig) -> bool:
    if stage != "exploit_finetune":
        return True
    ft = cfg.exploit.finetune
    steps = ft.epochs > 0 if ft.epochs is not None else ft.steps > 0
    return cfg.exploit.finetune_decoder and steps


def stage_config(cfg: PipelineConfig, stage: str) -> StageConfig:
    """The :class:`StageConfig` section of ``stage`` (a name of :data:`STAGE_SECTIONS`) in ``cfg``."""
    obj: Any = cfg
    for part in STAGE_SECTIONS[stage].split("."):
        obj = getattr(obj, part)
    return obj


def stage_configs(cfg: PipelineConfig, stages: Sequence[str] = TRAIN_STAGES + EXPLOIT_STAGES) -> dict[str, StageConfig]:
    """The effective config of every stage of ``stages`` that runs: the one place that says what a stage runs with.

    Pure (reads ``cfg`` only). A stage's definition fixes some fields (the warm-up and the exploit fit train
    with a frozen autoencoder, the fit's L_E/L_D weights are the strategy's, the decoder fine-tuning is L_Dec
    with the encoder frozen); a config that contradicts them is refused, never silently overwritten, so the
    saved ``config.json`` is what runs. ``exploit_finetune`` is left out when it does not run
    (``exploit.finetune_decoder`` false, or no steps).

    Returns:
        ``{stage: StageConfig}`` in the order of ``stages``; runs record it in their manifest (``stage_configs``).
    Raises:
        ConfigError: every conflicting ``section.key=value`` with the value its stage needs and why; an
            unknown strategy or ``exploit.t`` outside (0, 1) for ``encode-decode-scene``.
    """
    out: dict[str, StageConfig] = {}
    bad: list[str] = []
    for stage in stages:
        if not _stage_runs(stage, cfg):
            continue
        sc = stage_config(cfg, stage)
        for key, (need, why) in _fixed_fields(stage, cfg).items():
            value = getattr(sc, key)
            ok = need(value) if callable(need) else value == need
            if not ok:
                need_s = why if callable(need) else f"{need!r}: {why}"
                bad.append(f"{STAGE_SECTIONS[stage]}.{key}={value!r} (must be {need_s})")
        out[stage] = sc
    if bad:
        raise ConfigError("conflicting stage settings: " + "; ".join(bad))
    return out


# ============================================================================================ presets
def _component_preset(cls: type, name: str):
    """The component's own preset of that name when its owner registered one, else its defaults."""
    if name in preset_names(cls):
        return get_preset(cls, name)
    return cls()


def _set(obj, **kw):
    """``dataclasses.replace`` for the presets below, which set fields of other areas' component configs.

    Raises:
        ConfigError: a key the component config does not have (renamed or removed by its owner), naming the
            valid keys: a preset must fail loudly rather than silently run with the component's default.
    """
    names = [f.name for f in dataclasses.fields(obj)]
    unknown = sorted(set(kw) - set(names))
    if unknown:
        raise ConfigError(f"preset sets unknown key(s) {unknown} of {type(obj).__name__}; "
                          f"valid keys: {', '.join(names)}")
    return dataclasses.replace(obj, **kw)


def _stages(
    *, warm_steps: int, joint_steps: int, fit_steps: int, ft_steps: int, b_fit: int, b_joint: int, ckpt: int, log: int
) -> dict:
    """The four stages with the authors' learning rates and lambdas (``train.yaml`` / ``exploit.yaml``; docs/training.md)."""
    warmup = StageConfig(
        steps=warm_steps, batch_size=b_fit, lambda_enc=1.0, lambda_tv=1e-4,
        lr_local=1e-2, lr_mlp=1e-2, lr_global=1e-2, lr_coefs=1e-2,
        freeze_mlp_fraction=0.9, checkpoint_every=ckpt, log_every=log,
    )
    joint = StageConfig(
        steps=joint_steps, batch_size=b_joint, lambda_ae=0.1, lambda_enc=1.0, lambda_dec=1.0, lambda_tv=1e-4,
        lr_local=1e-3, lr_mlp=1e-3, lr_global=1e-2, lr_coefs=1e-2, lr_encoder=1e-4, lr_decoder=1e-4,
        checkpoint_every=ckpt, log_every=log,
    )
    fit = StageConfig(
        steps=fit_steps, batch_size=b_fit, lambda_enc=1.0, lambda_dec=0.0,
        lr_local=1e-2, lr_mlp=1e-2, lr_global=1e-2, lr_coefs=1e-2, checkpoint_every=ckpt, log_every=log,
    )
    finetune = StageConfig(
        steps=ft_steps, batch_size=b_fit, lambda_enc=0.0, lambda_dec=1.0,
        lr_local=1e-3, lr_mlp=1e-3, lr_global=1e-2, lr_coefs=1e-2, lr_decoder=1e-4,
        checkpoint_every=ckpt, log_every=log,
    )
    return {"warmup": warmup, "joint": joint, "fit": fit, "finetune": finetune}


def preset_test() -> PipelineConfig:
    """Smallest sizes: 32x32 images -> 4x4 latents, T=16, F 4+4, M=4, 8+8 samples, a few steps per stage."""
    s = _stages(warm_steps=6, joint_steps=4, fit_steps=6, ft_steps=4, b_fit=4, b_joint=4, ckpt=0, log=1)
    return PipelineConfig(
        data=DataSelection(resolution=32),
        ae=_component_preset(AEConfig, "test"),
        triplane=_set(_component_preset(TriplaneConfig, "test"), resolution=16, f_mic=4, f_mac=4, n_global=4),
        render=_set(_component_preset(RenderConfig, "test"), n_coarse=8, n_importance=8,
                    offset_ensemble=TINY_CPU_OFFSET_ENSEMBLE),
        warmup=s["warmup"], joint=s["joint"],
        # collapse check off: 6 fit steps leave every fit within 2 dB of its flat prediction
        exploit=ExploitConfig(fit=s["fit"], finetune=s["finetune"], collapse_margin_db=None),
        logging=LoggingConfig(progress=False),
        encode_batch_size=8,
    )


#: ``joint.lambda_latent_anchor`` of the ``tiny-cpu`` preset (measured in docs/training.md, "Latent contraction").
TINY_CPU_LATENT_ANCHOR = 100.0
#: ``exploit.fit.lr_mlp`` / ``lr_global`` of ``tiny-cpu`` (the paper's 1e-2 learns empty exploit scenes there).
TINY_CPU_EXPLOIT_PRIOR_LR = 1e-3
#: ``triplane.local_init_std`` / ``coef_init_std`` of ``tiny-cpu`` (the authors' N(0, 1); docs/fidelity.md: with
#: N(0, 1) planes the exploit fit spends its budget smoothing the random initialisation -- the TV term is 30x
#: the latent loss after 400 steps -- and a 10x smaller initialisation gives +1.2 dB held-out at 400 view-updates
#: per scene; at 1,000 both reach the same PSNR: it converges faster, it does not raise the ceiling).
TINY_CPU_INIT_STD = 0.1
#: ``exploit.finetune.lambda_ae`` of ``tiny-cpu`` (Alg. 2 fine-tunes the decoder with L_Dec alone; docs/fidelity.md:
#: that costs the autoencoder 3.5 dB of its own reconstruction; L_ae on the cached latents keeps it, same gain).
TINY_CPU_FINETUNE_LAMBDA_AE = 1.0
#: ``joint.lambda_ae`` of ``tiny-cpu`` (the paper's 0.1 costs the autoencoder 2.8 dB of its reconstruction in 250
#: joint steps; 1.0 keeps it within 0.8 dB with the same gain in 3D consistency: docs/fidelity.md, probe).
TINY_CPU_JOINT_LAMBDA_AE = 1.0
#: ``exploit.fit.epochs`` / ``exploit.finetune.epochs`` of ``tiny-cpu``: 400 and 48 view-updates per scene of 24 views.
TINY_CPU_FIT_EPOCHS = 400 / 24
TINY_CPU_FINETUNE_EPOCHS = 2.0
#: ``exploit.fit.lambda_tv`` of ``tiny-cpu`` (the authors' exploit stages use 0; measured in docs/training.md,
#: "Over-fitting of exploit scenes": 24 views of 8x8 latents under-determine a scene's 30 k plane features).
TINY_CPU_EXPLOIT_TV = 4e-4
#: ``data.shift_grid`` of the ``tiny-cpu`` preset: 8x8 latents give 64 targets per view, and a batch of new scenes
#: over-fits them (train views 28.5 dB, held-out 22.3); views at 2 x 2 offsets give 4x the targets at the same
#: per-scene budget (docs/fidelity.md; 4 x 4 adds nothing more for 4x the encodes).
TINY_CPU_SHIFT_GRID = 2
#: ``render.offset_ensemble`` of ``tiny-cpu`` (and ``test``): a latent scene fitted on views at 2 x 2 offsets is
#: also decoded at them, each render decoded, moved back and averaged: +0.6-0.7 dB held-out on new airliners and
#: cars for 4x the render and decode work (docs/fidelity.md, sixth session; 4 x 4 adds nothing).
TINY_CPU_OFFSET_ENSEMBLE = 2
#: ``exploit.finetune.dec_offset_merge`` of ``tiny-cpu``: the decoder fine-tune's L_Dec on the image evaluation
#: decodes (the 2 x 2 offset renders decoded, moved back and averaged) instead of one render per batch row:
#: +0.44 dB held-out on new airliners (docs/fidelity.md, seventh session) for ~3.6x the fine-tune step.
TINY_CPU_FINETUNE_OFFSET_MERGE = True


def preset_tiny_cpu() -> PipelineConfig:
    """Sizes for a 2-core CPU: 64x64 -> 8x8x4, T=32, F 10+22, M=10, 24+24, batch 8; ~6 min on 2 cores.

    Train: 20 scenes, 1 500 warm-up + 200 joint steps; exploit: 400 Encode-Scene + 48 fine-tune view-updates per
    scene of 24 views (``epochs`` 16.7 and 2: 1 000 + 120 steps for 20 scenes, 2 500 + 300 for 50).
    Departures from the authors' settings (``paper`` keeps them): ``joint.lambda_latent_anchor = 100``,
    ``exploit.fit.lr_mlp = lr_global = 1e-3`` and ``exploit.fit.lambda_tv = 4e-4`` (4x the train stages'
    value; docs/training.md, "Observed behaviour"); ``triplane.local_init_std = coef_init_std = 0.1`` and
    ``exploit.finetune.lambda_ae = 1``, ``joint.lambda_ae = 1`` (docs/fidelity.md); ``data.shift_grid = 2`` (every
    view also at 2 x 2 sub-latent-pixel offsets, in training and exploit: +1.1 dB held-out on new scenes, and a
    joint stage trained on them +0.55 dB more; docs/fidelity.md, "The exploit over-fits its 24 views");
    ``render.offset_ensemble = 2`` (renders decoded at the same offsets and averaged, docs/fidelity.md) and
    ``exploit.finetune.dec_offset_merge`` (the decoder fine-tuned on that average).
    """
    s = _stages(warm_steps=1500, joint_steps=200, fit_steps=2500, ft_steps=300, b_fit=8, b_joint=8, ckpt=250, log=25)
    # Not the paper's settings; measured in docs/training.md ("Latent contraction", "Empty exploit scenes"):
    # the latent-scale anchor guards Eq. 5 against shrinking the latents, and the shared prior (MLP, B) adapts
    # at the joint stage's learning rate while fresh scenes are fitted, so it cannot wipe their density.
    s["joint"].lambda_latent_anchor = TINY_CPU_LATENT_ANCHOR
    s["fit"].lr_mlp = TINY_CPU_EXPLOIT_PRIOR_LR
    s["fit"].lr_global = TINY_CPU_EXPLOIT_PRIOR_LR
    # Few views of coarse latents: without a smoothness prior the new scenes fit their training views and
    # generalise poorly (demo exploit scenes: held-out latent PSNR +2.7 dB, RGB +1.6 dB with it, docs/training.md).
    s["fit"].lambda_tv = TINY_CPU_EXPLOIT_TV
    s["finetune"].lambda_ae = TINY_CPU_FINETUNE_LAMBDA_AE
    # Per-scene budgets (epochs over the batch's views), not fixed step counts: 400 Encode-Scene and 48 fine-tune
    # view-updates per scene of 24 views whatever the number of scenes. Fitting longer over-fits (docs/fidelity.md:
    # 1,000 view-updates per scene score 0.3 dB below 400) and a longer fine-tune adds nothing.
    s["fit"].epochs = TINY_CPU_FIT_EPOCHS
    s["finetune"].epochs = TINY_CPU_FINETUNE_EPOCHS
    s["joint"].lambda_ae = TINY_CPU_JOINT_LAMBDA_AE
    s["finetune"].dec_offset_merge = TINY_CPU_FINETUNE_OFFSET_MERGE
    return PipelineConfig(
        data=DataSelection(resolution=64, n_train_scenes=20, n_exploit_scenes=50, shift_grid=TINY_CPU_SHIFT_GRID),
        ae=_component_preset(AEConfig, "tiny-cpu"),
        triplane=_set(_component_preset(TriplaneConfig, "tiny-cpu"), resolution=32, f_mic=10, f_mac=22, n_global=10,
                      local_init_std=TINY_CPU_INIT_STD, coef_init_std=TINY_CPU_INIT_STD),
        render=_set(_component_preset(RenderConfig, "tiny-cpu"), n_coarse=24, n_importance=24,
                    offset_ensemble=TINY_CPU_OFFSET_ENSEMBLE),
        warmup=s["warmup"], joint=s["joint"],
        exploit=ExploitConfig(fit=s["fit"], finetune=s["finetune"]),
        encode_batch_size=16,
    )


def preset_paper() -> PipelineConfig:
    """The paper's sizes (Sec. 4) and the authors' stage settings (``train.yaml`` / ``exploit.yaml``): 50 epochs per
    stage, batch 32 (latent fitting) and 16 (joint, to fit a GPU's memory with the SD-1.5 autoencoder), T=64, F 10+22, M=50, 48+48
    samples, lr planes 1e-2 -> 1e-3, global/coefs 1e-2, AE 1e-4, lambda_ae 0.1, lambda_tv 1e-4 (train stages;
    0 in exploit), exploit learning-rate decay 0.94157 per epoch. The autoencoder is SD-1.5's, from a path.
    """
    s = _stages(warm_steps=0, joint_steps=0, fit_steps=0, ft_steps=0, b_fit=32, b_joint=16, ckpt=2000, log=50)
    for k in ("warmup", "joint", "fit", "finetune"):
        s[k].epochs = 50.0
    for k in ("fit", "finetune"):
        s[k].lr_gamma_per_epoch = 0.94157
    return PipelineConfig(
        data=DataSelection(resolution=128),
        ae=_component_preset(AEConfig, "paper"),
        triplane=_set(_component_preset(TriplaneConfig, "paper"), resolution=64, f_mic=10, f_mac=22, n_global=50),
        render=_set(_component_preset(RenderConfig, "paper"), n_coarse=48, n_importance=48),
        warmup=s["warmup"], joint=s["joint"],
        exploit=ExploitConfig(fit=s["fit"], finetune=s["finetune"]),
        encode_batch_size=64,
    )


register_presets(PipelineConfig, {"test": preset_test, "tiny-cpu": preset_tiny_cpu, "paper": preset_paper})
