"""Benchmark configuration and its presets (``test``, ``cpu``, ``cpu-128``, ``cpu-own``, ``paper``).

The benchmark does not define model sizes of its own: it takes the pipeline's preset
(:class:`latentscenes.training.config.PipelineConfig`) -- or, with ``pretrained``, the pre-trained 3Da-AE
package's saved config -- and the RGB baseline's preset
(:class:`latentscenes.baselines.rgb.fit.RGBFitConfig`) by name, applies dotted overrides, and fixes only
what a fair comparison needs: which scenes and views, how many updates each scene gets (per scene, so that
t_scene does not depend on N_exploit), what is evaluated and how often, and which ablations run.

Sizing of the ``cpu`` preset (2-core CPU, about 1 h; per-step costs measured on the 2-core CPU for the tiny sizes,
docs/benchmark.md: 64x64 images, 8x8x4 latents, T=32, F 10+22, M=10, 24+24 samples). It measures the **shipped
pre-trained 3Da-AE** (``pretrained="shipped"``, what ``latentscenes exploit --run shipped`` uses), on the data it
was trained on (``data/fg128``: 24 train + 8 held-out views per scene rendered at 128 px, loaded at 64 px):
  * Ours is not trained: Eq. 9's t_EC is the package's measured entry cost (its manifest: 3,000 warm-up + 800
    joint steps on its 40 train scenes, 59.3 min at 1 thread when it was made);
  * every scene keeps its first 24 train views (all of them in ``data/fg128``) and its 8 held-out views;
  * exploit with the package's recipe (views at 2 x 2 sub-latent-pixel offsets, ``data.shift_grid`` 2: 4x the
    encodes): 400 view-updates per scene (batch 8) + 48 fine-tune view-updates per scene; 20 exploit scenes
    (the whole exploit split of ``data/fg128``) + 4 re-learned train scenes of the package, for Ours, Ours-No-Prior
    and the plain-AE ablation (~8-9 min each: the demo measured 427 s for 20 scenes with the package);
  * the plain-AE ablation repeats the package's warm-up (3,000 steps on its 40 train scenes, one view per latent
    grid, base autoencoder, no joint stage): ~4-11 min (665 s at 1 thread on a shared machine when the package
    was made; the cpu-own run did 1,500 warm-up steps in 110 s at 2 threads);
  * Ours-Micro / Ours-Macro are not run (a fair comparison needs two more packages; ``cpu-own`` runs them);
  * Tri-Planes (RGB) and Tri-Planes-Macro (RGB) at the baseline's ``tiny-cpu`` settings (random batches of
    1 024 rays) but 800 steps per scene instead of 400, so that the baseline is near its plateau (Fig. 6 shows
    it), on 4 exploit + 2 train scenes (~10-11 min each: 594 s and 688 s measured in the 2026-12-01 run);
  * fidelity diagnosis (AE ceilings, consistency probe of 8 scenes with 600 view-updates each, twice) ~5 min;
    evaluation, render timing and data loading: ~3 min. Measured: 48.7 min in all (2026-12-03, docs/benchmark.md).

Sizing of the ``cpu-128`` preset (2-core CPU, the paper's geometry: 128x128 images, a 16x16x16 autoencoder latent;
per-scene costs measured at one thread, docs/fidelity.md). It measures the **shipped 128 px pre-trained 3Da-AE**
(``pretrained="shipped-128"``, ``latentscenes exploit --run shipped-128``; new scenes at T = 64, B resampled from the
T = 32 it was trained at, on 32x32 latents: ``ae.upscale`` 2 since the thirty-fourth session), on the same
``data/fg128`` loaded at 128 px:
  * ours: 10 exploit scenes spread over the split + 2 re-learned train scenes, 400 + 96 view-updates per scene with
    the package's recipe then (400 + 144 in the forty-second session, 200 + 192 since the forty-third): ~335 s per scene at one thread with bf16
    autocast on a CPU with AVX512-bf16 (99 s Encode-Scene, 216 s decoder fine-tune with 256 px decodes; thirty-third
    session; ~217 s with the 8x grid's recipe before), ~67 min;
  * the plain-AE ablation: the package's warm-up at 128 px (3,000 steps, T = 32 as it ran; ~0.35-0.53 s a step)
    and the same exploit at T = 64: ~60 min;
  * Tri-Planes (RGB), its ``tiny-cpu`` planes (T = 64), 1,600 steps of 1,024 rays per scene (the 128 px figures of
    docs/fidelity.md; ~230 s per scene at one thread) on all 10 exploit + 1 train scenes: ~42 min (6 exploit
    scenes until the twenty-eighth session: the first 6, all airliners);
  * not run (their 64 px figures are the ``cpu`` preset's): Ours-No-Prior, Tri-Planes-Macro (RGB), Ours-Micro /
    Ours-Macro; the diagnosis probes 4 scenes.
  RGB on all 10 exploit scenes adds ~15 min to the times measured before the twenty-eighth session:
  114.5 min measured at one thread with 48 fine-tune view-updates (docs/benchmark.md, twenty-second session), 149.4 min
  with 96 (twenty-third session); with the finer grid over 3 h at one thread, about half in two parts, one per core
  (``bench --only``, thirty-third session). Since the fortieth session the package is the one trained from
  ``--ae shipped-general``: on an Intel Xeon with AVX512-bf16 ~238 s per new scene at one thread, the benchmark in two
  parts of ~87 and ~60 min, then ~27 min of diagnosis and tables (thirty-ninth session, docs/benchmark.md); since
  the forty-first its exploit fine-tune runs on L_Dec alone (the package's ``exploit.finetune.lambda_ae`` 0): ~174 s
  per new scene, the parts ~74 and ~48 min, then ~25 min; since the forty-second for 6 epochs
  (``exploit.finetune.epochs``): ~203 s per new scene, the parts ~83 and ~58 min, then ~22 min; since the forty-third
  for 8 after half the Encode-Scene budget: ~199 s, the parts ~82 and ~57 min, then ~22 min (docs/benchmark.md).

Sizing of the ``cpu-own`` preset (the ``cpu`` preset before it measured the shipped package; < 60 min):
  * data: the demo's FlightGear subset (``data/flightgear-demo-64``: 24 train + 4 held-out views, 64 px);
  * 3Da-AE entry cost: the ``tiny-cpu`` pipeline's 1 500 warm-up + 200 joint updates on 16 train scenes
    (~4.5 min with the shipped autoencoder), for Ours, Ours-Micro and Ours-Macro (each trains its own), the
    warm-up only for the plain-AE ablation (~15 min in all);
  * exploit: 400 view-updates per scene (batch 8) + 48 fine-tune view-updates per scene (the ``tiny-cpu``
    ratio 2 500 / 300 steps for 50 scenes); 20 exploit scenes + 4 re-learned train scenes per latent method
    (~2.3 min per method, 5 methods: ~11 min);
  * Tri-Planes (RGB) and Tri-Planes-Macro (RGB) as in ``cpu`` (~9 min each);
  * evaluation, render timing and data loading: ~3 min. Total about 47 min on an otherwise idle machine
    (estimated from the prototype's per-step costs; the results record the measured phases).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from latentscenes.config import register_presets
from latentscenes.methods import METHODS

#: The benchmark's methods: every registered one (:mod:`latentscenes.methods`), in catalogue order.
ALL_METHODS = tuple(METHODS)


@dataclass
class BenchConfig:
    """What one ``latentscenes bench`` run measures.

    Attributes:
        name: preset name recorded in the results.
        pipeline_preset / pipeline_overrides: the 3Da-AE ``PipelineConfig`` preset and ``a.b=value``
            overrides (applied before the benchmark's own scene/step settings). With ``pretrained`` the
            package's saved config replaces the preset (the overrides still apply, see ``pretrained``).
        rgb_preset / rgb_overrides: the RGB baseline's ``RGBFitConfig`` preset and overrides.
        resolution: image size (px) the data are resized to (None = the pipeline preset's).
        n_train_scenes: scenes of the dataset's ``train`` split used to train the 3Da-AE (N_train); with
            ``pretrained``, the package's own training scenes instead.
        n_exploit_scenes: never-seen scenes of the ``exploit`` split learned in the exploit phase (N_exploit
            of Table 1).
        n_train_relearn: train scenes learned again from scratch in an exploit phase (Table 2, "train
            scenes" column; the paper applies the exploit phase to scenes of the training set).
        n_rgb_exploit / n_rgb_train: scenes the RGB baselines fit (exploit scenes evenly spread over ours',
            the first re-learned train scenes; ``experiments.bench.rgb_scene_ids``); the paper also fits
            Tri-Planes (RGB) on a subset "for compute constraints".
        max_train_views: keep the first N train views of every scene, for every method (None = all).
        fit_view_updates_per_scene / finetune_view_updates_per_scene: exploit-phase budget per scene, in
            views (the stage steps are ``ceil(updates * n_scenes / batch_size)``), so t_scene is independent
            of how many scenes are learned. None = the exploit recipe's own (a package's config, else the
            pipeline preset's): its stage's ``epochs`` x ``max_train_views``, resolved when the benchmark starts
            and saved so in its ``config.json`` (:func:`latentscenes.experiments.bench.resolve_exploit_budget`).
        methods: which Table 2 rows to produce (subset of :data:`ALL_METHODS`; ``ours`` and ``rgb`` are
            always run: Table 1 needs them).
        render_resolution: square output size (px) of the render-time measurement (paper: 128).
        render_repeats / render_views: timed repetitions per view and number of held-out views timed.
        curve_points: evaluations along each method's training for the time-to-quality plot (Fig. 6).
        curve_scenes / curve_views: scenes and held-out views per scene used by those evaluations (their
            time is excluded from the measured training time).
        eval_max_views: held-out views per scene for Table 2 (None = all).
        n_ref: N_exploit to extrapolate Eq. 9 / Eq. 11 to (paper: 1000).
        fig7_n: N_exploit values of Fig. 7.
        device: ``auto`` | ``cpu`` | ``cuda``.
        seed: seed of every method.
        keep_runs: keep the per-method run folders (checkpoints) under ``OUT/runs``; needed for byte
            accounting (the bytes are read back from the saved files), deleted at the end when False.
        probe_scenes / probe_view_updates: the fidelity diagnosis (docs/fidelity.md): the latent consistency
            probe (``evaluation.probe``) of the base autoencoder (= the plain-AE ablation's) and of Ours' trained
            3Da-AE on the first ``probe_scenes`` exploit scenes, ``probe_view_updates`` view-updates per scene
            (0 scenes = off); the autoencoder ceilings D(E(x)) before and after every stage are always measured.
        build_views / build_test_views: train / held-out views per scene when ``bench`` runs without
            ``--data`` and builds (or reuses) the built-in FlightGear subset itself.
        build_dir: that folder (None = ``data/flightgear-demo-<resolution>``, the one ``latentscenes demo``
            builds, so that the two share one build). build_resolution: the size (px) it is rendered at (None =
            the benchmark's image size; the images are resized to it when loaded). The ``cpu`` preset uses the
            shipped package's own data, ``data/fg128`` at 128 px (scripts/ship_3daae.sh builds the same folder).
        pretrained: measure this pre-trained 3Da-AE as "Ours" instead of training one (``"shipped"`` = the one in
            the package, or a folder written by ``latentscenes export``); None = train it here. With a package,
            Ours is not trained: its exploit config is the package's saved config (data settings such as
            ``data.shift_grid`` included; ``pipeline_overrides`` apply on top, except ``ae.*``, ``warmup.*``,
            ``joint.*``) with this benchmark's per-scene exploit budget; Eq. 9 / Eq. 11 use its manifest's
            measured entry cost and its files' bytes; the train scenes are the package's ``train_scene_ids``
            (``n_train_scenes`` is not used) and the exploit scenes must be disjoint from them; the plain-AE
            ablation repeats the package's warm-up on them (docs/benchmark.md); Ours-Micro / Ours-Macro are not
            run. ``resolution`` must be None or the package's image size.
    """

    name: str = "cpu"
    pipeline_preset: str = "tiny-cpu"
    pipeline_overrides: list[str] = field(default_factory=list)
    rgb_preset: str = "tiny-cpu"
    rgb_overrides: list[str] = field(default_factory=list)
    resolution: int | None = None
    n_train_scenes: int = 16
    n_exploit_scenes: int = 24
    n_train_relearn: int = 6
    n_rgb_exploit: int = 6
    n_rgb_train: int = 2
    max_train_views: int | None = 24
    fit_view_updates_per_scene: int | None = 400
    finetune_view_updates_per_scene: int | None = 48
    methods: list[str] = field(default_factory=lambda: list(ALL_METHODS))
    render_resolution: int = 128
    render_repeats: int = 3
    render_views: int = 4
    curve_points: int = 8
    curve_scenes: int = 6
    curve_views: int = 2
    eval_max_views: int | None = None
    n_ref: int = 1000
    fig7_n: list[int] = field(default_factory=lambda: [1, 3, 10, 30, 100, 300, 1000, 3000, 10000])
    device: str = "auto"
    seed: int = 0
    keep_runs: bool = True
    probe_scenes: int = 8
    probe_view_updates: int = 600
    build_views: int = 24
    build_test_views: int = 4
    build_dir: str | None = None
    build_resolution: int | None = None
    pretrained: str | None = None


def preset_test() -> BenchConfig:
    """Seconds on a CPU: the pipeline's and the baseline's ``test`` sizes, 3 + 2 + 1 scenes."""
    return BenchConfig(
        name="test",
        pipeline_preset="test",
        rgb_preset="test",
        n_train_scenes=3,
        n_exploit_scenes=2,
        n_train_relearn=1,
        n_rgb_exploit=1,
        n_rgb_train=1,
        max_train_views=None,
        fit_view_updates_per_scene=8,
        finetune_view_updates_per_scene=4,
        render_resolution=32,
        render_repeats=1,
        render_views=1,
        curve_points=2,
        curve_scenes=1,
        curve_views=1,
        eval_max_views=1,
        fig7_n=[1, 10, 100, 1000],
        device="cpu",
        probe_scenes=2,
        probe_view_updates=8,
        build_views=4,
        build_test_views=2,
    )


def preset_cpu_own() -> BenchConfig:
    """2-core CPU, < 60 minutes, every 3Da-AE trained in the benchmark (see the module docstring)."""
    return BenchConfig(
        name="cpu-own",
        device="cpu",
        n_exploit_scenes=20,
        n_train_relearn=4,
        n_rgb_exploit=4,
        n_rgb_train=2,
        rgb_overrides=["steps=800"],
        curve_scenes=4,
    )


def preset_cpu() -> BenchConfig:
    """2-core CPU, about 1 h: the shipped pre-trained 3Da-AE against Tri-Planes (RGB) on the data it was trained on
    (``data/fg128``; see the module docstring for the sizing)."""
    return dataclasses.replace(
        preset_cpu_own(),
        name="cpu",
        pretrained="shipped",
        # The shipped package's data (scripts/ship_3daae.sh step 1): the plain-AE ablation repeats its warm-up on
        # the same images, and its train scenes must be in the dataset. Its exploit split (20 scenes, held-out
        # airframe meshes) never overlaps the train split.
        build_dir="data/fg128",
        build_resolution=128,
        build_views=24,
        build_test_views=8,
        # the package's exploit recipe, whatever its config says (2 fine-tune epochs: 400 + 48 view-updates)
        fit_view_updates_per_scene=None,
        finetune_view_updates_per_scene=None,
    )


def preset_cpu_128() -> BenchConfig:
    """2-core CPU: the shipped 128 px pre-trained 3Da-AE (``shipped-128``) against Tri-Planes (RGB) at 128 px on the
    data it was trained on (see the module docstring for the sizing)."""
    return dataclasses.replace(
        preset_cpu(),
        name="cpu-128",
        pretrained="shipped-128",
        n_exploit_scenes=10,
        n_train_relearn=2,
        # all 10: on the first 6 alone (the airliners) ours looked 0.5 dB closer to RGB than on all 10
        n_rgb_exploit=10,
        n_rgb_train=1,
        # 128 px views hold 4x the pixels of 64 px ones: twice the steps of 1,024 rays (docs/fidelity.md's 128 px rows)
        rgb_overrides=["steps=1600"],
        methods=["ours", "plain-ae", "rgb"],
        curve_scenes=3,
        probe_scenes=4,
    )


def preset_paper() -> BenchConfig:
    """Paper sizes for a GPU: N_train 500, N_exploit 100 (Table 2 uses 100; Table 1 extrapolates to 1000
    with Eq. 9/11), Tri-Planes (RGB) on 50 scenes (as the paper), 128x128, 50 epochs-equivalent updates."""
    return BenchConfig(
        name="paper",
        pipeline_preset="paper",
        rgb_preset="paper",
        resolution=128,
        n_train_scenes=500,
        n_exploit_scenes=100,
        n_train_relearn=50,
        n_rgb_exploit=50,
        n_rgb_train=25,
        max_train_views=None,
        # 50 epochs of ~180 train views per scene = 9 000 view-updates per scene and stage
        fit_view_updates_per_scene=9000,
        finetune_view_updates_per_scene=9000,
        render_resolution=128,
        render_repeats=10,
        render_views=10,
        curve_points=20,
        curve_scenes=20,
        curve_views=5,
        device="auto",
        build_views=50,
        build_test_views=10,
    )


# ``tiny-cpu`` is accepted as another name of ``cpu`` (the pipeline's preset of the same sizes); ``cpu-own`` trains its own
# 3Da-AEs at those sizes.
register_presets(BenchConfig, {"test": preset_test, "cpu": preset_cpu, "tiny-cpu": preset_cpu, "cpu-128": preset_cpu_128,
                               "cpu-own": preset_cpu_own, "paper": preset_paper})
