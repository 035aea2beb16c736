"""The pre-trained 3Da-AE a benchmark measures instead of training its own (``BenchConfig.pretrained``).

A package (``latentscenes export``; ``"shipped"`` is the one in the installation,
``latentscenes/pretrained/3daae-airliners-64``) holds the 3Da-AE's shared weights, the source run's resolved
config and a manifest that records what making it cost and how (``training.pipeline`` module docstring). What a
benchmark takes from it:

* Eq. 9's entry cost t_EC = t_warmup + t_train, as **measured by the run that made the package** (manifest
  ``stages.warmup.train_s``, ``stages.joint.train_s`` and the latent encoding), with where each figure came from
  (:func:`package_entry_cost`). The benchmark does not re-measure it: that is what a user of the package pays.
* the warm-up recipe -- stage settings, views at sub-latent-pixel offsets, training scenes -- that the plain-AE
  ablation repeats with the base autoencoder and no joint stage (:func:`warmup_recipe`), so that the ablation is
  a control of the same recipe.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from latentscenes.config import ConfigError, from_dict
from latentscenes.training import run_format as rf
from latentscenes.training.config import StageConfig
from latentscenes.training.pipeline import RunError, load_run_config, resolve_run
from latentscenes.utils.io import file_sha256


@dataclasses.dataclass(frozen=True)
class BenchPackage:
    """A pre-trained 3Da-AE folder read once for a benchmark.

    Attributes:
        spec: as given (``"shipped"`` or a path). path: the resolved folder.
        manifest: ``manifest.json`` as a dict. config: the saved :class:`PipelineConfig` (``config.json``).
        manifest_sha256 / shared_sha256: sha256 (hex) of ``manifest.json`` and of ``model/shared.safetensors`` as
            read now (the latter equals the manifest's ``model.sha256_shared``, checked by :func:`load_package`).
    """

    spec: str
    path: Path
    manifest: dict
    config: Any
    manifest_sha256: str
    shared_sha256: str

    @property
    def train_scene_ids(self) -> list[str]:
        """The scenes the package's 3Da-AE was trained on (manifest ``train_scene_ids``), in its order."""
        return rf.train_scene_ids(self.manifest)

    @property
    def image_size(self) -> int:
        """Side (px) of the square images the package was trained on: manifest ``image_size``, else the saved
        config's ``data.resolution``."""
        size = rf.image_size(self.manifest)
        if size:
            return int(size[0])
        return int(self.config.data.resolution)



def load_package(spec: str | Path) -> BenchPackage:
    """Read and check a pre-trained 3Da-AE for the benchmark.

    Args:
        spec: ``"shipped"`` or a folder written by ``latentscenes export``.
    Raises:
        ConfigError: ``shipped`` is missing from the installation; not an exported package (no manifest, another
            kind of folder); no ``train_scene_ids``; images that are not square; weights missing, or their sha256
            differs from the one the manifest recorded (its entry cost would not be these weights').
    """
    try:
        path = resolve_run(str(spec))
    except RunError as e:  # the benchmark reports a bad ``pretrained`` as the configuration error it is
        raise ConfigError(f"pretrained={str(spec)!r}: {e}") from None
    mp = rf.manifest_path(path)
    if not mp.is_file():
        raise ConfigError(f"pretrained={str(spec)!r}: {mp} not found (give 'shipped' or a folder written by "
                          "`latentscenes export --run RUN --out PKG`)")
    m = rf.read_manifest(path)
    if not rf.is_pretrained(m):
        raise ConfigError(f"pretrained={str(spec)!r}: {mp} is not a pre-trained 3Da-AE (format "
                          f"{rf.manifest_format(m)!r}, kind {rf.manifest_kind(m)!r}); export a training run first: "
                          "`latentscenes export --run RUN --out PKG`")
    if not rf.train_scene_ids(m):
        raise ConfigError(f"pretrained={str(spec)!r}: {mp} lists no train_scene_ids; the benchmark needs them "
                          "(re-learned train scenes, the plain-AE ablation's warm-up, disjoint exploit scenes)")
    size = rf.image_size(m)
    if size and int(size[0]) != int(size[-1]):
        raise ConfigError(f"pretrained={str(spec)!r}: {mp} image_size {size} is not square; the benchmark uses square images")
    shared = rf.shared_path(path)
    if not shared.is_file():
        raise ConfigError(f"pretrained={str(spec)!r}: {shared} is missing")
    sha = file_sha256(shared)
    want = rf.recorded_shared_sha256(m)
    if want and sha != want:
        raise ConfigError(f"pretrained={str(spec)!r}: {shared} has sha256 {sha[:12]}..., its manifest records "
                       f"{want[:12]}...: the weights changed since the package was made (its entry cost is not theirs)")
    try:
        config = load_run_config(path)
    except RunError as e:
        raise ConfigError(f"pretrained={str(spec)!r}: {e}") from None
    return BenchPackage(spec=str(spec), path=path, manifest=m, config=config, manifest_sha256=file_sha256(mp),
                        shared_sha256=sha)


def package_entry_cost(pkg: BenchPackage) -> dict[str, Any]:
    """Eq. 9's entry cost as the package's manifest records it (seconds, measured when the package was made).

    ``t_warmup_s`` = the latent encoding (``latent_cache_s``) + the warm-up stage's ``train_s``, ``t_train_s`` =
    the joint stage's ``train_s``: the same split as a benchmark that trains its own 3Da-AE. The encoding time is
    the manifest's ``latent_cache_s`` when recorded (packages exported since it is), else ``entry_cost_s`` minus
    the stages' ``train_s`` (``export`` defines ``entry_cost_s`` as exactly that sum). A package exported from a
    stage checkpoint (``export --stage``) records only its total: all of it is then put under ``t_warmup_s``.

    Returns:
        ``{"t_warmup_s", "t_train_s", "t_ec_s", "latent_cache_s", "stage_train_s": {stage: s}, "entry_cost_s"
        (the manifest's total or None), "sum_matches_entry_cost", "from": {figure: where it came from},
        "measured_on", "note"}``.
    Raises:
        ConfigError: the manifest records neither per-stage times nor ``entry_cost_s``, or an inconsistent sum.
    """
    m = pkg.manifest
    stages = {k: v for k, v in rf.stage_results(m).items() if isinstance(v, dict) and "train_s" in v}
    total = rf.entry_cost_s(m)
    src: dict[str, str] = {}
    stage_s = {k: float(v["train_s"]) for k, v in stages.items()}
    if stage_s:
        if rf.latent_cache_s(m) is not None:
            cache = rf.latent_cache_s(m)
            src["latent_cache_s"] = "manifest latent_cache_s"
        elif total is not None:
            cache = total - sum(stage_s.values())
            src["latent_cache_s"] = ("manifest entry_cost_s minus the stages' train_s (export records entry_cost_s "
                                     "= stages' train_s + the run's latent encoding)")
            if cache < -1e-6 * max(1.0, total):
                raise ConfigError(f"{rf.manifest_path(pkg.path)}: entry_cost_s {total:.1f} s is below the stages' "
                                  f"train_s {sum(stage_s.values()):.1f} s")
            cache = max(cache, 0.0)
        else:
            cache = 0.0
            src["latent_cache_s"] = "not recorded (0)"
        t_warm = cache + stage_s.get("warmup", 0.0)
        t_joint = sum(v for k, v in stage_s.items() if k != "warmup")
        src["t_warmup_s"] = "latent_cache_s + manifest stages.warmup.train_s"
        src["t_train_s"] = " + ".join(f"manifest stages.{k}.train_s" for k in stage_s if k != "warmup") or "none (0)"
    elif total is not None:
        cache, t_warm, t_joint = None, total, 0.0
        src["t_warmup_s"] = "manifest entry_cost_s (the package records no per-stage times: exported from a stage checkpoint)"
        src["t_train_s"] = "not recorded separately (0; included in t_warmup_s)"
    else:
        raise ConfigError(f"{rf.manifest_path(pkg.path)}: records neither stages.*.train_s nor entry_cost_s; "
                          "its entry cost is unknown")
    t_ec = t_warm + t_joint
    matches = None if total is None else math.isclose(t_ec, total, rel_tol=1e-9, abs_tol=1e-6)
    on = {k: v for k, v in rf.measured_on(m).items() if v is not None}
    where = ", ".join(f"{k} {v}" for k, v in on.items()) or "machine and threads not recorded in the manifest"
    card = pkg.path / "MODEL_CARD.md"
    note = (f"measured when the package was made (source run {rf.export_source(m).get('run')!r}; {where}"
            + (f"; see {card}" if card.is_file() else "") + "), not re-measured by this benchmark")
    return {
        "t_warmup_s": t_warm, "t_train_s": t_joint, "t_ec_s": t_ec, "latent_cache_s": cache, "stage_train_s": stage_s,
        "entry_cost_s": total, "sum_matches_entry_cost": matches, "from": src, "measured_on": on or None, "note": note,
    }


def warmup_recipe(pkg: BenchPackage) -> dict[str, Any]:
    """How the package's warm-up ran, for the plain-AE ablation to repeat it with the base autoencoder.

    * the stage settings: manifest ``stage_configs.warmup`` (the effective config the warm-up ran with), else
      the saved config's ``warmup``;
    * the views: ``data.shift_grid`` = sqrt of the warm-up's recorded ``stages.warmup.view_copies``. The manifest's
      ``stage_configs`` hold stage settings only, and the saved ``config.json`` holds the *last* stage's data
      settings: the shipped package's warm-up ran with ``shift_grid`` 1 and its joint stage with 2, continued in a
      copy whose config was edited (scripts/ship_3daae.sh). Without a record, the saved config's value (noted).
    * the scenes: manifest ``train_scene_ids``;
    * the settings an exploit recipe replaced (``export --set``): ``notes.trained_with``;
    * the tri-plane resolution T it learned B at: manifest ``notes.global_planes_resampled_from`` for a package
      whose B was resampled afterwards (``export --triplane-resolution``; the 128 px shipped package), else the
      config's. The ablation's exploit then learns its new scenes at the package's T, B resampled as ours'.

    Returns:
        ``{"warmup": StageConfig, "shift_grid": g, "triplane_resolution": T, "train_scene_ids": [...],
        "trained_with": ["key=value", ...], "from": {item: source}, "notes": [...]}``; ``trained_with`` undoes
        an exploit recipe written into the package (``export --set``, e.g. ``ae.upscale=1`` where new scenes are
        learned at 2): the settings the warm-up ran with (manifest ``notes.trained_with``; ``exploit.*`` and
        ``data.shift_grid`` left out: the warm-up does not read the one, ``view_copies`` gives the other).
    Raises:
        ConfigError: a recorded ``view_copies`` that is not a square.
    """
    m = pkg.manifest
    src: dict[str, str] = {}
    notes: list[str] = []
    rec = rf.recorded_stage_configs(m).get("warmup")
    if rec:
        warm = from_dict(StageConfig, rec, where=f"{rf.manifest_path(pkg.path)} stage_configs.warmup")
        src["warmup"] = "manifest stage_configs.warmup"
    else:
        warm = pkg.config.warmup
        src["warmup"] = "config.json warmup (the manifest records no stage_configs.warmup)"
        notes.append(f"{pkg.spec}: the manifest does not record the warm-up's settings; the plain-AE ablation uses "
                     "the package's config.json warmup")
    copies = (rf.stage_results(m).get("warmup") or {}).get("view_copies")
    if copies is not None:
        g = math.isqrt(int(copies))
        if g * g != int(copies):
            raise ConfigError(f"{rf.manifest_path(pkg.path)}: stages.warmup.view_copies {copies} is not a square (g x g)")
        src["shift_grid"] = "manifest stages.warmup.view_copies (= shift_grid ** 2)"
    else:
        g = int(pkg.config.data.shift_grid)
        src["shift_grid"] = "config.json data.shift_grid (the manifest does not record the warm-up's views)"
        notes.append(f"{pkg.spec}: the manifest does not record which views the warm-up used (stages.warmup.view_copies);"
                     f" the plain-AE ablation assumes the package config's data.shift_grid = {g}")
    src["train_scene_ids"] = "manifest train_scene_ids"
    resampled = (m.get("notes") or {}).get("global_planes_resampled_from")
    if resampled is not None:
        T = int(resampled)
        src["triplane_resolution"] = "manifest notes.global_planes_resampled_from"
    else:
        T = int(pkg.config.triplane.resolution)
        src["triplane_resolution"] = "config.json triplane.resolution"
    # an exploit recipe written into the package (`export --set`) is not what the warm-up ran with
    pnotes = m.get("notes") or {}
    trained = {k: v for k, v in (pnotes.get("trained_with") or {}).items()
               if not k.startswith("exploit.") and k != "data.shift_grid"}  # the shift grid: view_copies above
    restore = [f"{k}={json.dumps(v)}" for k, v in sorted(trained.items())]
    if restore:
        src["trained_with"] = "manifest notes.trained_with (the values export --set replaced)"
    untold = sorted({ov.split("=", 1)[0] for ov in pnotes.get("recipe_set") or []}
                    - set(pnotes.get("trained_with") or {}) - {"data.shift_grid"})
    untold = [k for k in untold if not k.startswith("exploit.")]
    if untold:
        notes.append(f"{pkg.spec}: its config carries an exploit recipe ({', '.join(untold)}) without the values the "
                     "warm-up ran with (exported before notes.trained_with was recorded): the plain-AE ablation's "
                     "warm-up uses the recipe's")
    return {"warmup": warm, "shift_grid": g, "triplane_resolution": T, "train_scene_ids": pkg.train_scene_ids,
            "trained_with": restore, "from": src, "notes": notes}
