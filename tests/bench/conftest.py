"""A tiny multi-scene dataset on disk (SRN layout + manifest with train/exploit splits) for the bench tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentscenes.scenes.synthetic import make_sphere_scene


def write_sphere_dataset(root: Path, n_train: int = 3, n_exploit: int = 2, n_views: int = 6, n_test: int = 2,
                         resolution: int = 32, seed: int = 0) -> Path:
    """Write ray-traced sphere scenes as SRN folders (``rgb/``, ``pose/``, ``intrinsics.txt``, ``scene.json``)
    and a ``manifest.json`` with ``train`` / ``exploit`` scene splits. Returns ``root``."""
    g = torch.Generator().manual_seed(seed)
    splits: dict[str, list[str]] = {"train": [], "exploit": []}
    scenes = {}
    for i in range(n_train + n_exploit):
        sid = f"{'train' if i < n_train else 'exploit'}_{i:02d}"
        c = torch.rand(2, 3, generator=g) * 0.8 + 0.1
        p = (torch.rand(2, 3, generator=g) - 0.5) * 0.6
        spheres = ((tuple(p[0].tolist()), 0.3, tuple(c[0].tolist())), (tuple(p[1].tolist()), 0.2, tuple(c[1].tolist())))
        sv = make_sphere_scene(sid, n_views=n_views, n_test=n_test, resolution=resolution, spheres=spheres, seed=seed * 100 + i)
        d = root / sid
        (d / "rgb").mkdir(parents=True)
        (d / "pose").mkdir()
        for v, name in enumerate(sv.view_names):
            img = (sv.images[v].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
            Image.fromarray(img).save(d / "rgb" / f"{name}.png")
            (d / "pose" / f"{name}.txt").write_text(" ".join(f"{x:.8f}" for x in sv.c2w[v].reshape(-1).tolist()) + "\n")
        K = sv.K[0]
        f, cx, cy = float(K[0, 0]) * resolution, float(K[0, 2]) * resolution, float(K[1, 2]) * resolution
        (d / "intrinsics.txt").write_text(f"{f} {cx} {cy} 0.\n0. 0. 0.\n1.\n{resolution} {resolution}\n")
        views = {"train": [n for n, s in zip(sv.view_names, sv.split) if s == "train"],
                 "test": [n for n, s in zip(sv.view_names, sv.split) if s == "test"]}
        (d / "scene.json").write_text(json.dumps({"views": views}))
        splits["train" if i < n_train else "exploit"].append(sid)
        scenes[sid] = {"synthetic": "spheres"}
    (root / "manifest.json").write_text(json.dumps({"scenes": scenes, "splits": splits,
                                                    "render": {"near": 0.5, "far": 2.1, "box_size": 2.0}}))
    return root


@pytest.fixture(scope="session")
def sphere_dataset(tmp_path_factory) -> Path:
    return write_sphere_dataset(tmp_path_factory.mktemp("bench_data"))
