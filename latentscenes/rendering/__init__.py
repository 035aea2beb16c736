"""Functional tri-plane volume renderer shared by the RGB baseline and the latent scenes (paper Sec. 3.1)."""

from latentscenes.rendering.cameras import (
    look_at_c2w,
    look_at_opencv,
    orbit_cameras,
    random_orbit_cameras,
    sample_band_cameras,
)
from latentscenes.rendering.compositing import volume_render
from latentscenes.rendering.decoder import TriplaneDecoder
from latentscenes.rendering.rays import generate_rays, generate_rays_uv, pixel_indices_to_uv, pixel_uv
from latentscenes.rendering.renderer import (
    RenderConfig,
    measure_render_ms,
    render_rays,
    render_views,
    render_views_no_grad,
)
from latentscenes.rendering.sampling import importance_samples, sample_pdf, stratified_samples
from latentscenes.rendering.triplane import project_points, sample_triplanes

__all__ = [
    "RenderConfig",
    "TriplaneDecoder",
    "generate_rays",
    "generate_rays_uv",
    "importance_samples",
    "look_at_c2w",
    "look_at_opencv",
    "measure_render_ms",
    "orbit_cameras",
    "pixel_indices_to_uv",
    "pixel_uv",
    "project_points",
    "random_orbit_cameras",
    "render_rays",
    "render_views",
    "render_views_no_grad",
    "sample_band_cameras",
    "sample_pdf",
    "sample_triplanes",
    "stratified_samples",
    "volume_render",
]
