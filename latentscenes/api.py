"""The Python API: open a run, list its scenes, render any camera, evaluate held-out views, write turntables.

::

    import latentscenes as ls

    run = ls.load("runs/exploit")                  # a train run, an exploit batch, a fit-rgb folder, or "shipped"
    run.scenes                                     # ['ex00', 'ex01', ...]
    c2w = ls.look_at([1.3, 0.0, 0.5])              # [4, 4] OpenCV camera-to-world looking at the origin
    K = ls.intrinsics(fov_deg=50.0)                # [3, 3] normalised by the image size
    out = run.render("ex00", c2w, K, 128, 128)     # {"rgb": [128, 128, 3] float32 in [0, 1], "depth", "opacity", "latent"}
    metrics = run.evaluate(split="test")           # metrics["overall"]["mean"]["psnr"], ...["ssim"]
    run.turntable("ex00", "out/ex00", format="mp4")

Conventions (docs/ARCHITECTURE.md, :mod:`latentscenes.rendering.rays`):
  * ``c2w``: OpenCV camera-to-world ``[4, 4]`` (x right, y down, z forward = viewing direction), world z-up,
    world units (the scene box is [-1, 1]^3 by default; the dataset's cameras sit at its camera distance);
  * ``K``: intrinsics normalised by the image size, ``[[fx/W, s, cx/W], [0, fy/H, cy/H], [0, 0, 1]]``; pixel
    (row i, col j) has its centre at u = (j + 0.5) / W, v = (i + 0.5) / H. The same ``K`` serves any
    ``height x width``;
  * every array returned is a numpy array on the CPU; inputs may be numpy arrays, torch tensors or lists.

The command line uses this module: ``latentscenes eval`` is :meth:`Run.evaluate` and ``latentscenes render``
is :meth:`Run.turntable` (docs/evaluation.md).
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from latentscenes.data.types import DatasetError
from latentscenes.evaluation.cameras import camera_defaults_from_manifest, camera_defaults_from_views, look_at_opencv
from latentscenes.evaluation.model import render_resolution
from latentscenes.evaluation.runs import NotARunError, load_ground_truth, load_run
from latentscenes.training import run_format as rf

__all__ = ["load", "Run", "look_at", "intrinsics", "NotARunError", "SceneNotFoundError"]


class SceneNotFoundError(KeyError):
    """A scene id the run does not hold. The message names the id, the run and a few ids it does hold."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: not an array of numbers ({e})") from None
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: holds non-finite values")
    return t


