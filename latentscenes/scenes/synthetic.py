"""Analytic test scenes (no data set needed): opaque coloured spheres seen by cameras on a sphere.

Images are ray-traced exactly (nearest sphere hit, Lambert shading with a fixed light, white background), in
the project's conventions (``SceneViews``: images [V,3,H,W] in [0,1], OpenCV c2w, normalised K, z-up world).
Used by the tests and as a stand-in scene before a real data set is available.
"""

from __future__ import annotations


import torch

from latentscenes.data.types import SceneViews
from latentscenes.rendering.cameras import random_orbit_cameras
from latentscenes.rendering.rays import generate_rays


DEFAULT_SPHERES = (
    # centre (x, y, z), radius, colour (r, g, b) in [0, 1]
    ((0.0, 0.0, 0.0), 0.35, (0.9, 0.2, 0.2)),
    ((0.35, 0.2, 0.1), 0.2, (0.2, 0.7, 0.3)),
    ((-0.3, -0.25, 0.15), 0.18, (0.2, 0.3, 0.9)),
)


def make_sphere_scene(
    scene_id: str = "spheres",
    n_views: int = 10,
    n_test: int = 2,
    resolution: int = 32,
    focal: float = 1.0254,
    radius: float = 1.3,
    spheres=DEFAULT_SPHERES,
    seed: int = 0,
) -> SceneViews:
    """Ray-traced views of opaque spheres (inside the [-1,1]^3 box), white background.

    Args:
        n_views: total views; the last ``n_test`` are held-out ("test").
        resolution: square image size (px). focal: normalised focal length (SRN cars: 525/512).
        radius: camera distance from the origin (world units). spheres: (centre, radius, colour) triples.
    Returns:
        :class:`SceneViews` with images ``[V,3,H,W]`` in [0,1] and masks.
    """
    c2w = random_orbit_cameras(n_views, radius=radius, seed=seed)
    K = torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]]).expand(n_views, 3, 3).clone()
    o, d = generate_rays(c2w, K, resolution, resolution)  # [V, P, 3]
    best_t = torch.full(o.shape[:2], float("inf"))
    colour = torch.ones(*o.shape[:2], 3)
    light = torch.tensor([0.4, -0.3, 0.85])
    light = light / light.norm()
    for centre, r, col in spheres:
        c = torch.tensor(centre)
        oc = o - c
        b = (oc * d).sum(-1)
        disc = b * b - ((oc * oc).sum(-1) - r * r)
        t = -b - disc.clamp(min=0).sqrt()
        hit = (disc > 0) & (t > 0) & (t < best_t)
        n = (o + d * t[..., None] - c) / r
        shade = 0.35 + 0.65 * (n * light).sum(-1).clamp(min=0)
        best_t = torch.where(hit, t, best_t)
        colour = torch.where(hit[..., None], torch.tensor(col) * shade[..., None], colour)
    mask = torch.isfinite(best_t).float()
    V = n_views
    images = colour.reshape(V, resolution, resolution, 3).permute(0, 3, 1, 2).contiguous()
    masks = mask.reshape(V, 1, resolution, resolution)
    split = ["train"] * (V - n_test) + ["test"] * n_test
    return SceneViews(
        scene_id=scene_id, images=images, c2w=c2w, K=K, split=split, masks=masks,
        view_names=[f"view_{i:03d}" for i in range(V)], meta={"synthetic": "spheres"},
    )
