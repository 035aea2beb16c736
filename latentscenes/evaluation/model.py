"""What evaluation and rendering need from a learned model, independent of how it was trained.

Two kinds of model are evaluated under one protocol:
  * ``"latent"``: 3Da-AE scenes. ``render`` returns *normalised latents* (``[V, C, h, w]`` in about [-1, 1],
    h = H / downsample) and the model carries an :class:`AutoencoderView` to decode them to RGB;
  * ``"rgb"``: Tri-Planes (RGB) baseline scenes. ``render`` returns RGB in [-1, 1] at full image resolution.

Adapters that build these objects from the project's run folders live in :mod:`latentscenes.evaluation.runs`;
tests build them from plain functions with :class:`CallableSceneModel`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol

import torch

from latentscenes.rendering.offsets import merge_offset_images, offset_intrinsics


@dataclass
class RenderOutput:
    """One rendered batch of views.

    Attributes:
        image: ``[V, C, h, w]`` float32, model space (RGB in [-1, 1], or normalised latents in about [-1, 1]).
        depth: optional ``[V, 1, h, w]`` expected ray depth in world units.
        opacity: optional ``[V, 1, h, w]`` accumulated opacity in [0, 1] (1 - transmittance), for depth images.
    """

    image: torch.Tensor
    depth: torch.Tensor | None = None
    opacity: torch.Tensor | None = None


class AutoencoderView(Protocol):
    """The four autoencoder operations evaluation uses (all ``no_grad``, deterministic).

    ``encode_mean``: RGB ``[B, 3, H, W]`` in [-1, 1] -> raw latent ``[B, C, H/ds, W/ds]`` (posterior mean).
    ``decode``: raw latent -> RGB ``[B, 3, H, W]`` in about [-1, 1] (not clamped).
    ``normalize``: raw latent -> normalised latent in (-1, 1) (tanh(s z)); ``denormalize`` is its inverse.
    """

    downsample: int

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...

    def normalize(self, z: torch.Tensor) -> torch.Tensor: ...

    def denormalize(self, zbar: torch.Tensor) -> torch.Tensor: ...


class SceneModel(Protocol):
    """A set of learned scenes that can be rendered from any camera.

    Attributes:
        kind: ``"latent"`` or ``"rgb"`` (see the module docstring).
        name: label for reports, e.g. ``"3Da-AE (ours)"``.
        scene_ids: the scenes this model holds.
        autoencoder: the decoder side for ``"latent"`` models, ``None`` for ``"rgb"``.
        near, far: depth range of the renderer (world units), for depth images.

    A model whose scenes are decoded by different autoencoders (:class:`CompositeSceneModel`) also has
    ``autoencoder_for(scene_id)``; use :func:`autoencoder_for` rather than ``autoencoder`` directly.
    """

    kind: Literal["latent", "rgb"]
    name: str
    scene_ids: list[str]
    autoencoder: AutoencoderView | None
    near: float
    far: float

    def render(self, scene_id: str, c2w: torch.Tensor, K: torch.Tensor, resolution: tuple[int, int]) -> RenderOutput:
        """Deterministic render of ``scene_id`` for cameras ``c2w [V,4,4]`` (OpenCV), ``K [V,3,3]`` (normalised).

        ``resolution`` is the output (h, w): the latent size for ``"latent"`` models, the image size for ``"rgb"``.
        Raises ``KeyError`` for an unknown scene.
        """
        ...


@dataclass
class CallableSceneModel:
    """A :class:`SceneModel` from a plain function (used by tests and by the run adapters)."""

    kind: Literal["latent", "rgb"]
    name: str
    scene_ids: list[str]
    render_fn: Callable[[str, torch.Tensor, torch.Tensor, tuple[int, int]], RenderOutput]
    autoencoder: AutoencoderView | None = None
    near: float = 0.5
    far: float = 2.1
    info: dict = field(default_factory=dict)
    offset_ensemble: int = 1

    def autoencoder_for(self, scene_id: str) -> AutoencoderView | None:
        """The autoencoder that decodes ``scene_id`` (the same for every scene of one model)."""
        return self.autoencoder

    def offset_ensemble_for(self, scene_id: str) -> int:
        """``render.offset_ensemble`` of ``scene_id`` (the same for every scene of one model)."""
        return int(self.offset_ensemble)

    def render(self, scene_id: str, c2w: torch.Tensor, K: torch.Tensor, resolution: tuple[int, int]) -> RenderOutput:
        if scene_id not in self.scene_ids:
            raise KeyError(f"scene {scene_id!r} is not in model {self.name!r} (has {len(self.scene_ids)} scenes)")
        with torch.no_grad():
            return self.render_fn(scene_id, c2w, K, resolution)


@dataclass
class CompositeSceneModel:
    """Several models of the same kind shown as one, each scene rendered (and decoded) by the model holding it.

    3Da-AE needs this: the training scenes are decoded by the trained run's decoder, while every exploit batch
    has its own fine-tuned decoder, MLP and global planes (Alg. 2). Tri-Planes (RGB) too: each scene has its own MLP.
    ``info``: free-form details for reports (as :class:`CallableSceneModel`'s).

    Raises:
        ValueError: (at construction) for mixed kinds, no parts, or a scene held by two parts.
    """

    name: str
    parts: list
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("CompositeSceneModel needs at least one model")
        kinds = {p.kind for p in self.parts}
        if len(kinds) != 1:
            raise ValueError(f"cannot combine models of kinds {sorted(kinds)}")
        self.kind = kinds.pop()
        self._owner: dict[str, object] = {}
        for p in self.parts:
            for s in p.scene_ids:
                if s in self._owner:
                    raise ValueError(f"scene {s!r} is held by two of the combined models")
                self._owner[s] = p
        self.scene_ids = list(self._owner)
        self.autoencoder = self.parts[0].autoencoder
        self.near = float(self.parts[0].near)
        self.far = float(self.parts[0].far)

    def autoencoder_for(self, scene_id: str) -> AutoencoderView | None:
        return autoencoder_for(self._owner[scene_id], scene_id)  # type: ignore[arg-type]

    def offset_ensemble_for(self, scene_id: str) -> int:
        return offset_ensemble_for(self._owner[scene_id], scene_id)  # type: ignore[arg-type]

    def render(self, scene_id: str, c2w: torch.Tensor, K: torch.Tensor, resolution: tuple[int, int]) -> RenderOutput:
        if scene_id not in self._owner:
            raise KeyError(f"scene {scene_id!r} is not in model {self.name!r} (has {len(self.scene_ids)} scenes)")
        return self._owner[scene_id].render(scene_id, c2w, K, resolution)  # type: ignore[union-attr]


def autoencoder_for(model: SceneModel, scene_id: str) -> AutoencoderView | None:
    """The autoencoder decoding ``scene_id`` in ``model`` (``None`` for RGB models)."""
    if model.kind != "latent":
        return None
    f = getattr(model, "autoencoder_for", None)
    return f(scene_id) if f is not None else model.autoencoder


def offset_ensemble_for(model: SceneModel, scene_id: str) -> int:
    """``render.offset_ensemble`` of the model holding ``scene_id`` (1 for RGB models and models without it)."""
    if model.kind != "latent":
        return 1
    f = getattr(model, "offset_ensemble_for", None)
    return int(f(scene_id)) if f is not None else 1


def set_offset_ensemble(model: SceneModel, grid: int) -> None:
    """Decode every latent scene of ``model`` with ``grid x grid`` offsets from now on (in place; RGB parts and
    models without the setting are left alone). ``eval --offset-ensemble G`` uses it to compare settings on one
    fitted batch.

    Raises:
        ValueError: ``grid`` does not divide a latent part's downsampling (1, 2, 4 or 8 at the paper's 8x; 8 / u
            with ``ae.upscale`` u).
    """
    parts = getattr(model, "parts", [model])
    for part in parts:
        ae = part.autoencoder if part.kind == "latent" else None
        ds = int(ae.downsample) if ae is not None else 8
        if grid < 1 or ds % grid:
            raise ValueError(f"--offset-ensemble must be 1, 2, 4 or 8 and divide the {ds}x downsampling of "
                             f"{part.name!r}, got {grid}")
    for part in parts:
        if part.kind == "latent" and hasattr(part, "offset_ensemble"):
            part.offset_ensemble = int(grid)


@dataclass
class DecodedRender:
    """A latent model's render of some views, decoded (:func:`render_decoded`).

    Attributes:
        rgb: ``[V, 3, H, W]`` decoded RGB in about [-1, 1] (not clamped), CPU float32.
        render: the render at the views' own cameras (copy 0): ``image`` is the normalised latent ``[V, C, h, w]``.
        render_s, decode_s: wall-clock seconds of all renders and of all decodes (with the merge).
    """

    rgb: torch.Tensor
    render: RenderOutput
    render_s: float
    decode_s: float


def render_decoded(model: SceneModel, scene_id: str, c2w: torch.Tensor, K: torch.Tensor,
                   latent_hw: tuple[int, int], sync: Callable[[], None] | None = None,
                   grid: int | None = None) -> DecodedRender:
    """Render ``scene_id`` in latent space and decode it to RGB: the one path from a latent scene to an image.

    With ``render.offset_ensemble = g > 1`` (the run's config) the views are rendered at g x g
    sub-latent-pixel offsets in one batch, every render is decoded, and the decoded images are moved back and
    averaged (:mod:`latentscenes.rendering.offsets`; docs/fidelity.md, sixth session); with g = 1 it is one
    render and one decode, D(R(T, p)) as in the paper.

    Args:
        model: a ``"latent"`` model holding ``scene_id``.
        c2w: ``[V, 4, 4]`` OpenCV camera-to-world; K: ``[V, 3, 3]`` normalised intrinsics.
        latent_hw: (h, w) of the latent (:func:`render_resolution`); images are ``downsample`` times larger.
        sync: called before each clock reading (CUDA synchronisation for honest timings), or ``None``.
        grid: this call's offset grid instead of the model's (the viewer's moving preview decodes once).
    Raises:
        ValueError: an RGB model, or an offset grid that does not divide the downsampling.
        KeyError: unknown scene.
    """
    ae = autoencoder_for(model, scene_id)
    if ae is None:
        raise ValueError(f"{model.name!r} is not a latent model: nothing to decode")
    g, ds = (offset_ensemble_for(model, scene_id) if grid is None else int(grid)), int(ae.downsample)
    sync = sync or (lambda: None)
    V = c2w.shape[0]
    image_hw = (latent_hw[0] * ds, latent_hw[1] * ds)
    with torch.no_grad():
        sync()
        t0 = time.perf_counter()
        if g == 1:
            out = model.render(scene_id, c2w, K, latent_hw)
            base = out
        else:
            out = model.render(scene_id, c2w.repeat(g * g, 1, 1), offset_intrinsics(K, g, ds, image_hw), latent_hw)
            base = RenderOutput(image=out.image[:V], depth=None if out.depth is None else out.depth[:V],
                                opacity=None if out.opacity is None else out.opacity[:V])
        sync()
        t1 = time.perf_counter()
        rgb = ae.decode(ae.denormalize(out.image)).detach().float().cpu()
        if g > 1:
            rgb = merge_offset_images(rgb, g, ds)
        sync()
        t2 = time.perf_counter()
    return DecodedRender(rgb=rgb, render=base, render_s=t1 - t0, decode_s=t2 - t1)


def render_resolution(model: SceneModel, image_hw: tuple[int, int], scene_id: str | None = None) -> tuple[int, int]:
    """The (h, w) to pass to ``model.render`` for ground-truth images of size ``image_hw``.

    ``scene_id``: the scene to render; its own autoencoder's downsampling counts (an exploit batch at another
    ``ae.upscale`` than its training run's, in one :class:`CompositeSceneModel`); ``None``: the model's.

    Raises:
        ValueError: for a latent model whose image size is not a multiple of the autoencoder's downsampling.
    """
    if model.kind == "rgb":
        return image_hw
    ae = autoencoder_for(model, scene_id) if scene_id is not None else model.autoencoder
    if ae is None:
        raise ValueError(f"latent model {model.name!r} has no autoencoder")
    ds = int(ae.downsample)
    H, W = image_hw
    if H % ds or W % ds:
        raise ValueError(f"image size {H}x{W} is not a multiple of the autoencoder downsampling {ds}")
    return H // ds, W // ds