class Run:
    """Learned scenes of one run folder, ready to render and evaluate (build it with :func:`load`).

    Attributes:
        path: the run folder (``shipped`` resolved to the package's folder).
        kind: ``"train"`` (3Da-AE training run: its training scenes), ``"exploit"`` (exploit batch: its new
            scenes, plus the source run's training scenes when loaded with ``scenes="all"``), ``"rgb"``
            (Tri-Planes (RGB) baseline) or ``"pretrained"`` (a pre-trained 3Da-AE package such as ``shipped``:
            no scenes; learn some with ``latentscenes exploit --run shipped``).
        scenes: the scene ids, in the order of ``groups``.
        groups: ``{"train": ids, "exploit": ids}`` (3Da-AE) or ``{"rgb": ids}``; the groups of :meth:`evaluate`.
        model: the underlying :class:`latentscenes.evaluation.model.SceneModel` (``None`` for ``pretrained``).
        data_root: the dataset folder the run records ("" when it records none; pass ``data=`` then).
        resolution: square image side (px) the scenes were fitted at, or ``None`` (as stored in the dataset).
        manifest: the run's ``manifest.json`` (``results.json`` for an RGB baseline).
    """

    def __init__(self, path: Path, kind: str, model: Any, groups: dict[str, list[str]], data_root: str,
                 resolution: int | None, manifest: dict) -> None:
        self.path = path
        self.kind = kind
        self.model = model
        self.groups = groups
        self.scenes = [s for ids in groups.values() for s in ids]
        self.data_root = data_root
        self.resolution = resolution
        self.manifest = manifest
        self._datasets: dict[str, Any] = {}
        self._held = set(self.scenes)

    # ------------------------------------------------------------------------------------------ facts
    @property
    def is_latent(self) -> bool:
        """Whether the scenes are latent Tri-Planes (3Da-AE: rendered as latents, then decoded to RGB)."""
        return self.kind in ("train", "exploit", "pretrained")

    @property
    def downsample(self) -> int:
        """Image pixels per rendered pixel along each side: the autoencoder's 8 for latent runs, 1 for RGB."""
        if self.model is None or self.model.kind != "latent":
            return 1 if self.kind == "rgb" else 8
        return int(self.model.autoencoder.downsample)

    @property
    def near(self) -> float:
        """Renderer near bound (world units along the ray)."""
        return float(self.model.near) if self.model is not None else float("nan")

    @property
    def far(self) -> float:
        """Renderer far bound (world units along the ray); the depth of rays that hit nothing."""
        return float(self.model.far) if self.model is not None else float("nan")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, kind={self.kind!r}, {len(self.scenes)} scenes)"

    # ------------------------------------------------------------------------------------------ checks
    def _need_scenes(self) -> None:
        if self.kind == "pretrained":
            # imported on use: keeps `import latentscenes.api` light (the evaluation and training stacks)
            from latentscenes.training.pipeline import shipped_name

            spec = shipped_name(self.path) or self.path
            raise ValueError(f"{self.path} is a pre-trained 3Da-AE without scenes: learn scenes with it "
                             f"(`latentscenes exploit --run {spec} --data D --out OUT`) and load OUT")

    def check_scenes(self, scene_ids: Sequence[str]) -> None:
        """Check that the run holds every id of ``scene_ids`` (before any long job).

        Raises:
            ValueError: the run holds no scenes (a ``pretrained`` package).
            SceneNotFoundError: (a ``KeyError``) the first id the run does not hold; the message names it, the
                run and up to five ids it holds (the closest spellings first).
        """
        self._need_scenes()
        for scene_id in scene_ids:
            if scene_id in self._held:
                continue
            ratio = {s: difflib.SequenceMatcher(None, str(scene_id), s).ratio() for s in self.scenes}
            close = sorted((s for s in self.scenes if ratio[s] >= 0.6), key=lambda s: -ratio[s])[:3]  # ties: run order
            examples = close + [s for s in self.scenes if s not in close][: max(0, 5 - len(close))]
            raise SceneNotFoundError(f"scene {scene_id!r} is not in {self.path} (it holds {len(self.scenes)} scenes, "
                                     f"e.g. {examples})")

    # ------------------------------------------------------------------------------------------ rendering
    def render(self, scene_id: str, c2w: Any, K: Any, height: int, width: int, *,
               decode: bool = True, offset_ensemble: int | None = None) -> dict[str, np.ndarray]:
        """Render ``scene_id`` from one camera (or a batch), deterministically (no sampling noise, no autograd).

        Args:
            scene_id: one of :attr:`scenes`.
            c2w: ``[4, 4]`` or ``[N, 4, 4]`` OpenCV camera-to-world (world units).
            K: ``[3, 3]`` or ``[N, 3, 3]`` intrinsics normalised by the image size (fx/W, fy/H, cx/W, cy/H).
            height, width: output image size in pixels; latent runs need multiples of :attr:`downsample` (8, or 8/u
                with ``ae.upscale`` u).
            decode: latent runs only: ``False`` skips the decoder (much of the cost on a CPU) and returns no
                ``rgb``, only ``depth``, ``opacity`` and ``latent`` (what the viewer's latent/depth/opacity views
                show). Ignored for RGB runs.
            offset_ensemble: latent runs: decode this call at G x G offsets (1, 2, 4, 8) instead of the run's
                ``render.offset_ensemble`` (the viewer's moving preview uses 1: a quarter of the decoding).
        Returns:
            float32 numpy arrays (a leading ``N`` axis when ``c2w`` is ``[N, 4, 4]``):

            * ``rgb``: ``[H, W, 3]`` in [0, 1] (for latent runs the decoded latent; values clamped to [0, 1] as
              in the evaluation protocol);
            * ``depth``: ``[h, w]`` distance along each ray from the camera centre (world units, in
              [near, far]; ``far`` where the ray hits nothing), at the rendered size: ``h, w = H, W`` for RGB
              runs and ``H/ds, W/ds`` (the latent's pixels, ds = :attr:`downsample`) for latent runs;
            * ``opacity``: ``[h, w]`` accumulated opacity in [0, 1] (1 - transmittance), same size as depth;
            * ``latent`` (latent runs only): ``[h, w, C]`` the rendered normalised latent, in about [-1, 1].
        Raises:
            SceneNotFoundError: (a ``KeyError``) an id the run does not hold; the message lists some it holds.
            ValueError: bad shapes, non-finite values, ``K`` in pixels rather than normalised, a size < 1 or
                not a multiple of the autoencoder's downsampling; a ``pretrained`` run (it holds no scenes).
        """
        # imported on use: keeps `import latentscenes.api` light (the evaluation and training stacks)
        from latentscenes.metrics import to_unit_range
        from latentscenes.evaluation.model import autoencoder_for
        from latentscenes.evaluation.render import render_path

        self.check_scenes([scene_id])
        c2w_t, K_t = _as_tensor(c2w, "c2w"), _as_tensor(K, "K")
        single = c2w_t.dim() == 2
        if single:
            c2w_t = c2w_t.unsqueeze(0)
        if c2w_t.dim() != 3 or c2w_t.shape[-2:] != (4, 4) or c2w_t.shape[0] < 1:
            raise ValueError(f"c2w must be [4,4] or [N,4,4], got {tuple(_as_tensor(c2w, 'c2w').shape)}")
        n = c2w_t.shape[0]
        if K_t.shape == (3, 3):
            K_t = K_t.unsqueeze(0).expand(n, 3, 3)
        if K_t.shape != (n, 3, 3):
            raise ValueError(f"K must be [3,3] or [{n},3,3] (one per camera), got {tuple(K_t.shape)}")
        if bool((K_t[:, :2, 2].abs() > 4).any()) or bool((K_t[:, :2, :2].abs() > 100).any()):
            raise ValueError(f"K looks like pixel intrinsics (cx = {float(K_t[0, 0, 2]):g}): normalise it by the "
                             "image size (row 0 / W, row 1 / H), e.g. cx/W = 0.5 for a centred camera")
        if int(height) < 1 or int(width) < 1:
            raise ValueError(f"image size must be >= 1 px, got {height}x{width}")
        if not decode and self.model.kind == "latent":
            return self._render_latent(scene_id, c2w_t, K_t, (int(height), int(width)), single)
        ds = int(autoencoder_for(self.model, scene_id).downsample) if self.model.kind == "latent" else 8
        if offset_ensemble is not None and (offset_ensemble < 1 or ds % offset_ensemble):
            raise ValueError(f"offset_ensemble must divide this scene's {ds}x downsampling (1, 2, 4 or 8 at 8x), "
                             f"got {offset_ensemble}")
        frames = render_path(self.model, scene_id, c2w_t, K_t, (int(height), int(width)), offset_ensemble=offset_ensemble)
        out = {"rgb": to_unit_range(frames.rgb).permute(0, 2, 3, 1)}
        if frames.depth is not None:
            out["depth"] = frames.depth[:, 0]
        if frames.opacity is not None:
            out["opacity"] = frames.opacity[:, 0]
        if frames.latent is not None:
            out["latent"] = frames.latent.permute(0, 2, 3, 1)
        arrays = {k: v.contiguous().numpy().astype(np.float32, copy=False) for k, v in out.items()}
        return {k: v[0] for k, v in arrays.items()} if single else arrays

    def _render_latent(self, scene_id: str, c2w: torch.Tensor, K: torch.Tensor, hw: tuple[int, int],
                       single: bool) -> dict[str, np.ndarray]:
        """:meth:`render` without the decoder: latent, depth and opacity at the latent size."""
        lhw = render_resolution(self.model, hw, scene_id)
        parts: dict[str, list[torch.Tensor]] = {"latent": [], "depth": [], "opacity": []}
        with torch.no_grad():
            for i in range(c2w.shape[0]):
                o = self.model.render(scene_id, c2w[i : i + 1], K[i : i + 1], lhw)
                parts["latent"].append(o.image.detach().float().cpu().permute(0, 2, 3, 1))
                for key, v in (("depth", o.depth), ("opacity", o.opacity)):
                    if v is not None:
                        parts[key].append(v.detach().float().cpu()[:, 0])
        arrays = {k: torch.cat(v).contiguous().numpy() for k, v in parts.items() if len(v) == c2w.shape[0]}
        return {k: v[0] for k, v in arrays.items()} if single else arrays

    # ------------------------------------------------------------------------------------------ dataset
    def _dataset(self, data: str | Path | None) -> tuple[Any, str]:
        root = str(data) if data is not None else self.data_root
        if root not in self._datasets:
            self._datasets[root] = load_ground_truth(root, [], self.resolution)[1]
        return self._datasets[root], root

    def views(self, scene_id: str, data: str | Path | None = None) -> Any:
        """The dataset's views of ``scene_id`` at the run's resolution: images and the cameras to render them.

        Args:
            data: dataset folder; default the one the run records.
        Returns:
            a :class:`latentscenes.data.types.SceneViews`: ``images [V, 3, H, W]`` in [0, 1], ``c2w [V, 4, 4]``,
            ``K [V, 3, 3]`` (same conventions as :meth:`render`), ``split`` ("train"/"test" per view).
        Raises:
            SceneNotFoundError: unknown scene id. DatasetError / FileNotFoundError: no dataset, or a dataset that
                does not hold the scene.
        """
        self.check_scenes([scene_id])
        ds, root = self._dataset(data)
        if scene_id not in set(ds.scene_ids):
            raise DatasetError(f"{root}: no scene {scene_id!r} (the run was fitted on another dataset?)")
        return ds.load(scene_id)

    # ------------------------------------------------------------------------------------------ evaluation
    def evaluate(self, data: str | Path | None = None, split: str = "test", scenes: Sequence[str] | None = None,
                 max_views: int | None = None, progress: bool = False) -> dict:
        """Held-out metrics under the project's protocol (docs/evaluation.md), as ``latentscenes eval`` writes them.

        Args:
            data: dataset folder with the ground truth; default the one the run records.
            split: ``"test"`` (held-out views, default) or ``"train"``.
            scenes: evaluate only these ids (default: every scene of the run).
            max_views: at most this many views per scene (default: all).
            progress: show a progress bar.
        Returns:
            A JSON-able dict: ``overall`` / ``groups[g]`` hold ``n_scenes``, ``n_views`` and ``mean`` (``psnr`` in
            dB, ``ssim`` in [-1, 1], images in [0, 1] with ``data_range = 1``; latent runs add ``latent_psnr``,
            ``latent_ssim``, ``ae_psnr``, ``ae_ssim``; ``render_ms`` / ``total_ms`` per view); ``scenes[id]``
            holds per-scene means and every view; also ``protocol``, ``split``, ``run``, ``data``.
        Raises:
            SceneNotFoundError: an id in ``scenes`` the run does not hold. DatasetError / FileNotFoundError: no
            dataset or a dataset without these scenes. ValueError: a scene without views in ``split``; a
            ``pretrained`` run.
        """
        # imported on use: keeps `import latentscenes.api` light (the evaluation and training stacks)
        from latentscenes.evaluation.evaluate import evaluate_model

        self._need_scenes()
        groups = self.groups
        if scenes is not None:
            wanted = list(dict.fromkeys(scenes))
            self.check_scenes(wanted)
            groups = {g: [s for s in ids if s in wanted] for g, ids in self.groups.items()}
            groups = {g: ids for g, ids in groups.items() if ids}
        root = str(data) if data is not None else self.data_root
        gt, _ = load_ground_truth(root, [s for ids in groups.values() for s in ids], self.resolution)
        res = evaluate_model(self.model, gt, groups, split=split, max_views=max_views, show_progress=progress)
        res["run"] = str(self.path)
        res["data"] = root
        return res

    # ------------------------------------------------------------------------------------------ turntables
    def turntable(self, scene_id: str, out: str | Path, *, frames: int = 24, fps: float = 8.0, views: int = 4,
                  elevation: float | None = None, radius: float | None = None, size: int | None = None,
                  format: str | Sequence[str] = "gif", data: str | Path | None = None) -> dict:
        """Write a turntable of ``scene_id`` (``latentscenes render``) into the folder ``out``.

        The camera circles the origin (world z-up, looking at the origin) at the dataset's camera distance and
        elevation (its manifest's, else the median of the scene's training cameras), with their intrinsics.

        Args:
            frames: frames over one turn. fps: frame rate. views: frames also saved as PNG novel views.
            elevation: degrees above the ground plane; radius: camera distance (world units); default the
                dataset's. size: output side in px (default: the run's image size).
            format: ``"gif"``, ``"mp4"``, ``"both"`` or a list: ``turntable.gif`` / ``turntable.mp4`` (decoded
                RGB) and ``turntable_panel.*`` (RGB | depth | latent channels).
            data: dataset folder (for the cameras); default the one the run records.
        Returns:
            ``{"turntable": path, "panel": path, "animations": {fmt: {"turntable", "panel"}}, "views": [png],
            "panels": [png], "ms_per_frame", "radius", "elevation_deg", "K": [3, 3] list, "camera_source"}``
            (``turntable``/``panel`` are the GIFs when written, else the MP4s); frame ``k`` of ``n`` is the camera
            at azimuth 30 + 360 k / n degrees.
        Raises:
            SceneNotFoundError, DatasetError / FileNotFoundError (no dataset), ValueError (bad format or size).
        """
        # imported on use: keeps `import latentscenes.api` light (the evaluation and training stacks)
        from latentscenes.evaluation.render import TurntableConfig, render_turntable, turntable_formats

        formats = turntable_formats(format)
        sv = self.views(scene_id, data)
        _, root = self._dataset(data)
        cam = camera_defaults_from_views([sv], split="train")
        cam = camera_defaults_from_manifest(root, fallback=cam) or cam
        hw = (int(size), int(size)) if size else sv.resolution
        cfg = TurntableConfig(n_frames=frames, fps=fps, n_views=views, radius=radius, elevation_deg=elevation,
                              formats=formats)
        res = render_turntable(self.model, scene_id, cam, out, hw, cfg)
        res["K"] = cam.K.tolist()
        res["camera_source"] = cam.source
        return res


