"""Evaluation (held-out metrics), rendering (novel views, turntables) and reports (the demo driver is `experiments/demo.py`).

Public API (docs/evaluation.md):
  * the metrics themselves (``psnr_per_image``, ``ssim_per_image``, ``rgb_metrics``, ``to_unit_range``,
    ``chroma_error_per_image``) live one floor down in :mod:`latentscenes.metrics`, since training and the
    autoencoder's pre-training use them too;
  * :mod:`.evaluate`: ``evaluate_model``, ``evaluate_scene``, ``predict_views``, ``write_metrics_json``;
  * :mod:`.curves`: the same protocol handed to the fits (``latent_curve_eval`` for the latent stages' curves,
    ``rgb_fit_evaluator`` for the Tri-Planes (RGB) fit's curve and held-out figures): one metric path;
  * :mod:`.render`: ``render_turntable``, ``render_path``, ``TurntableConfig``, ``turntable_formats`` (GIF / MP4); :mod:`.cameras`:
    ``camera_defaults_from_views``, ``camera_defaults_from_manifest`` (the paths themselves, ``orbit_cameras`` and
    ``look_at_opencv``, live in :mod:`latentscenes.rendering.cameras`);
  * :mod:`.report` / :mod:`.reporting`: ``write_report``, ``comparison_grid``, ``evaluate_and_report``;
  * :mod:`.runs`: ``load_run``, ``load_rgb_run``, ``rgb_fit_model``, ``latent_system_model``, ``triplane_scene_model``, ``NotARunError``;

Submodules are imported on use (the package import stays light for the CLI). The user-facing Python API over
these (``ls.load(RUN).render(...)``) is :mod:`latentscenes.api`.
"""
