"""Helpers for the 3Da-AE training tests: tiny analytic multi-view scenes, the ``test`` preset, comparisons.

(A uniquely named module rather than conftest.py: several test folders have a conftest.py.)
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Iterator

import torch

from latentscenes.config import get_preset
from latentscenes.scenes.synthetic import make_sphere_scene
from latentscenes.training.config import PipelineConfig


def sphere_scenes(n: int, prefix: str = "s", n_views: int = 6, resolution: int = 32, seed: int = 0):
    """``n`` scenes of two coloured spheres each (colours and positions differ per scene), 4 train + 2 test."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        c = torch.rand(2, 3, generator=g) * 0.8 + 0.1
        p = (torch.rand(2, 3, generator=g) - 0.5) * 0.6
        spheres = (
            (tuple(p[0].tolist()), 0.3, tuple(c[0].tolist())),
            (tuple(p[1].tolist()), 0.2, tuple(c[1].tolist())),
        )
        out.append(make_sphere_scene(f"{prefix}{i:02d}", n_views=n_views, n_test=2, resolution=resolution,
                                     spheres=spheres, seed=seed * 100 + i))
    return out


def small_config(**stage_ckpt) -> PipelineConfig:
    """The ``test`` preset on the CPU (32x32 images, scratch AE, T=16, a few steps per stage).

    ``stage_ckpt``: e.g. ``warmup=2`` sets ``warmup.checkpoint_every=2``.
    """
    cfg = dataclasses.replace(get_preset(PipelineConfig, "test"), device="cpu")
    for name, every in stage_ckpt.items():
        if name in ("fit", "finetune"):
            ex = cfg.exploit
            cfg.exploit = dataclasses.replace(ex, **{name: dataclasses.replace(getattr(ex, name), checkpoint_every=every)})
        else:
            setattr(cfg, name, dataclasses.replace(getattr(cfg, name), checkpoint_every=every))
    return cfg


def params_of(system) -> dict[str, torch.Tensor]:
    """Every learned tensor of a LatentSystem (AE, MLP, global planes, per-scene rows), detached CPU copies."""
    out = {f"ae.{k}": v.detach().cpu().clone() for k, v in system.ae.state_dict().items()}
    out.update({f"mlp.{k}": v.detach().cpu().clone() for k, v in system.mlp.state_dict().items()})
    out.update({f"bank.{k}": v.detach().cpu().clone() for k, v in system.bank.state_dict().items()})
    return out


def assert_same_params(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"{len(diff)} tensors differ, e.g. {diff[:5]}"


def write_sphere_dataset(root, n_train: int = 2, n_exploit: int = 1, resolution: int = 32):
    """A dataset folder of SRN scenes (the ``sphere_scenes`` above) with a manifest: train ``tr*``, exploit ``ex*``."""
    import json
    from pathlib import Path

    from latentscenes.data.flightgear import write_srn_scene

    root = Path(root)
    splits = {"train": sphere_scenes(n_train, "tr", resolution=resolution),
              "exploit": sphere_scenes(n_exploit, "ex", resolution=resolution, seed=4)}
    for scenes in splits.values():
        for sv in scenes:
            write_srn_scene(root / sv.scene_id, [im.permute(1, 2, 0).numpy() for im in sv.images],
                            [m[0].numpy() for m in sv.masks], sv.c2w.numpy(), sv.K[0].numpy(), sv.split, {})
    manifest = {"format": "srn", "splits": {k: [s.scene_id for s in v] for k, v in splits.items()},
                "render": {"near": 0.5, "far": 2.1, "box_size": 2.0}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one torch thread (module fixtures that train tiny runs: faster than two, and immune to
    a busy machine's oversubscription), restoring the thread count afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def tiny_run_set(tmp) -> dict:
    """Every kind of result folder, tiny and finished (not good), trained with one thread in ``tmp``: a
    ``test``-preset 3Da-AE run on a sphere dataset (train tr00, tr01; exploit ex00; 32 px, 4 train + 2 test
    views), its exploit batch, a Tri-Planes (RGB) fit of ex00 and an exported package without scenes.

    Returns ``{"data", "run", "batch", "rgb", "pkg"}`` (paths).
    """
    from latentscenes.config import get_preset
    from latentscenes.data import MultiSceneDataset
    from latentscenes.training.pipeline import exploit_3daae, export_pretrained, train_3daae
    from latentscenes.baselines.rgb.fit import RGBFitConfig, fit_rgb_scenes

    with single_thread():
        data = write_sphere_dataset(tmp / "data")
        cfg = small_config()
        cfg.data.path = str(data)
        cfg.warmup.steps, cfg.joint.steps = 1, 2  # a finished run is needed, not a good one
        train_3daae(cfg, tmp / "run", data_root=data)
        exploit_3daae(tmp / "run", tmp / "batch", data_root=data)
        fit_rgb_scenes(MultiSceneDataset(data), get_preset(RGBFitConfig, "test"), out_dir=tmp / "rgb",
                       scene_ids=["ex00"])
        export_pretrained(tmp / "run", tmp / "pkg")
    return {"data": data, "run": tmp / "run", "batch": tmp / "batch", "rgb": tmp / "rgb", "pkg": tmp / "pkg"}