def load(run: str | Path, scenes: str = "all", device: str = "auto", offset_ensemble: int | None = None,
         data: str | Path | None = None) -> Run:
    """Open a run folder for rendering and evaluation.

    Args:
        run: a 3Da-AE training run (``latentscenes train --out RUN``), an exploit batch (``latentscenes
            exploit --out OUT``), a Tri-Planes (RGB) folder (``latentscenes fit-rgb --out DIR``), a pre-trained
            3Da-AE package (``latentscenes export``), or ``"shipped"`` / ``"shipped-128"`` (the package's pre-trained
            3Da-AEs for 64 / 128 px images). A
            pre-trained package holds no scenes: it loads as ``kind == "pretrained"`` with ``scenes == []``.
        scenes: which scenes of a 3Da-AE run: ``"train"``, ``"exploit"`` or ``"all"`` (an exploit batch then
            also loads its source run's training scenes, each decoded by the decoder it was learned with).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        offset_ensemble: latent runs: decode with this ``render.offset_ensemble`` (1, 2, 4, 8) instead of the
            run's own; ``None`` keeps the run's (docs/evaluation.md).
        data: the dataset folder; an RGB folder records no split per scene, and ``scenes`` train / exploit takes
            those of its scenes in that split of ``data`` (default: the dataset the folder records).
    Raises:
        NotARunError: (a ``FileNotFoundError``) ``run`` does not exist or is not a run folder; the message names it.
        RunError / ValueError: an unfinished or damaged run, a bad ``scenes`` or ``offset_ensemble``; an RGB
            folder listing no scene, or none in the ``scenes`` split, or that split asked without a dataset.
    """
    # imported on use: keeps `import latentscenes.api` light (the evaluation and training stacks)
    from latentscenes.training import pipeline as pl

    path = pl.resolve_run(run)  # "shipped" (-128) -> the package's folder
    if rf.has_manifest(path) and rf.config_path(path).is_file():
        man = rf.read_manifest(path)
        if rf.is_run_manifest(man) and not rf.scenes_included(man):
            cfg = pl.load_run_config(path)
            return Run(path, "pretrained", None, {}, cfg.data.path or "", cfg.data.resolution, man)
    r = load_run(path, scenes, device, offset_ensemble=offset_ensemble, data=data)
    return Run(path, r.kind, r.model, r.groups, r.data_root, r.resolution, r.manifest)


