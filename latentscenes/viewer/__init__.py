"""``latentscenes view``: a local web viewer (viser) for the scenes of one or more runs.

  * :mod:`.camera`: viser camera <-> OpenCV ``c2w`` / normalised ``K`` (pure functions, the convention checked);
  * :mod:`.scenes`: held-out PSNR per scene from evaluation files, the filtered list sorted worst first;
  * :mod:`.images`: display modes (RGB, latent channels, depth, opacity, error images) as uint8 images;
  * :mod:`.server`: :class:`Viewer` (the viser server) and :class:`Session` (one browser tab's render worker);
  * :mod:`.browser`: drive Debian's headless Chromium against a viewer (tests, documentation screenshots).

docs/evaluation.md ("Viewer") describes the page.
"""

from latentscenes.viewer.server import NoScenesError, PortInUseError, Viewer, ViewerError

__all__ = ["Viewer", "ViewerError", "PortInUseError", "NoScenesError"]