def look_at(eye: Any, target: Any = (0.0, 0.0, 0.0), up: Any = (0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV camera-to-world matrices of cameras at ``eye`` looking at ``target`` (world z-up by default).

    Args:
        eye: ``[3]`` or ``[N, 3]`` camera centres (world units).
        target: ``[3]`` point looked at (the origin by default); up: ``[3]`` world up.
    Returns:
        float32 ``[4, 4]`` (or ``[N, 4, 4]``): columns 0..2 are the camera's x (right), y (down) and z (forward)
        axes in world coordinates, column 3 is ``eye``.
    Raises:
        ValueError: a camera on its target, or looking straight along ``up``.
    """
    e = _as_tensor(eye, "eye")
    c2w = look_at_opencv(e.reshape(-1, 3), _as_tensor(target, "target"), _as_tensor(up, "up")).numpy()
    return c2w[0] if e.dim() == 1 else c2w


def intrinsics(fov_deg: float = 50.0, width: int = 1, height: int = 1) -> np.ndarray:
    """Normalised pinhole intrinsics ``K`` (principal point at the image centre, square pixels).

    Args:
        fov_deg: horizontal field of view in degrees, in (0, 180).
        width, height: image size; only their ratio matters (square pixels: fy/H = fx/W * W/H).
    Returns:
        float32 ``[3, 3]`` ``[[fx/W, 0, 0.5], [0, fy/H, 0.5], [0, 0, 1]]`` with fx/W = 0.5 / tan(fov / 2).
    Raises:
        ValueError: a field of view outside (0, 180) or a size < 1.
    """
    if not 0.0 < float(fov_deg) < 180.0:
        raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg}")
    if width < 1 or height < 1:
        raise ValueError(f"image size must be >= 1, got {width}x{height}")
    fx = 0.5 / math.tan(math.radians(float(fov_deg)) / 2.0)
    return np.array([[fx, 0.0, 0.5], [0.0, fx * width / height, 0.5], [0.0, 0.0, 1.0]], dtype=np.float32)
